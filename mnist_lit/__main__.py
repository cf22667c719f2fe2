"""``python -m mnist_lit`` is ``mnist-lit``."""

from mnist_lit.cli import main

if __name__ == "__main__":
    main()

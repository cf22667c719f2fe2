"""``python -m mnist_lit`` is ``mnist-lit``."""

import sys

from mnist_lit.cli import main

if __name__ == "__main__":
    sys.argv[0] = "mnist-lit"  # the name the usage lines show
    main()

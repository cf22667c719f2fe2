# Two commands do everything on a fresh machine: `make train` and `make test`.
# `make check` is what CI runs: lint, then every test there is.
VENV ?= .venv
CONFIG ?= configs/seed_cross_entropy.yaml
DATA_DIR ?= data
BIN := $(VENV)/bin
# Left out of `make test`, run by `make check` (markers declared in pyproject.toml).
FULL_ONLY := real_data or slow or serve or browser or notebook or postgres or slurm
# `make check` fails where Chromium, PostgreSQL or SLURM is missing; =0 skips their tests.
MNIST_LIT_REQUIRE_BROWSER ?= 1
MNIST_LIT_REQUIRE_POSTGRES ?= 1
MNIST_LIT_REQUIRE_SLURM ?= 1

.PHONY: install train test check lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"
	touch $@

# Train the tutorial's model, then report the test accuracy of its best checkpoint. One
# CPU thread: a linear model's batches of 64 gain nothing from more, and torch's threads
# slow to a crawl when other work holds the cores (TRAIN_THREADS=4 for a bigger network).
TRAIN_THREADS ?= 1
train: install
	OMP_NUM_THREADS=$(TRAIN_THREADS) $(BIN)/mnist-lit fit --config $(CONFIG) --data.data_dir $(DATA_DIR)
	OMP_NUM_THREADS=$(TRAIN_THREADS) $(BIN)/mnist-lit test --config $(CONFIG) --data.data_dir $(DATA_DIR) --ckpt_path best

# The everyday suite: unit and command-line tests on generated data, and the docstrings'
# examples, on two workers of one thread each (torch's threads would fight over the cores).
test: install
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2 --dist loadfile -m "not ($(FULL_ONLY))"

# Everything: lint, the everyday suite, then the real-MNIST, DDP, serving, browser,
# PostgreSQL, SLURM and notebook tests one at a time. The real MNIST, Chromium, PostgreSQL and SLURM are
# required here, not skipped.
check: lint test
	MNIST_LIT_REQUIRE_DATA=1 MNIST_LIT_REQUIRE_BROWSER=$(MNIST_LIT_REQUIRE_BROWSER) \
		MNIST_LIT_REQUIRE_POSTGRES=$(MNIST_LIT_REQUIRE_POSTGRES) \
		MNIST_LIT_REQUIRE_SLURM=$(MNIST_LIT_REQUIRE_SLURM) $(BIN)/pytest -m "$(FULL_ONLY)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

clean:
	rm -rf logs .pytest_cache .mypy_cache .ruff_cache

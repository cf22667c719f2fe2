# Two commands do everything on a fresh machine: `make train` and `make test`.
VENV ?= .venv
CONFIG ?= configs/seed_cross_entropy.yaml
DATA_DIR ?= data
BIN := $(VENV)/bin

.PHONY: install train test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"
	touch $@

# Train the tutorial's model, then report the test accuracy of its best checkpoint.
train: install
	$(BIN)/mnist-lit fit --config $(CONFIG) --data.data_dir $(DATA_DIR)
	$(BIN)/mnist-lit test --config $(CONFIG) --data.data_dir $(DATA_DIR) --ckpt_path best

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf logs .pytest_cache .mypy_cache .ruff_cache

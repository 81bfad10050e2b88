# Two entry points (see README): `make demo` and `make test`. Both create .venv in the checkout.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test smoke bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed        ## install, then run the notebook pipeline on the KAIST data
	$(BIN)/semcathode run --profile demo

test: $(BIN)/.installed        ## install, then run the whole test suite
	$(BIN)/python -m pytest -q -ra

smoke: $(BIN)/.installed
	$(BIN)/semcathode run --profile smoke

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf reports/smoke reports/*.staging .pytest_cache

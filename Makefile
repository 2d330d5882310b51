# The two quick-start commands (`make demo`, `make test`) create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# e.g. `make demo DEMO_FLAGS="--exit -v"`
DEMO_FLAGS ?=

.PHONY: demo test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## demo: apply the topology and run the hub end to end on the local RabbitMQ
## (scripts/broker-setup first turns on the management plugin of a local broker if it is off)
demo: $(STAMP)
	./scripts/broker-setup
	$(BIN)/liaison demo $(DEMO_FLAGS)

## test: lint, type-check, then every test (unit and real-broker integration)
test: lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

bench: $(STAMP)
	$(BIN)/liaison bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

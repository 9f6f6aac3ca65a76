# The two commands of the README: `make run` (the studio) and `make test` (the whole suite).
# Both set up everything they need on a fresh machine: a virtual environment in .venv with the
# project installed editable with all extras (the CPU torch 2.13.0 comes from the local wheel).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	bash packaging/setup-machine.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/comic-studio demo --out demo_out

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/run.py --json

clean:
	rm -rf $(VENV) demo_out

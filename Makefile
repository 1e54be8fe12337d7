# The README's two commands. Each does its own set-up first (idempotent: seconds once done).
#   make demo   train + evaluate on the built-in demo data, draw detections
#   make test   run the test suite
# VENV=path puts the virtual environment elsewhere (default .venv at the repository root).
VENV ?= .venv
PYTHON := $(abspath $(VENV))/bin/python
export FM_VENV := $(abspath $(VENV))

.PHONY: env test demo
env:
	bash tools/setup_env.sh

test: env
	$(PYTHON) -m pytest $(PYTEST_ARGS)

demo: env
	$(PYTHON) tools/run_demo.py $(DEMO_ARGS)

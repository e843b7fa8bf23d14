# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# the virtual environments they need.
PYTHON ?= python3.11
VENV := .venv
EDGE_VENV := .venv-edge
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test assets clean

# Main environment: TensorFlow for training and conversion, ai-edge-litert, tests.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[train,demo,test]"
	touch $@

# Edge environment, our stand-in for a device: tflite-runtime 2.14, NumPy < 2, no TensorFlow.
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e ".[tflite-runtime,test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/python -m converters.demo --out_dir demo_out

# android_assets/: the demo's step models, manifest.json and the Kotlin sample's inputs.
assets: $(VENV)/.installed
	$(VENV)/bin/python -m converters.make_assets --out_dir android_assets

# Models and TensorFlow references for the runtime tests, which also run in the edge venv.
FIXTURES := build/fixtures

test: $(VENV)/.installed $(EDGE_VENV)/.installed
	rm -rf $(FIXTURES) && $(VENV)/bin/python tests/make_fixtures.py $(FIXTURES)
	TFLSTM_EDGE_PYTHON=$(abspath $(EDGE_VENV))/bin/python $(VENV)/bin/python -m pytest -q
	$(EDGE_VENV)/bin/python -m pytest -q tests/runtime

clean:
	rm -rf $(VENV) $(EDGE_VENV) build demo_out .pytest_cache

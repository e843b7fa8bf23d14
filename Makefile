# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# the virtual environments they need.
PYTHON ?= python3.11
VENV := .venv
EDGE_VENV := .venv-edge
FLINK_VENV := .venv-flink
# The Flink tests (tests/flink, Java needed): `make test` runs their short form (thread mode, 32-42 s:
# serial replay, int8, reset/end, default records, recovery with RocksDB); `make flink-test` runs them all
# (both execution modes and state backends, state TTL, the example, the benchmark's smoke run).
FLINK_PYTEST := $(FLINK_VENV)/bin/python -m pytest -q -p no:cacheprovider --basetemp=build/flink-test
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test assets bench bench-full bench-arm flink-java flink-test flink-example flink-bench clean

# Main environment: TensorFlow for training and conversion, ai-edge-litert, tests.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[train,demo,test,bench]"
	touch $@

# Edge environment, our stand-in for a device: tflite-runtime 2.14, NumPy < 2, no TensorFlow.
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e ".[tflite-runtime,test]"
	touch $@

# Flink environment (tflstm.flink): PyFlink 2.3 (its apache-beam caps NumPy < 2.2), ai-edge-litert.
$(FLINK_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_VENV)/bin/pip install $(PIP_FLAGS) -e ".[flink,test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/python -m converters.demo --out_dir demo_out

# android_assets/: the demo's step models, manifest.json and the Kotlin sample's inputs.
assets: $(VENV)/.installed
	$(VENV)/bin/python -m converters.make_assets --out_dir android_assets

# Models and TensorFlow references for the runtime tests, which also run in the edge venv.
FIXTURES := build/fixtures

test: $(VENV)/.installed $(EDGE_VENV)/.installed flink-java $(FLINK_VENV)/.installed
	rm -rf $(FIXTURES) && $(VENV)/bin/python tests/make_fixtures.py $(FIXTURES)
	TFLSTM_EDGE_PYTHON=$(abspath $(EDGE_VENV))/bin/python $(VENV)/bin/python -m pytest -q
	$(EDGE_VENV)/bin/python -m pytest -q tests/runtime
	$(FLINK_PYTEST) -m "not slow" tests/flink

# Benchmarks (benchmarks/run.py): quick is what CI smoke-runs; full takes about 15 minutes.
bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --suite quick --out build/bench

bench-full: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --suite full --out build/bench-full

# The runtime part of the benchmark on aarch64 under qemu user-mode emulation: builds
# the models and a TensorFlow reference on this machine, sets up an arm64 Python root
# (Debian packages + aarch64 wheels), then runs the runner there against that reference.
# Emulated timings are not hardware timings: only ratios are shown.
ARM_OUT := build/bench-arm
bench-arm: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --suite quick --peers=false --out $(ARM_OUT)/x86_64
	bash benchmarks/arm/setup.sh
	benchmarks/arm/run.sh -m benchmarks.run --suite quick --emulated --backend litert \
		--models_dir $(ARM_OUT)/x86_64/models --out $(ARM_OUT)/aarch64

# Apache Flink (tflstm.flink) on PyFlink's local mini-cluster; needs Java 11 or 17 on this machine.
# Logs, temporary files and checkpoints stay under build/.
flink-java:
	@if [ -n "$$JAVA_HOME" ]; then java="$$JAVA_HOME/bin/java"; else java="$$(command -v java)"; fi; \
	[ -n "$$java" ] && [ -x "$$java" ] || { echo "PyFlink needs a Java 11 or 17 runtime and found none (no java on PATH, or JAVA_HOME without bin/java): install one, e.g. apt-get install openjdk-17-jre-headless, or set JAVA_HOME." >&2; exit 1; }

flink-test: flink-java $(FLINK_VENV)/.installed
	$(FLINK_PYTEST) tests/flink

flink-example: flink-java $(FLINK_VENV)/.installed
	$(FLINK_VENV)/bin/python examples/flink_digits_job.py --out build/flink-example

flink-bench: flink-java $(FLINK_VENV)/.installed
	$(FLINK_VENV)/bin/python -m benchmarks.flink_bench --repeat 3 --out build/flink-bench

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(FLINK_VENV) build demo_out .pytest_cache

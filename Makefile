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

.PHONY: demo test assets wheel bench bench-full bench-pool bench-arm fuzz soak load flink-java flink-test flink-example flink-bench clean

# The sensor demo's recordings ship inside the aeon wheel: its files only are read, so
# it is installed without its dependencies (numba, pandas, ...).
AEON := aeon==1.6.*

# Editable installs build the C hot path (tflstm/runtime/_hotpath.c) in place: a changed source reinstalls.
PACKAGE_BUILD := pyproject.toml setup.py tflstm/runtime/_hotpath.c

# Main environment: TensorFlow for training and conversion, ai-edge-litert, the server, tests.
$(VENV)/.installed: $(PACKAGE_BUILD)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[train,demo,test,bench,serve]"
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps "$(AEON)"
	touch $@

# Edge environment, our stand-in for a device: tflite-runtime 2.14, NumPy < 2, no TensorFlow.
$(EDGE_VENV)/.installed: $(PACKAGE_BUILD)
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e ".[tflite-runtime,test]"
	touch $@

# Flink environment (tflstm.flink): PyFlink 2.3 (its apache-beam caps NumPy < 2.2), ai-edge-litert.
$(FLINK_VENV)/.installed: $(PACKAGE_BUILD)
	$(PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_VENV)/bin/pip install $(PIP_FLAGS) -e ".[flink,test]"
	touch $@

# Both demos (digits, then smartwatch motions) into demo_out/; each prints its wall time.
demo: $(VENV)/.installed
	$(VENV)/bin/tflstm demo --out-dir demo_out

# The Android assets: the digits demo's step models (its checkpoint reused when `make demo`
# wrote one), manifest.json. Into build/android_assets; REFRESH=1 rewrites the committed
# android_assets/.
ASSETS_OUT := $(if $(REFRESH),android_assets,build/android_assets)
assets: $(VENV)/.installed
	$(VENV)/bin/python -m converters.make_assets --out_dir $(ASSETS_OUT)

# The wheel of this machine (CPython 3.11, this OS and CPU, with the C hot path) and the source
# distribution, into dist/. On a device like this machine: pip install 'dist/tflstm-<version>-cp311-*.whl[litert]';
# on any other (a Raspberry Pi...): pip install 'dist/tflstm-<version>.tar.gz[litert]' (or [tflite-runtime]),
# which compiles the C hot path there (a C compiler and the Python headers; else the hot path runs in Python).
DIST ?= dist
wheel: $(VENV)/.installed
	rm -rf $(DIST)
	$(VENV)/bin/pip wheel $(PIP_FLAGS) --no-deps --wheel-dir $(DIST) .
	mkdir -p build && $(VENV)/bin/python -m build --sdist --outdir $(DIST) . >build/sdist.log 2>&1 || { cat build/sdist.log; exit 1; }

# Models and TensorFlow references for the runtime tests, which also run in the edge venv.
FIXTURES := build/fixtures

test: $(VENV)/.installed $(EDGE_VENV)/.installed flink-java $(FLINK_VENV)/.installed
	rm -rf $(FIXTURES) && $(VENV)/bin/python tests/make_fixtures.py $(FIXTURES)
	TFLSTM_EDGE_PYTHON=$(abspath $(EDGE_VENV))/bin/python $(VENV)/bin/python -m pytest -q
	$(EDGE_VENV)/bin/python -m pytest -q tests/runtime
	$(FLINK_PYTEST) -m "not slow" tests/flink

# Reliability, long forms (make test runs short ones): mutated models on both backends,
# each case in a forked child; SIGKILLs mid-save and mid-pool (SQLite store); a million-step soak;
# the server under 64 loopback clients x 1,000 steps each, checked against a serial replay.
RELIABILITY_MODELS := android_assets/digits_step_float32.tflite android_assets/digits_step_dynamic.tflite \
	android_assets/digits_step_int8.tflite $(FIXTURES)/keras_stock_step.tflite
fuzz: $(VENV)/.installed $(EDGE_VENV)/.installed
	test -f $(FIXTURES)/keras_stock_step.tflite || $(VENV)/bin/python tests/make_fixtures.py $(FIXTURES)
	$(VENV)/bin/python tests/reliability/fuzz_models.py --cases 10000 --seed 0 --backend litert $(RELIABILITY_MODELS)
	$(EDGE_VENV)/bin/python tests/reliability/fuzz_models.py --cases 10000 --seed 0 --backend tflite_runtime $(RELIABILITY_MODELS)

soak: $(VENV)/.installed
	$(VENV)/bin/python tests/reliability/kill_saves.py --kills 200 --seed 0 android_assets/digits_step_float32.tflite
	$(VENV)/bin/python tests/reliability/kill_pool.py --kills 200 --seed 0 android_assets/digits_step_float32.tflite
	$(VENV)/bin/python tests/reliability/soak.py --steps 1000000 android_assets/digits_step_float32.tflite

load: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.serve_load --clients 64 --steps 1000 android_assets/digits_step_float32.tflite

# Benchmarks (benchmarks/run.py): quick is what CI smoke-runs; full takes about 15 minutes.
bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --suite quick --out build/bench

bench-full: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --suite full --out build/bench-full
	$(VENV)/bin/python -m benchmarks.one_model --models_dir build/bench-full/models

# Keyed streams (benchmarks/pool_bench.py): 100,000 keys through a pool of 1,000 on SQLite, pool vs
# run_step, threads, bytes per idle stream, the server at 64 loopback clients. About 4 minutes.
bench-pool: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.pool_bench --suite full --out build/bench-pool

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
	rm -rf $(VENV) $(EDGE_VENV) $(FLINK_VENV) build demo_out $(DIST) .pytest_cache

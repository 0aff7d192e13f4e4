#!/usr/bin/env bash
# benchmarks/gpu/venv.sh VENV PYTHON: the Python environment run.sh uses on the GPU machine,
# and prebuild.sh here at the same path (a LAMMPS built here finds libmpi in VENV/lib there).
# PYTHON's packages (torch: on the GPU machine the image's python3 is itself a venv holding
# it) are seen through a .pth file; the carried wheels (.gpu/wheels: mpirun, mpicxx, ase)
# are its own.
set -euo pipefail
VENV=${1:?usage: venv.sh VENV PYTHON}
PYTHON=${2:?usage: venv.sh VENV PYTHON}
site() { "$1" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
"$PYTHON" -m venv "$VENV"
site "$PYTHON" > "$(site "$VENV/bin/python")/image-packages.pth"
"$VENV/bin/python" -m pip install -q --no-index --no-deps --ignore-installed .gpu/wheels/*.whl

#!/usr/bin/env bash
# Here (with network): pack what benchmarks/gpu/run.sh needs on the GPU machine, which has
# torch, numpy, CMake, ninja and nvcc but no network, into .gpu/ (ignored by git; carry it):
#   .gpu/sources.tar.xz   LAMMPS 4 Jul 2026 cmake/ + the src/ parts the build compiles (core,
#                         fmt, nlohmann, KOKKOS, MANYBODY, PLUGIN; only the styles the checks
#                         use: benchmarks/gpu/lean_lammps.py) and Kokkos 5.0.2, unpacked
#   .gpu/wheels/          mpich (mpirun, mpicxx, libmpi) and ase, for Python 3.12
#   .gpu/Si.sw            the Stillinger-Weber file the reference model is exported from
# About 20 MB. Run after `make install`; it downloads and unpacks the sources into
# build/lammps-kokkos as `make kokkos` does, without building them.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=build/lammps-kokkos
[ -f "$PREFIX/src/lammps/.unpacked" ] && [ -f "$PREFIX/src/kokkos/.unpacked" ] \
  || MLFF_UNPACK_ONLY=1 VENV_BIN="$PWD/.venv/bin" kokkos/build_lammps_kokkos.sh "$PREFIX"
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/stage/src
cp -a "$PREFIX/src/kokkos" .gpu/stage/src/kokkos
mkdir -p .gpu/stage/src/lammps/src .gpu/stage/src/lammps/doc .gpu/stage/src/lammps/bench \
  .gpu/stage/src/lammps/potentials
cp -a "$PREFIX/src/lammps/cmake" .gpu/stage/src/lammps/
find "$PREFIX/src/lammps/src" -maxdepth 1 -type f -exec cp -a {} .gpu/stage/src/lammps/src/ \;
for package in KOKKOS MANYBODY PLUGIN fmt nlohmann; do
  cp -a "$PREFIX/src/lammps/src/$package" .gpu/stage/src/lammps/src/
done
# only the styles the checks use: the CUDA build compiles every file with nvcc
python3 benchmarks/gpu/lean_lammps.py .gpu/stage/src/lammps/src
touch .gpu/stage/src/lammps/doc/lammps.1 .gpu/stage/src/lammps/doc/msi2lmp.1 \
  .gpu/stage/src/lammps/.unpacked
tar cJf .gpu/sources.tar.xz -C .gpu/stage src
rm -rf .gpu/stage
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .gpu/wheels mpich==5.0.2 "ase==$(.venv/bin/python -c \
  'import ase; print(ase.__version__)')"
cp "$(.venv/bin/python -c 'from mlff_tools.lammps import potentials_dir; print(potentials_dir())')/Si.sw" .gpu/
du -sh .gpu

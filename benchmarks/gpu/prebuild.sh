#!/usr/bin/env bash
# Here (nvcc, no GPU, no libcuda): build the Kokkos CUDA LAMMPS that `benchmarks/gpu/run.sh kk`
# otherwise builds on the GPU machine (322 s of a session's 15 GPU minutes on 27 Nov), and pack
# it as .gpu/lammps-cuda.tar.xz for run.sh to carry and unpack there.
#
#   benchmarks/gpu/prepare.sh && benchmarks/gpu/prebuild.sh     (about 27 minutes on 2 cores)
#
# What makes a build here run there:
# - the same paths: LAMMPS in /tmp/mlff-gpu-lammps-cuda (run.sh unpacks it there), and mpich
#   from a venv in /tmp/mlff-gpu-venv, where run.sh makes its venv with the same mpich wheel
#   (lmp finds libmpi through its run path);
# - the same nvcc (13.0 there; run.sh compares the version recorded in the archive);
# - a stub libcuda.so.1 to link against, with every function of cuda.h: the real one is the
#   GPU driver's, found there by the loader (the stub's folder is in no run path);
# - the plugin, compiled there with g++ 13 whose C++20 has std::format, takes this build's
#   bundled fmt (CMakeLists.txt, pair_style/mlff_bundled_fmt.h).
# run.sh checks that the unpacked lmp starts and that the plugin loads into it, and builds
# LAMMPS from .gpu/sources.tar.xz as before where either fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=/tmp/mlff-gpu-lammps-cuda
VENV=/tmp/mlff-gpu-venv
STUB=$PREFIX/cuda-stub
[ -f .gpu/sources.tar.xz ] && [ -d .gpu/wheels ] || { echo "run benchmarks/gpu/prepare.sh first" >&2; exit 1; }
command -v nvcc >/dev/null || { echo "prebuild.sh needs nvcc (CUDA 13)" >&2; exit 1; }
# nvcc's own include folder (nvcc may be a script that calls the toolkit's)
CUDA_INCLUDE=$(nvcc --dryrun -x cu -c /dev/null 2>&1 | sed -n 's/.*INCLUDES="-I\([^"]*\)".*/\1/p' | head -1)
[ -f "$CUDA_INCLUDE/cuda.h" ] || { echo "no cuda.h in nvcc's include folder '$CUDA_INCLUDE'" >&2; exit 1; }

if [ ! -x "$VENV/bin/mpicxx" ]; then
  # as run.sh makes it there, seeing the project's packages (torch: its string ABI)
  rm -rf "$VENV"
  benchmarks/gpu/venv.sh "$VENV" .venv/bin/python
fi

if [ ! -f "$STUB/libcuda.so" ]; then
  mkdir -p "$STUB"
  # every driver function cuda.h declares, under the names its macros give (cuMemAlloc_v2)
  gcc -E -P "$CUDA_INCLUDE/cuda.h" | grep -oE '\bcu[A-Z][A-Za-z0-9_]*\s*\(' | sed -E 's/\s*\($//' \
    | sort -u | awk '{print "int " $1 "(void) { return 999; }"}' > "$STUB/stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUB/libcuda.so" "$STUB/stub.c"
  ln -sf libcuda.so "$STUB/libcuda.so.1"     # the name lmp's link looks for (-rpath-link)
fi

if [ ! -f "$PREFIX/.installed" ]; then
  mkdir -p "$PREFIX"
  [ -f "$PREFIX/src/lammps/.unpacked" ] || tar xJf .gpu/sources.tar.xz -C "$PREFIX"
  SECONDS=0
  MLFF_KOKKOS=cuda MLFF_CUDA_DRIVER_LIBRARY="$STUB/libcuda.so" VENV_BIN="$VENV/bin" \
    JOBS=${JOBS:-$(nproc)} kokkos/build_lammps_kokkos.sh "$PREFIX"
  echo "LAMMPS (KOKKOS cuda) built in $SECONDS s"
fi
# it starts (the stub standing in for the driver) and has KOKKOS
# (its output read whole first: grep -q would close the pipe early, and pipefail see SIGPIPE)
help=$(LD_LIBRARY_PATH=$STUB "$PREFIX/bin/lmp" -h 2>&1 || true)
grep -q "KOKKOS" <<< "$help" || { echo "$PREFIX/bin/lmp does not start or has no KOKKOS:" >&2
                                  tail -3 <<< "$help" >&2; exit 1; }

# what the plugin's build and lmp need, without the sources (.gpu/sources.tar.xz has them)
nvcc --version | grep -o "release [0-9.]*" > "$PREFIX/nvcc-version"     # "release 13.0"
tar cJf .gpu/lammps-cuda.tar.xz -C "$PREFIX" .installed nvcc-version bin lib kokkos \
  build-lammps/CMakeCache.txt build-lammps/styles
ls -l .gpu/lammps-cuda.tar.xz
du -sh .gpu

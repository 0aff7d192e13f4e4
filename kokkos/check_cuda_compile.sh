#!/usr/bin/env bash
# Compile the plugin for CUDA on a machine without a GPU: proves that pair_style mlff/kk's
# Kokkos kernels (lambdas on the device, views, atomics) and the libtorch wrapper build with
# nvcc for a Hopper GPU (sm_90) before a GPU machine's time is spent on it. Nothing runs.
#
#   kokkos/check_cuda_compile.sh PREFIX WORKDIR    (PREFIX: a `make kokkos` build)
#
# Kokkos 5.0.2 is configured for CUDA (HOPPER90) only to generate its configuration headers:
# CMake's generate step wants libcuda, which a machine without a GPU driver lacks, and no
# Kokkos library is built. Each plugin source is then compiled (-c) by Kokkos's nvcc_wrapper
# with the definitions the CMake build of the plugin uses. Exit status 0: all compiled.
set -euo pipefail
PREFIX=$(realpath "${1:?usage: check_cuda_compile.sh PREFIX WORKDIR}")
WORK=$(realpath -m "${2:?usage: check_cuda_compile.sh PREFIX WORKDIR}")
ROOT=$(realpath "$(dirname "$0")/..")
PYTHON=${PYTHON:-python3}
KOKKOS=$PREFIX/src/kokkos
LAMMPS=$PREFIX/src/lammps/src
command -v nvcc >/dev/null || { echo "no nvcc on PATH" >&2; exit 2; }
mkdir -p "$WORK"
if [ ! -f "$WORK/kokkos/KokkosCore_config.h" ]; then
  cmake -S "$KOKKOS" -B "$WORK/kokkos" -D CMAKE_CXX_COMPILER="$KOKKOS/bin/nvcc_wrapper" \
    -D CMAKE_CXX_STANDARD=20 -D Kokkos_ENABLE_SERIAL=ON -D Kokkos_ENABLE_CUDA=ON \
    -D Kokkos_ARCH_HOPPER90=ON -D Kokkos_ENABLE_IMPL_VIEW_LEGACY=ON > "$WORK/configure.log" 2>&1 || true
  [ -f "$WORK/kokkos/KokkosCore_config.h" ] || { tail -30 "$WORK/configure.log"; exit 1; }
fi
torch_include=$("$PYTHON" -c "import torch.utils.cpp_extension as c; print(' '.join('-I' + p for p in c.include_paths()))")
mpi_include=$("$PYTHON" "$ROOT/cmake/lammps_info.py" --mpi-only | sed -n 's/^MPI_INCLUDE_DIR=//p')
flags=(-std=c++20 -O2 -arch=sm_90 -extended-lambda -expt-relaxed-constexpr
       -DLMP_KOKKOS -DLMP_KOKKOS_DOUBLE_DOUBLE -DLMP_KOKKOS_LAYOUT_LEGACY -DLAMMPS_SMALLBIG
       -DLAMMPS_MEMALIGN=64 -DMPICH_SKIP_MPICXX -DMLFF_KOKKOS -I"$WORK/info"
       -I"$LAMMPS" -I"$LAMMPS/KOKKOS" -I"$PREFIX/build-lammps/styles"
       -I"$WORK/kokkos" -I"$WORK/kokkos/core/src" -I"$KOKKOS/core/src" -I"$KOKKOS/containers/src"
       -I"$KOKKOS/algorithms/src" -I"$KOKKOS/tpls/desul/include" -I"$KOKKOS/tpls/mdspan/include"
       -I"$mpi_include" -I"$ROOT/pair_style")
# the header CMake generates; its strings hold spaces, which nvcc_wrapper split apart when
# they were -D options (a plugin that then refused its own LAMMPS, "4Jul2026")
mkdir -p "$WORK/info"
printf '#pragma once\n#define MLFF_VERSION "check"\n#define MLFF_LAMMPS_VERSION "4 Jul 2026"
#define MLFF_LAMMPS_GIT "4 Jul 2026"\n#define MLFF_REBUILD_HINT "make kokkos"\n' \
  > "$WORK/info/mlff_build_info.h"
# the sources compile side by side (each one nvcc process; the slowest two take minutes),
# each into its own log, shown when it fails
pids=()
# MLFF_CHECK_SOURCES: only these (e.g. pair_mlff_kokkos.cpp); MLFF_NVCC_FLAGS: more flags, e.g.
# "-Xptxas -v" for each kernel's registers, spills and local memory (in the source's log)
read -r -a sources <<< "${MLFF_CHECK_SOURCES:-pair_mlff_kokkos.cpp mlff_model.cpp mlff_native.cpp mlffplugin.cpp pair_mlff.cpp}"
read -r -a more_flags <<< "${MLFF_NVCC_FLAGS:-}"
for source in "${sources[@]}"; do
  extra=()
  case "$source" in mlff_model.cpp|mlff_native.cpp) extra=($torch_include);; esac
  echo "nvcc (sm_90): $source"
  "$KOKKOS/bin/nvcc_wrapper" "${flags[@]}" "${more_flags[@]}" "${extra[@]}" -c "$ROOT/pair_style/$source" \
    -o "$WORK/$source.o" > "$WORK/$source.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!sources[@]}"; do
  wait "${pids[$i]}" || { echo "nvcc failed on ${sources[$i]}:"; cat "$WORK/${sources[$i]}.log"; failed=1; }
done
[ "$failed" = 0 ] || exit 1
if [[ " ${sources[*]} " == *" mlffplugin.cpp "* ]]; then
  grep -a -F -q "rebuild it against the installed lammps: make kokkos" "$WORK/mlffplugin.cpp.o" \
    && grep -a -F -q "4 Jul 2026" "$WORK/mlffplugin.cpp.o" \
    || { echo "nvcc changed the version strings of mlffplugin.cpp"; exit 1; }
fi
if [ -z "${MLFF_CHECK_SOURCES:-}" ]; then
  echo "all plugin sources compile for CUDA sm_90"
else
  echo "compiled for CUDA sm_90: ${sources[*]}"
fi

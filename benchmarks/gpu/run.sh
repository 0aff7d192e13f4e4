#!/usr/bin/env bash
# Every GPU check and benchmark of mlff in one command, for the GPU machine (device tool:
# torch with CUDA, nvcc, CMake, 16 cores, no network). Prepare .gpu/ here first with
# benchmarks/gpu/prepare.sh and carry it; then, from the repository root there:
#
#   benchmarks/gpu/run.sh mlff   # plain LAMMPS + plugin built against that machine's CUDA torch:
#                                # `pair_style mlff device cuda` parity and speed (est. 6-8 min)
#   benchmarks/gpu/run.sh kk     # Kokkos CUDA LAMMPS (only the styles the checks use) +
#                                # plugin: mlff/kk parity, speed and per-step split (the
#                                # students' own kernel, `evaluator native`, first), the plain
#                                # style's speed beside it; while LAMMPS builds, the
#                                # student's kernel profile and the CUDA package probe
#                                # (compile_probe.py; a package that loads is checked in
#                                # LAMMPS after, also under mlff/kk); `train --device cuda` last
#
# In mode kk a carried .gpu/lammps-cuda.tar.xz (benchmarks/gpu/prebuild.sh, run here) is the
# Kokkos CUDA LAMMPS, unpacked in /tmp/mlff-gpu-lammps-cuda; where it does not start or the
# plugin does not load into it, LAMMPS is built from .gpu/sources.tar.xz as without it.
# Writes $OUT/run_MODE.log and $OUT/gpu_checks*.json (OUT defaults to /tmp/mlff-gpu-out).
# DRY_RUN=1 runs the same steps on this CPU-only machine (`device cpu graph device` standing
# in for the GPU, Kokkos OpenMP for CUDA, small sizes); MLFF_GPU_PREFIX reuses a LAMMPS build
# (e.g. build/lammps-kokkos) instead of building one; MLFF_GPU_VENV names the Python
# environment (default: a new venv that sees $PYTHON's packages, python3 by default, and
# holds the carried wheels); MLFF_GPU_SECONDS (default 480) bounds the whole script: no speed
# run starts after that; MLFF_GPU_STAGES runs only the stages it names (comma-separated, as
# checks.py --stages). MLFF_GPU_BG_KOKKOS=1 (mode mlff) also builds the Kokkos CUDA LAMMPS in
# the background at the lowest priority and logs how far it got ($OUT/bg_kokkos_cuda.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-mlff}
case "$MODE" in mlff|kk) ;; *) echo "usage: run.sh mlff|kk" >&2; exit 2;; esac
OUT=${OUT:-/tmp/mlff-gpu-out}
DRY=${DRY_RUN:-0}
mkdir -p "$OUT"
DEADLINE=$(( $(date +%s) + ${MLFF_GPU_SECONDS:-480} ))
exec > >(tee "$OUT/run_$MODE.log") 2>&1
date; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"

VENV=$(realpath -m "${MLFF_GPU_VENV:-/tmp/mlff-gpu-venv}")
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  benchmarks/gpu/venv.sh "$VENV" "$PYTHON"
fi
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

if [ "$MODE" = mlff ] && [ "${MLFF_GPU_BG_KOKKOS:-0}" = 1 ] && [ "$DRY" != 1 ]; then
  bg=$(realpath -m build/gpu/lammps-cuda)
  mkdir -p "$bg"
  [ -f "$bg/src/lammps/.unpacked" ] || tar xJf .gpu/sources.tar.xz -C "$bg"
  ( SECONDS=0
    MLFF_KOKKOS=cuda VENV_BIN="$VENV/bin" JOBS=12 nice -n 19 kokkos/build_lammps_kokkos.sh "$bg" 2>&1 \
      | grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|rror|stage|built|Kokkos' \
      | while IFS= read -r line; do echo "$SECONDS s: ${line:0:300}"; done
    echo "$SECONDS s: finished, status ${PIPESTATUS[0]}" ) > "$OUT/bg_kokkos_cuda.log" 2>&1 &
fi

stages=parity,speed,profile,steps,compiled,training,large
# MLFF_GPU_STAGES (e.g. speed,steps): only those stages, as a second call to a machine still
# warm from the first does (its LAMMPS build is kept); the background kernel profile and
# package probe run only where the `compiled` stage, which waits for them, is asked for
background_wanted=1
[ -n "${MLFF_GPU_STAGES:-}" ] && [[ ",$MLFF_GPU_STAGES," != *,compiled,* ]] && background_wanted=0
if [ "$MODE" = kk ] && [ "$background_wanted" = 1 ]; then
  # what needs no LAMMPS runs now, beside the build, and is done before the timed runs
  # start: where the student's time goes (kernels), then why CUDA packages crash on load
  # under torch 2.11 (probe: a trivial package, the student, gdb's backtrace; a student
  # package that loads goes on to the `compiled` stage)
  PYTHONUNBUFFERED=1 "$VENV/bin/python" benchmarks/gpu/checks.py --sw .gpu/Si.sw \
    --out "$OUT" --work /tmp/mlff-gpu-bg --stages kernels,probe --tag _bg --deadline "$DEADLINE" \
    $([ "$DRY" = 1 ] && echo --dry-run) > "$OUT/background.log" 2>&1 &
  background=$!
fi
if [ "$MODE" = kk ]; then
  # parity (the students' native kernel too), then speed with the native kernel first (the
  # likeliest way to the 1e7 target: nothing else ran before the deadline on 27 Nov), the
  # per-step split, then the compiled packages (waits for them); training last
  stages=parity,speed,steps,compiled,profile,large,training
fi
stages=${MLFF_GPU_STAGES:-$stages}

backend=none
[ "$MODE" = kk ] && backend=cuda
[ "$DRY" = 1 ] && [ "$MODE" = kk ] && backend=openmp

build_lammps() {  # build_lammps PREFIX: LAMMPS from .gpu/sources.tar.xz (322 s on 27 Nov)
  [ -f "$1/.installed" ] && return 0
  mkdir -p "$1"
  [ -f "$1/src/lammps/.unpacked" ] || tar xJf .gpu/sources.tar.xz -C "$1"
  SECONDS=0
  MLFF_KOKKOS=$backend VENV_BIN="$VENV/bin" JOBS=$(nproc) nice -n 5 kokkos/build_lammps_kokkos.sh "$1" \
    > "$OUT/build_lammps_$MODE.log" 2>&1 || { tail -40 "$OUT/build_lammps_$MODE.log"; return 1; }
  echo "LAMMPS (KOKKOS $backend) built in $SECONDS s"
}

# the Kokkos CUDA LAMMPS that benchmarks/gpu/prebuild.sh built on a machine without a GPU
# (.gpu/lammps-cuda.tar.xz, carried), unpacked where it was built; not where it was found
# not to work in an earlier call to this machine
PREBUILT=/tmp/mlff-gpu-lammps-cuda
use_prebuilt() {
  [ "$backend" = cuda ] && [ -z "${MLFF_GPU_PREFIX:-}" ] && [ -f .gpu/lammps-cuda.tar.xz ] \
    && [ ! -f "$PREBUILT/.failed" ] || return 1
  if [ ! -f "$PREBUILT/.installed" ]; then
    rm -rf "$PREBUILT" && mkdir -p "$PREBUILT"
    tar xJf .gpu/sources.tar.xz -C "$PREBUILT" && tar xJf .gpu/lammps-cuda.tar.xz -C "$PREBUILT" \
      || { echo "prebuilt LAMMPS: cannot unpack .gpu/lammps-cuda.tar.xz"; return 1; }
  fi
  local built here missing help
  # the same CUDA release (the runtime lmp links, the code nvcc made); patch levels may differ
  built=$(cat "$PREBUILT/nvcc-version"); here=$(nvcc --version | grep -o "release [0-9.]*" || true)
  [ "$built" = "$here" ] || { echo "prebuilt LAMMPS: nvcc $built made it, this nvcc is $here"; return 1; }
  missing=$(ldd "$PREBUILT/bin/lmp" | grep "not found" || true)
  [ -z "$missing" ] || { echo "prebuilt LAMMPS: lmp lacks $missing"; return 1; }
  help=$("$PREBUILT/bin/lmp" -h 2>&1 || true)
  grep -q KOKKOS <<< "$help" || { echo "prebuilt LAMMPS: lmp does not start:"; tail -3 <<< "$help"; return 1; }
  echo "prebuilt LAMMPS (KOKKOS cuda, $built) in $PREBUILT"
}

build_plugin() {  # build_plugin PREFIX: the plugin against that LAMMPS, and check that it loads
  local prefix=$1 cxx=() loaded
  [ "$backend" = cuda ] && cxx=(-DCMAKE_CXX_COMPILER="$prefix/src/kokkos/bin/nvcc_wrapper")
  SECONDS=0
  cmake -S . -B "$prefix/build-plugin-gpu" -DPython_EXECUTABLE="$VENV/bin/python" \
    -DMLFF_LAMMPS_PREFIX="$prefix" "${cxx[@]}" > "$OUT/build_plugin_$MODE.log" 2>&1 \
    && cmake --build "$prefix/build-plugin-gpu" -j "$(nproc)" >> "$OUT/build_plugin_$MODE.log" 2>&1 \
    || { tail -40 "$OUT/build_plugin_$MODE.log"; return 1; }
  mkdir -p "$prefix/plugin-gpu" && cp "$prefix/build-plugin-gpu/mlffplugin.so" "$prefix/plugin-gpu/"
  echo "plugin built in $SECONDS s"
  # the plugin must load into this lmp: if not, say why (undefined symbols, libraries found)
  # (its output read whole first: grep -q would close the pipe early, and pipefail see SIGPIPE)
  loaded=$(echo "plugin load $prefix/plugin-gpu/mlffplugin.so" | "$prefix/bin/lmp" -nocite -log none 2>&1 || true)
  if ! grep -q "Loading plugin: mlff" <<< "$loaded"; then
    echo "the plugin does not load into $prefix/bin/lmp:"
    tail -3 <<< "$loaded"
    ldd "$prefix/bin/lmp" | grep -i -E "lammps|mpi|stdc|cuda"; echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    echo "liblammps Error::_all:"; nm -D --defined-only "$prefix"/lib/liblammps.so* | grep Error4_all | sort -u
    echo "plugin needs:"; nm -u "$prefix/plugin-gpu/mlffplugin.so" | grep LAMMPS_NS | head -8
    return 1
  fi
}

PREFIX=$(realpath -m "${MLFF_GPU_PREFIX:-build/gpu/lammps-$backend}")
if use_prebuilt; then
  if build_plugin "$PREBUILT"; then
    PREFIX=$PREBUILT
  else
    touch "$PREBUILT/.failed"
    echo "the prebuilt LAMMPS does not serve (above): LAMMPS from sources in $PREFIX"
    build_lammps "$PREFIX" && build_plugin "$PREFIX" || exit 1
  fi
else
  build_lammps "$PREFIX" && build_plugin "$PREFIX" || exit 1
fi

args=(--lmp "$PREFIX/bin/lmp" --plugin-dir "$PREFIX/plugin-gpu" --sw .gpu/Si.sw --out "$OUT")
[ "$MODE" = kk ] && args+=(--style mlff/kk --packages /tmp/mlff-gpu-bg/packages)
args+=(--stages "$stages")
[ "$DRY" = 1 ] && args+=(--dry-run)
args+=(--deadline "$DEADLINE")
status=0
PYTHONUNBUFFERED=1 "$VENV/bin/python" benchmarks/gpu/checks.py "${args[@]}" || status=$?
[ -f "$OUT/bg_kokkos_cuda.log" ] && { echo "background Kokkos CUDA build:"; tail -3 "$OUT/bg_kokkos_cuda.log"; }
if [ -f "$OUT/background.log" ]; then
  while kill -0 "${background:-0}" 2>/dev/null && [ "$(date +%s)" -lt "$DEADLINE" ]; do sleep 2; done
  kill "${background:-0}" 2>/dev/null || true
  echo "background (kernels, probe):"; cat "$OUT/background.log"
fi
date
exit $status

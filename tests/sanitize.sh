#!/usr/bin/env bash
# The plugin's C++ under AddressSanitizer and UndefinedBehaviorSanitizer: the native evaluator
# and the mlff/kk kernels (the code a GPU thread runs, here on host threads), the torch path,
# the MPI exchange and the bad-input errors. Both plugins are built with
# -fsanitize=address,undefined into build/sanitize, and the tests that run them run with
# libasan preloaded into Python, lmp and every rank; any report fails the run and is printed.
#
#   make sanitize              (tests/sanitize.sh; about 10 minutes on 2 cores)
#   tests/sanitize.sh -k native          extra arguments go to pytest
#
# Without build/lammps-kokkos (`make kokkos`) only the plain plugin is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
WORK=$PWD/build/sanitize
KOKKOS=$(realpath -m "${KOKKOS_PREFIX:-build/lammps-kokkos}")   # a Kokkos LAMMPS (make kokkos)
FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

build() {  # build FOLDER [cmake arguments]: the plugin with the sanitizers, into FOLDER/plugin
  local dir=$1; shift
  mkdir -p "$dir/plugin"
  { cmake -S . -B "$dir/build" -G Ninja -DCMAKE_MAKE_PROGRAM="$BIN/ninja" \
      -DPython_EXECUTABLE="$BIN/python" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS="$FLAGS" "$@" && cmake --build "$dir/build"; } > "$dir/build.log" 2>&1 \
    || { tail -30 "$dir/build.log"; echo "sanitize: the build failed ($dir/build.log)" >&2; exit 1; }
  cp "$dir/build/mlffplugin.so" "$dir/plugin/"
}

rm -rf "$WORK/reports" && mkdir -p "$WORK/reports"
SECONDS=0
build "$WORK/plain"
tests=(tests/test_native.py tests/test_bad_input.py tests/test_mpi.py)
export MLFF_PLUGIN_DIR=$WORK/plain/plugin
if [ -f "$KOKKOS/.installed" ]; then
  build "$WORK/kk" -DMLFF_LAMMPS_PREFIX="$KOKKOS"
  ln -sfn "$KOKKOS/bin" "$WORK/kk/bin"           # tests/test_kokkos.py: PREFIX/bin, PREFIX/plugin
  export MLFF_LAMMPS_KOKKOS=$WORK/kk
  tests+=(tests/test_kokkos.py --deselect tests/test_kokkos.py::test_plugin_compiles_for_cuda)
else
  echo "sanitize: no $KOKKOS (make kokkos): mlff/kk is not checked"
fi
echo "sanitize: plugins built in $SECONDS s"

# libasan first in every process (Python is not built with it), libstdc++ beside it so that
# its exception interceptor finds __cxa_throw; reports go to files, one per process
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:log_path=$WORK/reports/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$WORK/reports/ubsan
export OMP_NUM_THREADS=1
status=0
"$BIN/python" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@" || status=$?
unset LD_PRELOAD
if compgen -G "$WORK/reports/*" > /dev/null; then
  for report in "$WORK"/reports/*; do echo "== $report"; head -40 "$report"; done
  echo "sanitize: reports above ($WORK/reports)" >&2
  exit 1
fi
[ "$status" = 0 ] || { echo "sanitize: tests failed, no sanitizer report" >&2; exit "$status"; }
echo "sanitize: no report in $SECONDS s"

"""Cost of running a model through pair_style mlff, against LAMMPS's native pair_style sw.

The TorchScript Stillinger-Weber model computes the same energy as native SW,
so the ratio of their speeds is the plugin's overhead: graph building, libtorch
dispatch, autograd and scatter. Prints atom-steps/s and peak memory per rank.

    python benchmarks/plugin_overhead.py [--sizes 512,4096,32768] [--ranks 1,2]
        [--kokkos build/lammps-kokkos] [--no-compiled]

With --kokkos, the same cases run in the Kokkos LAMMPS of `make kokkos` under
`-k on t 1 -sf kk`: native sw/kk against mlff/kk (edges, forces and virial in Kokkos
kernels), and mlff without -sf kk in that binary. Without it, `graph device` (the GPU
path's tensor kernels, here on CPU tensors) is measured beside the default `graph host`.
The model compiled for this machine (`mlff-tools compile`, .pt2) runs beside the TorchScript
file unless --no-compiled.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlff_tools.bench import MEASURE, peak_rss_mb
from mlff_tools.lammps import lmp_executable, loop_speed, mpi_bin_dir, potentials_dir
from mlff_tools.model.compiled import compile_model
from mlff_tools.model.sw import export_sw

# atom-steps per timed run: enough for a few seconds of work
WORK = {"sw": 8e6, "mlff": 1.5e6}
WARMUP_STEPS = 10

INPUT = """
units metal
lattice diamond 5.431
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 28.0855
velocity all create 1500 4928459 loop geom
{pair_style}
{pair_coeff}
fix nve all nve
thermo 1000
run {warmup}
run {steps}
"""

def run_case(folder: Path, pair: tuple[str, str], kind: str, natoms: int, ranks: int,
             kokkos: Path | None = None, suffix: bool = False):
    """atom-steps/s and peak RSS per rank; kokkos: the prefix of a Kokkos LAMMPS to run in,
    suffix: with `-k on t 1 -sf kk` (the /kk styles)."""
    n = round((natoms / 8) ** (1 / 3))
    steps = max(20, int(WORK[kind] / natoms))
    script = folder / f"in.{kind}.{natoms}.{ranks}"
    script.write_text(INPUT.format(n=n, pair_style=pair[0], pair_coeff=pair[1],
                                   warmup=WARMUP_STEPS, steps=steps))
    lmp = kokkos / "bin" / "lmp" if kokkos else lmp_executable()
    command = [str(lmp), "-nocite", "-log", "none", "-in", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kokkos:
        env.update(LAMMPS_PLUGIN_PATH=str(kokkos / "plugin"), OMP_PROC_BIND="false")
    if suffix:
        command += ["-k", "on", "t", "1", "-sf", "kk", "-pk", "kokkos", "newton", "on",
                    "neigh", "half"]
    if ranks > 1:
        command = [str(mpi_bin_dir() / "mpirun"), "-np", str(ranks), *command]
    proc = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True,
                          text=True, cwd=folder, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} at {natoms} atoms on {ranks} ranks failed:\n"
                           f"{(proc.stdout + proc.stderr)[-2000:]}")
    return loop_speed(proc.stdout)[0], peak_rss_mb(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,4096,32768")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--kokkos", type=Path, default=None,
                        help="prefix of the Kokkos LAMMPS (build/lammps-kokkos)")
    parser.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=True,
                        help="also the model compiled for this machine (.pt2, ~40 s to compile)")
    args = parser.parse_args()
    if args.kokkos is not None:
        args.kokkos = args.kokkos.resolve()
    sizes = [int(s) for s in args.sizes.split(",")]
    ranks_list = [int(r) for r in args.ranks.split(",")]

    with tempfile.TemporaryDirectory(prefix="mlff-bench-") as tmp:
        folder = Path(tmp)
        sw = ("pair_style sw", f"pair_coeff * * {potentials_dir() / 'Si.sw'} Si")
        kk = args.kokkos is not None
        # label: (kind, pair lines, with -sf kk)
        styles = {("native sw/kk" if kk else "native sw"): ("sw", sw, kk)}
        for dtype in ("float32", "float64"):
            model = export_sw("Si.sw", folder / f"sw_{dtype}.pt", dtype=dtype)
            pair = (f"pair_style mlff {model}", "pair_coeff * * Si")
            if kk:
                styles[f"mlff/kk {dtype}"] = ("mlff", pair, True)
                styles[f"mlff {dtype}"] = ("mlff", pair, False)
            else:
                styles[f"mlff {dtype}"] = ("mlff", pair, False)
                styles[f"mlff {dtype} g.dev"] = ("mlff", (f"{pair[0]} graph device", pair[1]),
                                                 False)
            if args.compiled:
                started = time.perf_counter()
                package = compile_model(model, model.with_suffix(".pt2"))
                print(f"compiled the {dtype} model in {time.perf_counter() - started:.0f} s",
                      flush=True)
                styles[f"mlff {dtype} .pt2"] = ("mlff", (f"pair_style mlff {package}",
                                                         pair[1]), False)

        print(f"{'atoms':>7} {'ranks':>5} {'style':<19} {'atom-steps/s':>13} "
              f"{'cost / native':>13} {'peak RSS/rank MB':>17}")
        for natoms in sizes:
            for ranks in ranks_list:
                native = None
                for label, (kind, pair, suffix) in styles.items():
                    speed, rss = run_case(folder, pair, kind, natoms, ranks, args.kokkos, suffix)
                    native = native or speed
                    print(f"{natoms:>7} {ranks:>5} {label:<19} {speed:>13.4g} "
                          f"{native / speed:>13.2f} {rss:>17.0f}", flush=True)


if __name__ == "__main__":
    main()

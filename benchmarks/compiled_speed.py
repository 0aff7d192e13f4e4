"""Compiled (AOTInductor .pt2) against TorchScript (.pt): the student in LAMMPS (NVE,
atom-steps/s, one rank, one thread) beside native `pair_style sw`, and the model's own time
per call in Python; `fast` and `accurate` at cutoffs 5 and 6 Å, 512 and 4096 atoms of diamond
Si, float32; and each package's compile time.

    python benchmarks/compiled_speed.py [--out folder] [--skip-python] [--repeats 3]

Prints two tables; random-weight students (the cost does not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ase.build import bulk  # noqa: E402

from mlff_tools.model import EdgeGradient, ModelMetadata, load_model, save_model  # noqa: E402
from mlff_tools.model.compiled import compile_model  # noqa: E402
from mlff_tools.model.graph import atoms_graph  # noqa: E402
from mlff_tools.model.student import PRESETS, StudentEnergy  # noqa: E402


def student(folder: Path, preset: str, cutoff: float) -> Path:
    torch.manual_seed(1)
    energy = StudentEnergy(("Si",), cutoff, dtype=torch.float32, **PRESETS[preset])
    with torch.no_grad():
        for p in energy.parameters():
            p.normal_(0.0, 0.3)
        energy.inv_avg_neighbours.fill_(1 / 30)
    return save_model(EdgeGradient(energy), ModelMetadata(
        species=("Si",), cutoff=cutoff, dtype="float32",
        model={"arch": "density-expansion", "preset": preset, **PRESETS[preset]}),
        folder / f"{preset}_{cutoff:g}.pt")


def per_call_ms(module, graph, repeats=5) -> float:
    def call():
        with torch.enable_grad():
            module(*graph)
    call()
    return min(timeit.repeat(call, number=3, repeat=repeats)) / 3 * 1000


def lammps_table(folder: Path, packages: dict, repeats: int) -> None:
    """atom-steps/s in LAMMPS of each .pt and .pt2, and of native sw at the same sizes: the
    best of ``repeats`` runs of each, the .pt and .pt2 runs in turns, so that a busy spell of
    a shared machine slows one run of each, not one model."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import plugin_overhead
    from mlff_tools.lammps import potentials_dir

    def best(cases):
        rates = [[] for _ in cases]
        for _ in range(repeats):
            for rate, (pair, kind, natoms) in zip(rates, cases):
                rate.append(plugin_overhead.run_case(folder, pair, kind, natoms, 1)[0])
        return [max(rate) for rate in rates]

    plugin_overhead.WORK["mlff"] = 3e5        # a few seconds per run
    sw_file = potentials_dir() / "Si.sw"
    sizes = (512, 4096)
    native = dict(zip(sizes, best([(("pair_style sw", f"pair_coeff * * {sw_file} Si"), "sw", n)
                                   for n in sizes])))
    print(f"LAMMPS, one rank, one thread, best of {repeats} runs (alternated); native sw: "
          + ", ".join(f"{v:.3g} at {n}" for n, v in native.items()) + " atom-steps/s")
    print(f"{'preset':<9}{'cutoff':>7}{'atoms':>7}{'.pt':>11}{'.pt2':>11}{'speed-up':>10}"
          f"{'x sw cost':>11}{'compile s':>11}", flush=True)
    for (preset, cutoff), (source, package, seconds) in packages.items():
        for natoms in sizes:
            rates = best([((f"pair_style mlff {path}", "pair_coeff * * Si"), "mlff", natoms)
                          for path in (source, package)])
            print(f"{preset:<9}{cutoff:>7g}{natoms:>7}{rates[0]:>11.3g}{rates[1]:>11.3g}"
                  f"{rates[1] / rates[0]:>10.2f}{native[natoms] / rates[1]:>11.1f}"
                  f"{seconds:>11.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the models here")
    parser.add_argument("--skip-python", action="store_true", help="LAMMPS only")
    parser.add_argument("--repeats", type=int, default=3,
                        help="LAMMPS runs of each case, in turns; the best is printed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = args.out or Path(tempfile.mkdtemp(prefix="mlff-compiled-"))
    folder.mkdir(parents=True, exist_ok=True)
    packages = {}
    for preset in ("fast", "accurate"):
        for cutoff in (5.0, 6.0):
            source = student(folder, preset, cutoff)
            started = time.perf_counter()
            packages[preset, cutoff] = (source, compile_model(source, source.with_suffix(".pt2")),
                                        time.perf_counter() - started)
    lammps_table(folder, packages, args.repeats)
    if args.skip_python:
        return
    print(f"{'preset':<9}{'cutoff':>7}{'atoms':>7}{'edges':>9}{'TorchScript ms':>16}"
          f"{'compiled ms':>13}{'speed-up':>10}{'compile s':>11}", flush=True)
    for preset in ("fast", "accurate"):
        for cutoff in (5.0, 6.0):
            source, package, compile_seconds = packages[preset, cutoff]
            scripted, compiled = load_model(source).module, load_model(package).module
            for repeat in (4, 8):
                atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(repeat)
                atoms.rattle(0.05, seed=1)
                s, e, v = atoms_graph(atoms, ("Si",), cutoff)
                graph = (torch.from_numpy(s), torch.from_numpy(e),
                         torch.from_numpy(v).float())
                ts, aot = per_call_ms(scripted, graph), per_call_ms(compiled, graph)
                print(f"{preset:<9}{cutoff:>7g}{len(atoms):>7}{e.shape[1]:>9}{ts:>16.2f}"
                      f"{aot:>13.2f}{ts / aot:>10.2f}{compile_seconds:>11.0f}", flush=True)


if __name__ == "__main__":
    main()

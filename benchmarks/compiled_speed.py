"""Compiled (AOTInductor .pt2) against TorchScript (.pt): the student's time per call in
Python, one thread, for the `fast` and `accurate` presets at cutoffs 5 and 6 Å, 512 and 4096
atoms of diamond Si, float32; and each package's compile time.

    python benchmarks/compiled_speed.py [--out folder]

Prints a table; random-weight students (the cost does not depend on the weights). LAMMPS
does not load packages yet, so this is the model's own cost through the Python calling path.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the models here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = args.out or Path(tempfile.mkdtemp(prefix="mlff-compiled-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{'preset':<9}{'cutoff':>7}{'atoms':>7}{'edges':>9}{'TorchScript ms':>16}"
          f"{'compiled ms':>13}{'speed-up':>10}{'compile s':>11}", flush=True)
    for preset in ("fast", "accurate"):
        for cutoff in (5.0, 6.0):
            source = student(folder, preset, cutoff)
            started = time.perf_counter()
            package = compile_model(source, source.with_suffix(".pt2"))
            compile_seconds = time.perf_counter() - started
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

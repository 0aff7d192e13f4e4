"""The student's cost with 1, 2, 3 and 5 species, for both species treatments: radial
weights per species pair (banks 0: n_species^2 blocks) and M shared radial banks mixed per
pair. The weights act per atom on its density sums kept per neighbour species, so both
cost about the same, growing slowly with the species (README, "Species").

    python benchmarks/species_scaling.py [--atoms 4096] [--threads 1] [--banks 0,2,4]
                                         [--compiled]

Random-weight `fast` and `accurate` students (cutoff 5 Å) on diamond-lattice cells whose
sites are given random species; prints the model's time per call (energy and edge gradients,
as LAMMPS calls it; TorchScript, one thread) and atoms/s, against one species per pair.
--compiled also compiles each student (`mlff-tools compile`, about 30 s each) and times the
package on the same graph in turns with the TorchScript file: its ms per call, its cost
against the one-species package, and its speed-up over TorchScript.
Accuracy of the two treatments: benchmarks/species_accuracy.py.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import timeit
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from mlff_tools.model import EdgeGradient, ModelMetadata, load_model, save_model
from mlff_tools.model.graph import atoms_graph
from mlff_tools.model.student import PRESETS, StudentEnergy

ELEMENTS = ("Si", "Ge", "C", "Sn", "Pb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--banks", default="0,2,4", help="radial banks to time (0: per pair)")
    parser.add_argument("--compiled", action="store_true",
                        help="also compile each student and time the package")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    n = max(1, round((args.atoms / 8) ** (1 / 3)))
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((n, n, n))
    atoms.rattle(0.05, seed=1)
    print(f"{len(atoms)} atoms, cutoff 5 Å, {args.dtype}, {args.threads} thread(s); "
          "ms per call (energy + edge gradients, TorchScript"
          + (", and compiled: median of turns" if args.compiled else "") + ")")
    print(f"{'preset':9s} {'banks':>5s} {'species':>7s} {'ms/call':>9s} {'atoms/s':>10s} "
          f"{'vs 1 species':>13s}" + (f" {'.pt2 ms':>8s} {'vs 1 species':>13s} "
                                      f"{'x .pt':>6s}" if args.compiled else ""))
    with tempfile.TemporaryDirectory() as folder:
        for preset in ("fast", "accurate"):
            base = None           # the one-species student with radial weights per pair
            for banks, count in itertools.product([int(b) for b in args.banks.split(",")],
                                                  (1, 2, 3, 5)):
                species = ELEMENTS[:count]
                rng = np.random.default_rng(count)
                atoms.set_chemical_symbols(list(rng.choice(species, len(atoms))))
                index, edge_index, edge_vec = atoms_graph(atoms, species, 5.0)
                torch.manual_seed(0)
                energy = StudentEnergy(species, 5.0, dtype=dtype, radial_banks=banks,
                                       **PRESETS[preset])
                inputs = (torch.from_numpy(index), torch.from_numpy(edge_index),
                          torch.from_numpy(edge_vec).to(dtype))
                modules = [torch.jit.script(EdgeGradient(energy).eval())]
                if args.compiled:
                    modules.append(compiled(energy, species, preset, banks, Path(folder)))
                times = timed(modules, inputs, turns=5 if args.compiled else 1)
                base = base or times
                line = (f"{preset:9s} {banks:5d} {count:7d} {1000 * times[0]:9.1f} "
                        f"{len(atoms) / times[0]:10.3g} {times[0] / base[0]:13.2f}")
                if args.compiled:
                    line += (f" {1000 * times[1]:8.1f} {times[1] / base[1]:13.2f} "
                             f"{times[0] / times[1]:6.2f}")
                print(line, flush=True)


def compiled(energy: StudentEnergy, species, preset: str, banks: int, folder: Path):
    """The student written as a model file and compiled for this machine: its package."""
    from mlff_tools.model.compiled import compile_model

    name = f"{preset}_{len(species)}_{banks}"
    source = save_model(EdgeGradient(energy).eval(), ModelMetadata(
        species=tuple(species), cutoff=5.0, dtype=str(energy.frequencies.dtype)[6:],
        model={"arch": "density-expansion", "preset": preset, "radial_banks": banks,
               **PRESETS[preset]}), folder / f"{name}.pt")
    return load_model(compile_model(source, folder / f"{name}.pt2")).module


def timed(modules, inputs, turns: int) -> list:
    """Seconds per call of each module, the median of ``turns`` turns taken in rotation (each
    the best of 3 x 3 calls), so that a busy spell of the machine falls on all of them."""
    for module in modules:
        for _ in range(3):
            module(*inputs)
    samples = [[] for _ in modules]
    for _ in range(turns):
        for module, sample in zip(modules, samples):
            sample.append(min(timeit.repeat(lambda: module(*inputs), number=3, repeat=3)) / 3)
    return [statistics.median(sample) for sample in samples]

if __name__ == "__main__":
    main()

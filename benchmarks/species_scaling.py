"""The student's cost with 1, 2, 3 and 5 species, for both species treatments: radial
weights per species pair (banks 0: n_species^2 blocks) and M shared radial banks mixed per
pair. The weights act per atom on its density sums kept per neighbour species, so both
cost about the same, growing slowly with the species (README, "Species").

    python benchmarks/species_scaling.py [--atoms 4096] [--threads 1] [--banks 0,2,4]

Random-weight `fast` and `accurate` students (cutoff 5 Å) on diamond-lattice cells whose
sites are given random species; prints the model's time per call (energy and edge gradients,
as LAMMPS calls it; TorchScript, one thread) and atoms/s, against one species per pair.
Accuracy of the two treatments: benchmarks/species_accuracy.py.
"""

from __future__ import annotations

import argparse
import itertools
import timeit

import numpy as np
import torch
from ase.build import bulk

from mlff_tools.model import EdgeGradient
from mlff_tools.model.graph import atoms_graph
from mlff_tools.model.student import PRESETS, StudentEnergy

ELEMENTS = ("Si", "Ge", "C", "Sn", "Pb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--banks", default="0,2,4", help="radial banks to time (0: per pair)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    n = max(1, round((args.atoms / 8) ** (1 / 3)))
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((n, n, n))
    atoms.rattle(0.05, seed=1)
    print(f"{len(atoms)} atoms, cutoff 5 Å, {args.dtype}, {args.threads} thread(s); "
          "ms per call (energy + edge gradients, TorchScript)")
    print(f"{'preset':9s} {'banks':>5s} {'species':>7s} {'ms/call':>9s} {'atoms/s':>10s} "
          f"{'vs 1 species':>13s}")
    for preset in ("fast", "accurate"):
        base = None                 # the one-species student with radial weights per pair
        for banks, count in itertools.product([int(b) for b in args.banks.split(",")],
                                              (1, 2, 3, 5)):
            species = ELEMENTS[:count]
            rng = np.random.default_rng(count)
            atoms.set_chemical_symbols(list(rng.choice(species, len(atoms))))
            index, edge_index, edge_vec = atoms_graph(atoms, species, 5.0)
            torch.manual_seed(0)
            module = torch.jit.script(EdgeGradient(StudentEnergy(
                species, 5.0, dtype=dtype, radial_banks=banks, **PRESETS[preset])).eval())
            inputs = (torch.from_numpy(index), torch.from_numpy(edge_index),
                      torch.from_numpy(edge_vec).to(dtype))
            for _ in range(3):
                module(*inputs)
            seconds = min(timeit.repeat(lambda: module(*inputs), number=3, repeat=3)) / 3
            base = base or seconds
            print(f"{preset:9s} {banks:5d} {count:7d} {1000 * seconds:9.1f} "
                  f"{len(atoms) / seconds:10.3g} {seconds / base:13.2f}", flush=True)


if __name__ == "__main__":
    main()

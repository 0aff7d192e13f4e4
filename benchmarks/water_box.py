"""The liquid-water start the README's water runs use: n^3 H2O molecules on a cubic lattice,
each turned at random, in the cube that gives the asked density (8 molecules at 1.0 g/cm³:
a 6.21 Å cube). `distill` repeats it to a cell at least twice the student's cutoff high and
melts it in its sampling MD.

    python benchmarks/water_box.py -o water.extxyz [--per-side 2] [--density 1.0] [--seed 0]
    mlff-tools distill --structure water.extxyz --temperatures 300,400 -o out
"""

from __future__ import annotations

import argparse

import ase.io
import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.data import atomic_masses, atomic_numbers
from ase.geometry import get_distances
from ase.units import _amu

MIN_INTERMOLECULAR_A = 1.6     # no atom of one molecule closer than this to another's


def water_box(per_side: int = 2, density: float = 1.0, seed: int = 0,
              tries: int = 200) -> Atoms:
    """``per_side``^3 water molecules, each turned at random until it keeps
    MIN_INTERMOLECULAR_A from those placed before, in a periodic cube of ``density`` g/cm³;
    raises ValueError where no turn fits."""
    rng = np.random.default_rng(seed)
    count = per_side ** 3
    grams = count * sum(atomic_masses[atomic_numbers[s]] for s in "OHH") * _amu * 1000
    side = (grams / density * 1e24) ** (1 / 3)
    box = Atoms(cell=[side] * 3, pbc=True)
    spacing = side / per_side
    for index in np.ndindex(per_side, per_side, per_side):
        for _ in range(tries):
            water = molecule("H2O")
            water.translate(-water.get_center_of_mass())
            axis = rng.normal(size=3)
            water.rotate(rng.uniform(0, 360), axis / np.linalg.norm(axis))
            water.translate((np.array(index) + 0.5) * spacing)
            if not len(box) or get_distances(water.positions, box.positions, cell=box.cell,
                                             pbc=True)[1].min() >= MIN_INTERMOLECULAR_A:
                break
        else:
            raise ValueError(f"no turn of molecule {index} keeps {MIN_INTERMOLECULAR_A} Å from "
                             "the others: try a lower --density")
        box += water
    return box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="water.extxyz")
    parser.add_argument("--per-side", type=int, default=2)
    parser.add_argument("--density", type=float, default=1.0, help="g/cm³")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    box = water_box(args.per_side, args.density, args.seed)
    ase.io.write(args.output, box)
    print(f"{args.output}: {len(box) // 3} H2O in a {box.cell[0, 0]:.3f} Å cube "
          f"({args.density:g} g/cm³)")


if __name__ == "__main__":
    main()

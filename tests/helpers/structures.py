"""Structures the tests use: rattled diamond Si and wurtzite GaN, distorted Si cells, and
labelling frames with a calculator."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.geometry import cellpar_to_cell


def silicon(repeat=(2, 2, 2), *, rattle=0.08, seed=0, triclinic=False, strain=0.0):
    """Diamond Si, rattled; triclinic=True shears the cell into a general triclinic one."""
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(repeat)
    if triclinic:
        a, b, c, alpha, beta, gamma = atoms.cell.cellpar()
        atoms.set_cell(cellpar_to_cell([a, b * 1.02, c * 0.98, alpha - 7, beta + 5, gamma - 9]),
                       scale_atoms=True)
    if strain:
        atoms.set_cell(atoms.cell.array * (1 + strain), scale_atoms=True)
    atoms.rattle(rattle, seed=seed)
    atoms.wrap()
    return atoms


def gallium_nitride(repeat=(2, 2, 2), *, rattle=0.05, seed=1):
    """Wurtzite GaN in LAMMPS orientation, rattled."""
    atoms = bulk("GaN", "wurtzite", a=3.19, c=5.19).repeat(repeat)
    atoms.rattle(rattle, seed=seed)
    atoms.wrap()
    return atoms


def label_with(calc, frames):
    """Attach ``calc``'s energy, forces and stress to each frame as stored labels."""
    from ase.calculators.singlepoint import SinglePointCalculator

    labelled = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(),
                   "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        labelled.append(atoms)
    return labelled


def distorted_silicon(n_frames, seed, *, max_rattle=0.15, max_strain=0.02):
    """64-atom diamond Si cells with random strains and rattles of random amplitude."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
        strain = np.eye(3) + rng.normal(0.0, max_strain / 2, (3, 3))
        atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.rattle(rng.uniform(0.02, max_rattle), seed=int(rng.integers(1 << 30)))
        frames.append(atoms)
    return frames

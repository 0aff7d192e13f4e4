"""Shared fixtures: reference models exported once per session, and structures."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.geometry import cellpar_to_cell

from mlff_tools.lammps import potentials_dir
from mlff_tools.model.sw import export_sw


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Stillinger-Weber reference models: Si in float64 and float32, GaN in float64."""
    folder = tmp_path_factory.mktemp("models")
    return {
        "si64": export_sw("Si.sw", folder / "si64.pt", dtype="float64"),
        "si32": export_sw("Si.sw", folder / "si32.pt", dtype="float32"),
        "gan64": export_sw("GaN.sw", folder / "gan64.pt", dtype="float64"),
    }


@pytest.fixture(scope="session")
def potentials():
    return potentials_dir()


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


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)

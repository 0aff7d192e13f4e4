"""`write-input` with molecules: a molecule in vacuum is boxed so that LAMMPS sees no periodic
image of it, and molecules that would meet their own images are said."""

import numpy as np
import pytest
from ase.build import bulk, molecule

from helpers.lammps import single_point
from helpers.models import CUTOFF, saved_random_student
from mlff_tools.calculator import MLFFCalculator
from mlff_tools.inputs import InputConfig, write_input

EXACT = 1e-10      # float64: the same model on the same isolated molecule


@pytest.fixture(scope="module")
def hc_model(tmp_path_factory):
    return saved_random_student(("H", "C"), tmp_path_factory.mktemp("inputs") / "hc.pt",
                                seed=11)


def _methane(tmp_path, **cell):
    import ase.io

    atoms = molecule("CH4")
    atoms.rattle(0.05, seed=2)          # no symmetry to hide a force error
    if cell:
        atoms.center(**cell)
        atoms.pbc = True
    else:
        atoms.pbc = False
    path = tmp_path / ("ch4.extxyz" if cell else "ch4.xyz")
    ase.io.write(path, atoms)
    return atoms, path


def test_a_molecule_in_vacuum_is_boxed_and_meets_no_image(hc_model, tmp_path):
    """Methane with no cell (an .xyz file) used to end in a traceback; now its input runs in a
    cube of its diameter + the cutoff + 2 Å, and LAMMPS's energy and forces equal the isolated
    molecule's (MLFFCalculator, no periodicity)."""
    _, path = _methane(tmp_path)
    said = []
    script, data = write_input(InputConfig(model=str(hc_model), structure=str(path),
                                           output=str(tmp_path / "run.lmp")), log=said.append)
    assert len(said) == 1 and said[0].startswith("box:"), said
    assert said[0] in script.read_text()
    point = single_point(None, ("H", "C"), [f"pair_style mlff {hc_model}", "pair_coeff * * H C"],
                         tmp_path=tmp_path, data=data)
    import ase.io

    alone = ase.io.read(path)                 # as the file holds it (xyz: 8 decimals)
    alone.calc = MLFFCalculator(hc_model)
    energy_error = abs(point.energy - alone.get_potential_energy())
    assert energy_error < EXACT * max(1.0, abs(point.energy)), f"energy off by {energy_error:.2e}"
    # the data file keeps ASE's atom order (ids 1..N)
    force_error = np.abs(point.forces - alone.get_forces()).max()
    assert force_error < EXACT, f"forces off by {force_error:.2e} eV/Å"
    # a supercell of it holds copies out of each other's reach: eight times the energy
    _, copies = write_input(InputConfig(model=str(hc_model), structure=str(path),
                                        supercell=(2, 2, 2), output=str(tmp_path / "8.lmp")))
    eight = single_point(None, ("H", "C"),
                         [f"pair_style mlff {hc_model}", "pair_coeff * * H C"],
                         tmp_path=tmp_path, data=copies)
    gap = abs(eight.energy - 8 * point.energy)
    assert gap < EXACT * abs(eight.energy), f"copies interact: {gap:.2e} eV"


def test_molecules_that_meet_their_own_images_are_said(hc_model, tmp_path):
    """A periodic cell with 1 Å of vacuum around methane is thinner than twice the cutoff: the
    molecule meets its images, which the log and the input's header say, with the fixes. With
    a wide cell, or a crystal (whose images are the crystal), nothing is said."""
    _, thin = _methane(tmp_path, vacuum=1.0)
    said = []
    script, _ = write_input(InputConfig(model=str(hc_model), structure=str(thin),
                                        output=str(tmp_path / "thin.lmp")), log=said.append)
    assert len(said) == 1 and "meets its own periodic images" in said[0], said
    assert "periodic in no direction" in said[0] and "--supercell" in said[0]
    assert said[0] in script.read_text()

    (tmp_path / "wide").mkdir()
    _, wide = _methane(tmp_path / "wide", vacuum=CUTOFF + 1.0)
    said = []
    write_input(InputConfig(model=str(hc_model), structure=str(wide),
                            output=str(tmp_path / "wide.lmp")), log=said.append)
    assert said == [], said

    import ase.io

    diamond = bulk("C", "diamond", a=3.57, cubic=True)
    ase.io.write(tmp_path / "diamond.extxyz", diamond)
    write_input(InputConfig(model=str(hc_model), structure=str(tmp_path / "diamond.extxyz"),
                            output=str(tmp_path / "diamond.lmp")), log=said.append)
    assert said == [], said

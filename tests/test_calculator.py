"""The Python calculator runs the same model file as LAMMPS and gives the same answer."""

import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError

from helpers.lammps import GRAPHS, NKTV2P, mlff_lines, single_point
from helpers.structures import gallium_nitride, silicon
from mlff_tools.calculator import MLFFCalculator

RTOL = {"si64": 1e-8, "si32": 1e-4}   # LAMMPS vs Python, relative to the largest value
FD_STEP = 1e-4                         # Å
STRAIN_STEP = 1e-5                     # dimensionless
FD_TOL = 1e-6                          # eV/Å and eV, float64 central differences


def lammps_stress(point):
    """LAMMPS pressure (bar; xx yy zz xy xz yz) as ASE stress (eV/Å^3; xx yy zz yz xz xy)."""
    p = point.pressure / NKTV2P
    return -np.array([p[0], p[1], p[2], p[5], p[4], p[3]])


@pytest.mark.parametrize("model", ["si64", "si32"])
@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
@pytest.mark.parametrize("graph", GRAPHS)
def test_lammps_equals_python(models, tmp_path, model, triclinic, graph):
    """Energy, forces and stress from LAMMPS equal the ASE calculator's for the same file."""
    atoms = silicon((2, 2, 2), rattle=0.1, triclinic=triclinic)
    point = single_point(atoms, ["Si"], mlff_lines(models[model], ["Si"], graph),
                         tmp_path=tmp_path)
    atoms.calc = MLFFCalculator(models[model])
    rtol = RTOL[model]
    energy = atoms.get_potential_energy()
    de = abs(energy - point.energy) / abs(energy)
    assert de < rtol, f"energy differs by {de:.2e} (relative)"
    forces = atoms.get_forces()
    df = np.abs(forces - point.forces).max() / np.abs(forces).max()
    assert df < rtol, f"forces differ by {df:.2e} (relative to the largest force)"
    stress = atoms.get_stress()
    ds = np.abs(stress - lammps_stress(point)).max() / np.abs(stress).max()
    assert ds < rtol, f"stress differs by {ds:.2e} (relative)"


@pytest.mark.parametrize("graph", GRAPHS)
def test_per_atom_energies_sum_to_total(models, tmp_path, graph):
    """Per-atom energies (LAMMPS compute pe/atom and the calculator) sum to the total energy."""
    atoms = gallium_nitride((2, 2, 2))
    point = single_point(atoms, ["Ga", "N"], mlff_lines(models["gan64"], ["Ga", "N"], graph),
                         tmp_path=tmp_path)
    assert abs(point.atom_energy.sum() - point.energy) < 1e-10 * len(atoms)
    atoms.calc = MLFFCalculator(models["gan64"])
    energies = atoms.get_potential_energies()
    assert abs(energies.sum() - atoms.get_potential_energy()) < 1e-10 * len(atoms)
    assert np.abs(energies - point.atom_energy).max() < 1e-9, "per-atom energies differ"


@pytest.mark.parametrize("graph", GRAPHS)
def test_per_atom_virial_sums_to_pressure(models, tmp_path, graph):
    """compute stress/atom summed over atoms equals -P V (the global virial)."""
    atoms = silicon((2, 2, 2), rattle=0.1, triclinic=True)
    point = single_point(atoms, ["Si"], mlff_lines(models["si64"], ["Si"], graph),
                         tmp_path=tmp_path)
    total = point.atom_virial.sum(axis=0)
    expected = -point.pressure * point.volume
    err = np.abs(total - expected).max() / np.abs(expected).max()
    assert err < 1e-10, f"sum of stress/atom differs from -P V by {err:.2e} (relative)"


def test_python_forces_are_minus_energy_gradient(models):
    """Calculator forces equal -dE/dx by central finite differences (float64)."""
    atoms = silicon((1, 1, 2), rattle=0.1, triclinic=True)
    atoms.calc = MLFFCalculator(models["si64"])
    forces = atoms.get_forces()
    for atom in (0, 5, 11):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                displaced = atoms.copy()
                displaced.calc = atoms.calc
                displaced.positions[atom, axis] += sign * FD_STEP
                energies.append(displaced.get_potential_energy())
            fd = -(energies[0] - energies[1]) / (2 * FD_STEP)
            assert abs(fd - forces[atom, axis]) < FD_TOL, \
                f"atom {atom} axis {axis}: force {forces[atom, axis]:.8f}, -dE/dx {fd:.8f}"


def test_python_stress_is_strain_derivative(models):
    """Calculator stress equals (1/V) dE/d(strain) by central finite differences (float64)."""
    atoms = silicon((1, 1, 2), rattle=0.1, triclinic=True)
    atoms.calc = MLFFCalculator(models["si64"])
    stress = atoms.get_stress(voigt=False)
    volume = atoms.get_volume()
    for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)):
        energies = []
        for sign in (1, -1):
            deformation = np.eye(3)
            deformation[a, b] += sign * STRAIN_STEP
            strained = atoms.copy()
            strained.calc = atoms.calc
            strained.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
            energies.append(strained.get_potential_energy())
        fd = (energies[0] - energies[1]) / (2 * STRAIN_STEP) / volume
        assert abs(fd - stress[a, b]) * volume < FD_TOL, \
            f"stress[{a},{b}] {stress[a, b]:.3e}, dE/de / V {fd:.3e} eV/Å^3"


def test_stress_refused_without_periodic_cell(models):
    """A molecule (no cell) gets energy and forces, and a clear refusal for stress."""
    atoms = silicon((1, 1, 1), rattle=0.05)
    atoms.pbc = False
    atoms.calc = MLFFCalculator(models["si64"])
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError, match="periodic in all directions"):
        atoms.get_stress()


def test_unknown_element_is_refused(models):
    """A structure with an element the model lacks names it and the model's species."""
    atoms = gallium_nitride((1, 1, 1))
    atoms.calc = MLFFCalculator(models["si64"])
    with pytest.raises(ValueError, match=r"the model has no species Ga, N \(it has: Si\)"):
        atoms.get_potential_energy()

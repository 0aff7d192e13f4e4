"""pair_style mlff running the TorchScript Stillinger-Weber model equals LAMMPS's native pair_style sw.

This is the project's ground truth for the plugin: graph building, species
mapping, force scatter, ghost-force communication and virial all have to be
right for float64 results to agree to round-off.
"""

import numpy as np
import pytest

from helpers.lammps import GRAPHS, mlff_lines, single_point, sw_lines
from helpers.structures import gallium_nitride, silicon

ENERGY_TOL = 1e-9     # eV/atom
FORCE_TOL = 1e-8      # eV/Å
PRESSURE_RTOL = 1e-6  # relative to the largest pressure component


def assert_same(mlff, native, natoms):
    de = abs(mlff.energy - native.energy) / natoms
    assert de < ENERGY_TOL, f"energy differs by {de:.3e} eV/atom"
    df = np.abs(mlff.forces - native.forces).max()
    assert df < FORCE_TOL, f"forces differ by up to {df:.3e} eV/Å"
    dp = np.abs(mlff.pressure - native.pressure).max() / np.abs(native.pressure).max()
    assert dp < PRESSURE_RTOL, f"pressure tensor differs by {dp:.3e} (relative)"


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
@pytest.mark.parametrize("boundary", ["p p p", "p s p", "f f f"])
@pytest.mark.parametrize("graph", GRAPHS)
def test_silicon_equals_native_sw(models, potentials, tmp_path, triclinic, boundary, graph):
    """Si, rattled: energy, forces and pressure tensor equal native SW for every box kind,
    with the graph built on the host or by the device path's tensor kernels."""
    atoms = silicon((2, 2, 2), rattle=0.1, triclinic=triclinic)
    mlff = single_point(atoms, ["Si"], mlff_lines(models["si64"], ["Si"], graph),
                        tmp_path=tmp_path, boundary=boundary)
    native = single_point(atoms, ["Si"], sw_lines(potentials / "Si.sw", ["Si"]),
                          tmp_path=tmp_path, boundary=boundary)
    assert_same(mlff, native, len(atoms))


@pytest.mark.parametrize("elements", [["Ga", "N"], ["N", "Ga"]], ids=["model-order", "reversed"])
@pytest.mark.parametrize("graph", GRAPHS)
def test_two_elements_equal_native_sw(models, potentials, tmp_path, elements, graph):
    """GaN (two species, element-specific parameters) equals native SW; LAMMPS types map to
    model species by symbol, so listing them in the reverse order changes nothing."""
    atoms = gallium_nitride((3, 3, 2))
    mlff = single_point(atoms, elements, mlff_lines(models["gan64"], elements, graph),
                        tmp_path=tmp_path)
    native = single_point(atoms, elements, sw_lines(potentials / "GaN.sw", elements),
                          tmp_path=tmp_path)
    assert_same(mlff, native, len(atoms))


@pytest.mark.parametrize("graph", GRAPHS)
def test_several_types_map_to_one_element(models, potentials, tmp_path, graph):
    """Two LAMMPS types both mapped to Si give the energy and forces of one Si type."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    retype = ["set atom 1*20 type 2"]
    two_types = two_type_data(atoms, tmp_path)
    mlff = single_point(atoms, ["Si"], mlff_lines(models["si64"], ["Si", "Si"], graph),
                        tmp_path=tmp_path, data=two_types, extra=retype)
    native = single_point(atoms, ["Si"], sw_lines(potentials / "Si.sw", ["Si"]),
                          tmp_path=tmp_path)
    assert_same(mlff, native, len(atoms))


def two_type_data(atoms, tmp_path):
    """A data file of ``atoms`` (all Si) that declares a second atom type of the same mass."""
    from mlff_tools.lammps import write_data

    data = write_data(atoms, tmp_path / "one.data", ["Si"])
    text = data.read_text().replace("1 atom types", "2 atom types")
    text = text.replace("Masses\n\n1 ", "Masses\n\n2 28.0855\n1 ")
    path = tmp_path / "two.data"
    path.write_text(text)
    return path

"""Inside LAMMPS: forces are -dE/dx and the virial is -dE/d(strain), by finite differences.

The model is evaluated by the plugin only; these tests check the sign
conventions of the force scatter and the virial tally (docs/design.md) without
relying on the Python side.
"""

import numpy as np
import pytest

from helpers.lammps import GRAPHS, NKTV2P
from helpers.structures import silicon
from mlff_tools.lammps import make_lammps, write_data

STEP = 1e-4          # Å
STRAIN_STEP = 1e-5   # dimensionless
TOL = 1e-6       # eV/Å for forces, eV for the virial (float64 central differences)


def start(model, atoms, tmp_path, graph):
    data = write_data(atoms, tmp_path / "fd.data", ["Si"])
    lmp = make_lammps()
    lmp.commands_list(["units metal", "atom_modify map yes sort 0 0", f"read_data {data}",
                       f"pair_style mlff {model} graph {graph}", "pair_coeff * * Si",
                       "thermo_style custom step pe pxx pyy pzz pxy pxz pyz vol", "run 0"])
    return lmp


@pytest.mark.parametrize("graph", GRAPHS)
def test_lammps_forces_are_minus_energy_gradient(models, tmp_path, graph):
    """Forces from pair_style mlff equal -dE/dx of its own energy (triclinic, periodic)."""
    lmp = start(models["si64"], silicon((2, 1, 1), rattle=0.1, triclinic=True), tmp_path, graph)
    forces = lmp.numpy.extract_atom("f")[:16].copy()
    for atom in (0, 7, 13):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                x = lmp.numpy.extract_atom("x")
                x[atom, axis] += sign * STEP
                lmp.command("run 0")
                energies.append(lmp.get_thermo("pe"))
                x = lmp.numpy.extract_atom("x")
                x[atom, axis] -= sign * STEP
            fd = -(energies[0] - energies[1]) / (2 * STEP)
            assert abs(fd - forces[atom, axis]) < TOL, \
                f"atom {atom} axis {axis}: force {forces[atom, axis]:.8f}, -dE/dx {fd:.8f}"
    lmp.close()


@pytest.mark.parametrize("graph", GRAPHS)
def test_lammps_virial_is_strain_derivative(models, tmp_path, graph):
    """W_ab = sum r_a F_b = -dE/d(strain_ab), for diagonal and tilt strains."""
    lmp = start(models["si64"], silicon((2, 1, 1), rattle=0.1, triclinic=True), tmp_path, graph)
    volume = lmp.get_thermo("vol")
    virial = {k: lmp.get_thermo(k) * volume / NKTV2P for k in ("pxx", "pyy", "pzz", "pxy",
                                                               "pxz", "pyz")}
    lo, hi, xy, yz, xz = lmp.extract_box()[:5]
    cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
    for key, (a, b) in {"pxx": (0, 0), "pyy": (1, 1), "pzz": (2, 2),
                        "pxy": (0, 1), "pxz": (0, 2), "pyz": (1, 2)}.items():
        energies = []
        for sign in (1, -1):
            deformation = np.eye(3)
            deformation[a, b] += sign * STRAIN_STEP
            lmp.command(f"change_box all {box_command(lo, cell @ deformation.T)} remap units box")
            lmp.command("run 0")
            energies.append(lmp.get_thermo("pe"))
            lmp.command(f"change_box all {box_command(lo, cell)} remap units box")
        fd = -(energies[0] - energies[1]) / (2 * STRAIN_STEP)
        assert abs(fd - virial[key]) < TOL, \
            f"{key}: virial {virial[key]:.8f} eV, -dE/de {fd:.8f} eV"
    lmp.close()


def box_command(lo, cell):
    """change_box arguments that make the box the lower-triangular ``cell`` (rows a, b, c)."""
    return (f"x final {lo[0]} {lo[0] + cell[0, 0]} y final {lo[1]} {lo[1] + cell[1, 1]} "
            f"z final {lo[2]} {lo[2] + cell[2, 2]} "
            f"xy final {cell[1, 0]} xz final {cell[2, 0]} yz final {cell[2, 1]}")

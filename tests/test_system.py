"""Settings that follow from the structure (mlff_tools.system): the kind of system, the
timestep from the lightest element, rattles from the shortest bond, temperatures and the melt
stage from the kind, and a molecule in vacuum boxed for LAMMPS."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule

from mlff_tools.distill import AL_STEPS, DistillConfig, DistillError, resolve as resolve_distill
from mlff_tools.sample import SampleConfig, SampleError, resolve as resolve_sample, sample
from mlff_tools.system import (CRYSTAL_TEMPERATURES, HYDROGEN_TIMESTEP, MOLECULAR_TEMPERATURES,
                               RATTLE_PER_BOND, TIMESTEP, describe)


def water_box(repeat: int = 2):
    """Eight water molecules in a periodic box (about liquid density)."""
    water = molecule("H2O")
    water.set_cell([3.1, 3.1, 3.1])
    water.center()
    water.pbc = True
    return water.repeat(repeat)


def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.center(vacuum=2.0)
    atoms.pbc = False
    return atoms


def test_kinds_and_the_settings_they_imply():
    cases = {
        "Si": (bulk("Si", cubic=True), "crystal", TIMESTEP, 2.352, CRYSTAL_TEMPERATURES),
        "NaCl": (bulk("NaCl", "rocksalt", a=5.64, cubic=True), "crystal", TIMESTEP, 2.82,
                 CRYSTAL_TEMPERATURES),
        "water": (water_box(), "molecular", HYDROGEN_TIMESTEP, 0.969, MOLECULAR_TEMPERATURES),
        "ethanol": (ethanol(), "molecule", HYDROGEN_TIMESTEP, 0.971, MOLECULAR_TEMPERATURES),
    }
    for name, (atoms, kind, timestep, bond, temperatures) in cases.items():
        system = describe(atoms)
        assert system.kind == kind, f"{name}: {system.kind}, expected {kind}"
        assert system.timestep == timestep, f"{name}: timestep {system.timestep} fs"
        assert system.shortest_bond == pytest.approx(bond, abs=0.015), \
            f"{name}: shortest bond {system.shortest_bond} Å"
        assert system.rattle == pytest.approx(RATTLE_PER_BOND * system.shortest_bond, abs=1e-3)
        assert system.temperatures == temperatures, name
    assert describe(water_box()).molecules == 8
    assert describe(ethanol()).strain == 0.0 and not describe(ethanol()).vacancies
    # a one-atom primitive cell is a crystal (bonded to its own images); unbonded atoms
    # (a noble gas) are each alone
    primitive = describe(bulk("Cu"))
    assert primitive.kind == "crystal" and primitive.shortest_bond == pytest.approx(2.55, abs=0.01)
    from ase import Atoms

    gas = describe(Atoms("Ar2", positions=[[0, 0, 0], [6, 6, 6]], cell=[12] * 3, pbc=True))
    assert gas.kind == "molecular" and gas.molecules == 2
    slab = describe(fcc111("Cu", (2, 2, 3), vacuum=6.0))
    assert slab.kind == "slab" and slab.strain == 0.0 and slab.vacancies


def test_bonded_clusters_finite_and_extended():
    """Finite and extended bonded clusters, counted by construction and checked against the
    dimension ASE's rank-determination analysis gives at the same bond scale, on structures
    where the periodic walk matters: a chain bonded only through the boundary, a molecule
    straddling it, a hot liquid, a one-atom cell, a slab."""
    from ase import Atoms
    from ase.geometry.dimensionality import analyze_dimensionality

    from mlff_tools.system import BOND_FACTOR, bonded_clusters

    liquid = bulk("Si", cubic=True).repeat(2)
    liquid.rattle(0.35, seed=3)
    cases = {   # name: (atoms, finite clusters, extended clusters)
        "chain": (Atoms("C4", positions=[[0, 0, 0], [1.4, 0, 0], [2.8, 0, 0], [4.2, 0, 0]],
                        cell=[5.6, 10, 10], pbc=True), 0, 1),
        "straddling O2": (Atoms("O4", positions=[[0.3, 5, 5], [9.5, 5, 5], [5, 5, 5],
                                                 [5, 6.2, 5]], cell=[10] * 3, pbc=True), 2, 0),
        "water": (water_box(), 8, 0),
        "liquid Si": (liquid, 0, 1),
        "Cu primitive": (bulk("Cu"), 0, 1),
        "slab": (fcc111("Cu", (2, 2, 3), vacuum=6.0), 0, 1),
    }
    for name, (atoms, finite, extended_count) in cases.items():
        labels, extended = bonded_clusters(atoms)
        found = (int(np.count_nonzero(~extended)), int(np.count_nonzero(extended)))
        assert found == (finite, extended_count), \
            f"{name}: {found[0]} finite and {found[1]} extended clusters, expected " \
            f"{finite} and {extended_count}"
        assert len(labels) == len(atoms) and labels.max() + 1 == len(extended), name
        interval = next(i for i in analyze_dimensionality(atoms, method="RDA")
                        if i.a <= BOND_FACTOR < i.b)
        assert (sum(interval.h[1:]) > 0) == bool(extended_count), \
            f"{name}: ASE's dimensionality histogram {interval.h}"
    # the liquid is an extended network, and its summary says it may be a melt
    system = describe(liquid)
    assert system.kind == "crystal" and "melt" in system.summary(), system.summary()


def test_sample_takes_unset_settings_from_the_structure_and_says_so(tmp_path):
    path = tmp_path / "water.extxyz"
    ase.io.write(path, water_box())
    said = []
    config = resolve_sample(SampleConfig(output="x", structure=str(path), cutoff=3.0),
                            ase.io.read(path), said.append)
    assert config.timestep == HYDROGEN_TIMESTEP
    assert config.rattle == pytest.approx(0.039, abs=1e-3)
    assert "vacancy" not in config.fractions, config.fractions
    assert config.fractions["md"] == pytest.approx(0.8)
    text = "\n".join(said)
    assert "8 molecules in a periodic box" in text
    assert "0.5 fs (hydrogen is the lightest element)" in text
    assert "vacancy frames: none" in text
    # what the user sets stays, and is not announced
    said.clear()
    kept = resolve_sample(SampleConfig(output="x", structure=str(path), timestep=0.25,
                                       rattle=0.02, cutoff=3.0), ase.io.read(path), said.append)
    assert (kept.timestep, kept.rattle) == (0.25, 0.02)
    assert not any("timestep" in line or "rattle" in line for line in said)


def test_a_cell_thinner_than_twice_the_cutoff(tmp_path):
    """A liquid's box below 2 x cutoff is refused with the supercell that fixes it (and
    before any teacher call); a crystal's is a note; distill repeats a liquid to fit."""
    path = tmp_path / "water.extxyz"
    ase.io.write(path, water_box())                      # 6.2 Å cube
    with pytest.raises(SampleError, match=r"thinner than twice the cutoff \(12 Å\) along "
                                          r"a 6\.20 Å, b 6\.20 Å, c 6\.20 Å.*--supercell 2 2 2"):
        sample(SampleConfig(output=str(tmp_path / "w.extxyz"), teacher="emt",
                            structure=str(path), frames=10, cutoff=6.0, progress=False))
    assert not (tmp_path / "w.extxyz").exists()
    wide = resolve_sample(SampleConfig(output="x", structure=str(path), supercell=(2, 2, 2)),
                          ase.io.read(path).repeat(2))
    assert wide.cutoff == 6.0
    said = []
    resolve_sample(SampleConfig(output="x", structure="Si"), bulk("Si", cubic=True), said.append)
    assert any("fine for a crystal" in line and "--supercell 3 3 3" in line for line in said), said
    config, notes = resolve_distill(DistillConfig(structure=str(path), output=str(tmp_path)),
                                    tmp_path)
    assert config.supercell == (2, 2, 2), config.supercell
    assert any("supercell: 2x2x2" in line for line in notes), notes


def test_sample_of_a_molecule_in_vacuum_stays_unperiodic(tmp_path):
    """EMT (H, C, N, O) labels methane without a periodic cell; the strain share goes to MD
    (at 0.5 fs), and no frame is strained or has a vacancy."""
    atoms = molecule("CH4")
    atoms.pbc = False
    path = tmp_path / "ch4.xyz"
    ase.io.write(path, atoms)
    paths = sample(SampleConfig(output=str(tmp_path / "ch4.extxyz"), teacher="emt",
                                structure=str(path), temperatures=(300.0,), frames=10,
                                fractions={"rattle": 0.5, "strain": 0.3, "vacancy": 0.2},
                                md_equilibration=10, md_interval=5, progress=False))
    frames = ase.io.read(paths["all"], ":")
    assert len(frames) == 10
    sources = {f.info["source"] for f in frames}
    assert sources == {"md", "rattle"}, sources
    assert not any(f.pbc.any() for f in frames)
    assert all(np.isfinite(f.get_forces()).all() for f in frames)


def test_distill_defaults_for_a_crystal_are_silicons(tmp_path):
    config, notes = resolve_distill(DistillConfig(structure="Si", output=str(tmp_path)),
                                    tmp_path)
    assert config.temperatures == CRYSTAL_TEMPERATURES
    assert config.timestep == TIMESTEP and config.melt is True
    assert any("silicon's" in line for line in notes), notes
    given, _ = resolve_distill(DistillConfig(structure="Si", temperatures=(300.0, 800.0),
                                             melt=False, output=str(tmp_path)), tmp_path)
    assert given.temperatures == (300.0, 800.0) and given.melt is False
    assert config.al_steps == AL_STEPS and given.al_steps == AL_STEPS


def test_distill_boxes_a_molecule_in_vacuum(tmp_path):
    path = tmp_path / "ethanol.xyz"
    ase.io.write(path, ethanol())
    config, notes = resolve_distill(DistillConfig(structure=str(path), cutoff=5.0,
                                                  output=str(tmp_path)), tmp_path)
    assert config.supercell == (1, 1, 1) and config.melt is False
    assert config.temperatures == MOLECULAR_TEMPERATURES
    assert config.timestep == HYDROGEN_TIMESTEP
    boxed = ase.io.read(config.structure)
    positions = boxed.get_positions()
    diameter = np.max(np.linalg.norm(positions[:, None] - positions[None], axis=-1))
    edge = boxed.cell.lengths()
    assert np.allclose(edge, diameter + 5.0 + 2.0), (edge, diameter)
    assert not boxed.pbc.any()
    assert any("no periodic image in reach" in line for line in notes), notes
    with pytest.raises(DistillError, match="repeats a molecule in vacuum"):
        resolve_distill(DistillConfig(structure=str(path), supercell=(2, 2, 2),
                                      output=str(tmp_path)), tmp_path)


def test_distill_of_a_molecular_liquid_has_no_melt_stage(tmp_path):
    path = tmp_path / "water.extxyz"
    ase.io.write(path, water_box())
    config, notes = resolve_distill(DistillConfig(structure=str(path), output=str(tmp_path)),
                                    tmp_path)
    assert config.melt is False and config.temperatures == MOLECULAR_TEMPERATURES
    assert any("melt stage: no" in line for line in notes), notes
    assert config.structure == str(path)    # periodic: run as given
    # a proton that leaves its molecule is a rare event: explore as long as the checks run
    assert config.al_steps * config.timestep == pytest.approx(config.stability_ps * 1000)
    assert any("exploration: 20000 steps" in line for line in notes), notes
    assert resolve_distill(DistillConfig(structure=str(path), al_steps=500,
                                         output=str(tmp_path)), tmp_path)[0].al_steps == 500


def test_the_readme_water_box_is_eight_intact_molecules_at_liquid_density(tmp_path):
    """benchmarks/water_box.py writes the start of the README's water runs: 8 H2O molecules
    (the bonded network finds them), 1.0 g/cm³, and no atom within 1.6 Å of another molecule."""
    import subprocess
    import sys
    from pathlib import Path

    from ase.units import _amu

    script = Path(__file__).parents[1] / "benchmarks" / "water_box.py"
    out = tmp_path / "water.extxyz"
    subprocess.run([sys.executable, str(script), "-o", str(out)], check=True,
                   capture_output=True)
    water = ase.io.read(out)
    described = describe(water)
    assert (described.kind, described.molecules, described.timestep) == ("molecular", 8, 0.5)
    density = water.get_masses().sum() * _amu * 1000 / (water.get_volume() * 1e-24)
    assert abs(density - 1.0) < 1e-6, density

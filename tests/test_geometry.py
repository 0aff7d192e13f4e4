"""Intramolecular geometry (mlff_tools.analysis.geometry): the bonds and angles of a molecule
by type, measured as ASE measures them (periodic images included), and the student's means
against the teacher's, reweighted or from the teacher's own frames."""

import numpy as np
import pytest
from ase.build import molecule

from ase import units

from mlff_tools.analysis.geometry import compare_geometry, frame_geometry, molecular_topology
from mlff_tools.analysis.rdf import Reweighting

EXACT = 1e-10


def test_topology_of_water_and_ethanol():
    water = molecule("H2O")
    topology = molecular_topology(water)
    assert {t: len(v) for t, v in topology.bonds.items()} == {"H-O": 2}
    assert {t: len(v) for t, v in topology.angles.items()} == {"H-O-H": 1}
    assert topology.angles["H-O-H"][0][1] == 0            # the oxygen is the apex
    ethanol = molecular_topology(molecule("CH3CH2OH"))
    assert {t: len(v) for t, v in ethanol.bonds.items()} == \
        {"C-C": 1, "C-H": 5, "C-O": 1, "H-O": 1}
    # the angles at each atom: C(H3) 4 bonds -> 6, C(H2)O 4 -> 6, O 2 -> 1
    assert sum(len(v) for v in ethanol.angles.values()) == 13, ethanol.angles
    assert set(ethanol.types().values()) == {"bond", "angle"}


def test_lengths_and_angles_equal_ases_across_the_boundary():
    """A water molecule cut by the periodic boundary is measured whole (minimum image), equal
    to ASE's own get_distance and get_angle with mic=True."""
    water = molecule("H2O")
    water.set_cell([6.0, 6.5, 7.0])
    water.pbc = True
    water.translate([-0.2, 5.9, 0.0])      # the hydrogens cross to the other side
    water.wrap()
    topology = molecular_topology(water)
    per_frame = frame_geometry(water.positions[None], water.cell.array[None], topology)
    bonds = [water.get_distance(i, j, mic=True) for i, j in topology.bonds["H-O"]]
    angle = water.get_angle(*topology.angles["H-O-H"][0], mic=True)
    assert abs(per_frame["H-O"][0][0] - np.mean(bonds)) < EXACT
    assert abs(per_frame["H-O"][1][0] - np.mean(np.square(bonds))) < EXACT
    assert abs(per_frame["H-O-H"][0][0] - angle) < EXACT
    assert per_frame["H-O"][0][0] == pytest.approx(0.969, abs=1e-3)


def test_teacher_means_are_the_weighted_frames_or_the_reference():
    """Reweighted, the teacher's mean is the weighted mean over the same frames; uniform
    weights give no difference; a reference trajectory is compared frame-averaged."""
    water = molecule("H2O")
    water.set_cell([8.0] * 3)
    topology = molecular_topology(water)
    frames = []
    for stretch in (1.0, 1.02, 1.04):
        moved = water.copy()
        moved.positions[1:] = moved.positions[0] + stretch * (moved.positions[1:]
                                                              - moved.positions[0])
        frames.append(moved.positions)
    positions, cells = np.array(frames), np.array([water.cell.array] * 3)
    per_frame = frame_geometry(positions, cells, topology)
    lengths = per_frame["H-O"][0]
    kt = units.kB * 300.0
    same = compare_geometry(per_frame, reweighting=Reweighting(np.zeros(3), 300.0, 3))
    assert same["H-O"]["error"] < EXACT and same["H-O-H"]["error"] < EXACT
    first = compare_geometry(per_frame, reweighting=Reweighting(
        np.array([0.0, 50.0, 50.0]) * kt, 300.0, 3))["H-O"]
    assert abs(first["teacher"] - lengths[0]) < 1e-12
    assert abs(first["error"] - (lengths.mean() - lengths[0])) < 1e-12, first
    assert first["standard_error"] > 0 and first["unit"] == "Å"
    # stretching keeps the angle: only the bonds differ from a reference of the first frame
    against = compare_geometry(per_frame, reference=frame_geometry(positions[:1], cells[:1],
                                                                   topology))
    assert abs(against["H-O"]["error"] - (lengths.mean() - lengths[0])) < 1e-12
    assert against["H-O-H"]["error"] < 1e-9 and against["H-O-H"]["unit"] == "degrees"

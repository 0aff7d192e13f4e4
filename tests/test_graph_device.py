"""The device path of pair_style mlff (`graph device`, the default on a GPU), here on CPU tensors.

Its physics is checked beside the host path in the SW, MPI, calculator, finite-difference
and bad-input tests (parametrised over helpers.lammps.GRAPHS); this file checks what only
the device path has, and the profile both paths log.
"""

import re

import numpy as np
import pytest

from helpers.lammps import run_lmp
from helpers.structures import silicon
from mlff_tools.lammps import write_data
from mlff_tools.model import load_model
from mlff_tools.model.graph import atoms_graph


@pytest.mark.parametrize("graph, phases", [
    ("host", ("graph", "model", "scatter")),
    ("device", ("upload", "graph", "model", "scatter and download"))])
def test_profile_reports_the_phases(models, tmp_path, graph, phases):
    """MLFF_PROFILE=1 makes LAMMPS log the time per call of each phase of the host path and
    of the device path (the host path: with the edge count of the last call), and changes no
    result."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    commands = ["units metal", f"read_data {data}",
                f"pair_style mlff {models['si64']} graph {graph}", "pair_coeff * * Si"]
    plain = run_lmp(commands, nprocs=1, cwd=tmp_path / "plain")
    profiled = run_lmp(commands, nprocs=1, cwd=tmp_path / "profiled",
                       env={"MLFF_PROFILE": "1"})
    lines = [line for line in profiled.output.splitlines() if line.startswith("mlff profile")]
    assert len(lines) == 1, f"expected one profile line:\n{profiled.output[-1500:]}"
    assert f"(graph {graph}, cpu, 1 calls" in lines[0], lines[0]
    times = dict(re.findall(r"([a-z ]+) (\d+\.\d+)(?:,|$)", lines[0].split("per call:")[1]))
    assert [name.strip() for name in times] == list(phases), lines[0]
    assert all(float(value) >= 0.0 for value in times.values()), lines[0]
    if graph == "host":
        edges = atoms_graph(atoms, ("Si",), load_model(models["si64"]).metadata.cutoff)[1]
        assert f"{edges.shape[1]} edges in the last" in lines[0], lines[0]
    assert "mlff profile" not in plain.output
    assert profiled.energy == plain.energy
    assert np.array_equal(profiled.forces, plain.forces)

"""The device path of pair_style mlff (`graph device`, the default on a GPU), here on CPU tensors.

Its physics is checked beside the host path in the SW, MPI, calculator, finite-difference
and bad-input tests (parametrised over helpers.lammps.GRAPHS); this file checks what only
the device path has.
"""

import numpy as np

from helpers.lammps import run_lmp
from helpers.structures import silicon
from mlff_tools.lammps import write_data


def test_profile_reports_the_phases(models, tmp_path):
    """MLFF_PROFILE=1 makes LAMMPS log the time per call of each phase of the device path,
    and changes no result."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    commands = ["units metal", f"read_data {data}",
                f"pair_style mlff {models['si64']} graph device", "pair_coeff * * Si"]
    plain = run_lmp(commands, nprocs=1, cwd=tmp_path / "plain")
    profiled = run_lmp(commands, nprocs=1, cwd=tmp_path / "profiled",
                       env={"MLFF_PROFILE": "1"})
    lines = [line for line in profiled.output.splitlines() if line.startswith("mlff profile")]
    assert len(lines) == 1, f"expected one profile line:\n{profiled.output[-1500:]}"
    for phase in ("upload", "graph", "model", "scatter and download"):
        assert f"{phase} " in lines[0], lines[0]
    assert "mlff profile" not in plain.output
    assert profiled.energy == plain.energy
    assert np.array_equal(profiled.forces, plain.forces)

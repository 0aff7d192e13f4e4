"""pair_style mlff with `device cuda` equals `device cpu`. Skipped where libtorch sees no GPU."""

import numpy as np
import pytest
import torch

from helpers.lammps import mlff_lines, run_lmp, single_point
from helpers.structures import silicon
from mlff_tools.lammps import write_data

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.mark.parametrize("model, tol", [("si64", 1e-10), ("si32", 1e-4)])
def test_cuda_equals_cpu(models, tmp_path, model, tol):
    atoms = silicon((3, 3, 3), rattle=0.1, triclinic=True)
    cpu = single_point(atoms, ["Si"], mlff_lines(models[model], ["Si"]), tmp_path=tmp_path)
    gpu = single_point(atoms, ["Si"], [f"pair_style mlff {models[model]} device cuda",
                                       "pair_coeff * * Si"], tmp_path=tmp_path)
    assert abs(gpu.energy - cpu.energy) / len(atoms) < tol
    err = np.abs(gpu.forces - cpu.forces).max() / np.abs(cpu.forces).max()
    assert err < tol, f"forces differ by {err:.2e} (relative)"


def test_two_ranks_share_the_gpu(models, tmp_path):
    """Two ranks on one node pick their GPU by node-local rank and agree with one CPU rank."""
    atoms = silicon((3, 3, 3), rattle=0.1)
    data = write_data(atoms, tmp_path / "bulk.data", ["Si"])
    base = ["units metal", f"read_data {data}"]
    cpu = run_lmp(base + mlff_lines(models["si64"], ["Si"]), nprocs=1, cwd=tmp_path / "cpu")
    gpu = run_lmp(base + [f"pair_style mlff {models['si64']} device cuda", "pair_coeff * * Si"],
                  nprocs=2, cwd=tmp_path / "gpu")
    assert abs(gpu.energy - cpu.energy) / len(atoms) < 1e-10
    assert np.abs(gpu.forces - cpu.forces).max() < 1e-10

"""Model files that break the contract stop pair_style mlff with a named error, never a crash.

Each module below is saved by hand (save_model would refuse it) with valid metadata. The
plugin runs the contract check of save_model when it loads a model, so every one of them
fails at `pair_style` time: in the `lammps` Python module (a Python exception, and the
interpreter and LAMMPS instance go on), and in `lmp` under `mpirun -np 2` (a LAMMPS ERROR,
no MPI_Abort backtrace, no signal).
"""

from __future__ import annotations

import re

import pytest
import torch

from helpers.lammps import run_lmp
from mlff_tools.lammps import make_lammps
from mlff_tools.model import ModelMetadata
from mlff_tools.model.contract import METADATA_FILE


class OneTensor(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        return torch.zeros(species.shape[0], dtype=torch.float64)


class ThreeTensors(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        energy = torch.zeros(species.shape[0], dtype=torch.float64)
        return energy, torch.zeros_like(edge_vec), energy


class WrongShapes(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        return (torch.zeros(species.shape[0] + 1, dtype=torch.float64),
                torch.zeros(edge_vec.shape[0], 2, dtype=torch.float64))


class IntegerOutputs(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        return torch.zeros_like(species), torch.zeros_like(edge_index).t().repeat(1, 2)[:, :3]


class HalfOutputs(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        return (torch.zeros(species.shape[0], dtype=torch.float16),
                torch.zeros_like(edge_vec).to(torch.float16))


class NaNOutputs(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        return (torch.full([species.shape[0]], float("nan"), dtype=torch.float64),
                torch.zeros_like(edge_vec))


class Raises(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        if species.shape[0] > 0:
            raise RuntimeError("the weights were never loaded")
        return torch.zeros(0, dtype=torch.float64), edge_vec


CASES = {
    "one_tensor": (OneTensor, r"forward\(\) must return \(atom_energy, edge_grad\)"),
    "three_tensors": (ThreeTensors, r"forward\(\) must return \(atom_energy, edge_grad\)"),
    "wrong_shapes": (WrongShapes, r"returned atom_energy of 4 values and edge_grad of 4 values "
                                  r"for 3 atoms and 2 edges"),
    "integer_outputs": (IntegerOutputs, r"returned atom_energy of dtype Long and edge_grad of "
                                        r"dtype Long; the contract asks for float32 or float64"),
    "half_outputs": (HalfOutputs, r"dtype Half .*the contract asks for float32 or float64"),
    "nan_outputs": (NaNOutputs, r"it returns non-finite energies or gradients"),
    "raises": (Raises, r"failed to evaluate 3 atoms and 2 edges: .*the weights were never "
                       r"loaded"),
    "truncated": (None, r"cannot load model file '.*truncated.pt': it is not a TorchScript "
                        r"archive"),
    "random_bytes": (None, r"cannot load model file '.*random_bytes.pt': it is not a "
                           r"TorchScript archive"),
}
CONTRACT = "fails the contract check (two atoms at half the cutoff and an isolated atom)"


@pytest.fixture(scope="module")
def broken(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken")
    files = {}
    metadata = ModelMetadata(species=("Si",), cutoff=3.0).to_json()
    for name, (module, _) in CASES.items():
        files[name] = folder / f"{name}.pt"
        if module is not None:
            torch.jit.save(torch.jit.script(module()), str(files[name]),
                           _extra_files={METADATA_FILE: metadata})
    files["truncated"].write_bytes(models["si64"].read_bytes()[:3000])
    files["random_bytes"].write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8,
                                                    generator=torch.Generator().manual_seed(1))
                                      .numpy().tobytes())
    return files


BOX = ["units metal", "lattice diamond 5.431", "region box block 0 2 0 2 0 2",
       "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855"]


@pytest.mark.parametrize("case", CASES)
def test_python_module_gets_an_exception(broken, models, case):
    """Through the lammps module: an exception with the diagnosis; LAMMPS goes on."""
    lmp = make_lammps()
    try:
        lmp.commands_list(BOX)
        with pytest.raises(Exception) as info:
            lmp.command(f"pair_style mlff {broken[case]}")
        message = str(info.value)
        assert "pair_style mlff:" in message and re.search(CASES[case][1], message), message
        if CASES[case][0] is not None:
            assert CONTRACT in message, message
        lmp.commands_list([f"pair_style mlff {models['si64']}", "pair_coeff * * Si", "run 0"])
        assert lmp.get_thermo("pe") < 0, "LAMMPS did not go on after the error"
    finally:
        lmp.close()


@pytest.mark.mpi
@pytest.mark.parametrize("case", CASES)
def test_lmp_on_two_ranks_stops_cleanly(broken, tmp_path, case):
    """lmp under mpirun -np 2: one LAMMPS ERROR line, no backtrace, no abort by signal."""
    output = run_lmp(BOX + [f"pair_style mlff {broken[case]}"], nprocs=2, cwd=tmp_path,
                     check=False)
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert errors and re.search(CASES[case][1], errors[0]), output[-2000:]
    for crash in ("Segmentation", "signal", "Backtrace", "c10::Error", "terminate called"):
        assert crash not in output, f"{crash!r} in the output:\n{output[-2000:]}"

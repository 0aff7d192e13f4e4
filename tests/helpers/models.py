"""Models the tests build: random-weight students and a contract module that breaks mid-run."""

from __future__ import annotations

import torch

from mlff_tools.model import EdgeGradient
from mlff_tools.model.student import PRESETS, StudentEnergy

CUTOFF = 4.5          # Å, of the random students


def random_student(species=("Si",), preset="fast", seed=3, l_max=None, radial_banks=0):
    """A float64 student with random (non-trivial) weights and descriptor scaling;
    ``radial_banks`` > 0 for the banked species treatment."""
    torch.manual_seed(seed)
    sizes = {**PRESETS[preset], **({"l_max": l_max} if l_max else {}),
             "radial_banks": radial_banks}
    energy = StudentEnergy(species, CUTOFF, dtype=torch.float64, **sizes)
    with torch.no_grad():
        for p in energy.parameters():
            p.normal_(0.0, 0.5)
        energy.reference_energy.uniform_(-5, -3)
        energy.inv_avg_neighbours.fill_(1 / 20)
    return EdgeGradient(energy).eval()


class NaNForAtomTwo(torch.nn.Module):
    """A contract module that returns a NaN energy for atom index 2 (LAMMPS atom id 3) in
    graphs of more than three atoms: it passes the load-time check (three atoms) and fails
    in the run, as a model does that breaks only on some structures."""

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor):
        energy = torch.zeros(species.shape[0], dtype=torch.float64)
        if species.shape[0] > 3:
            energy[2] = float("nan")
        return energy, torch.zeros_like(edge_vec)


def saved_random_student(species, path, seed=3, dtype="float64", l_max=None, radial_banks=0):
    """random_student of ``species`` written as train writes a `fast` model file (its sizes
    in the metadata) at ``path``, in ``dtype``."""
    from mlff_tools.model import ModelMetadata, save_model

    module = random_student(species=tuple(species), seed=seed, l_max=l_max,
                            radial_banks=radial_banks)
    if dtype == "float32":
        module = module.float()
    sizes = {**PRESETS["fast"], **({"l_max": l_max} if l_max else {}),
             "radial_banks": radial_banks}
    return save_model(module, ModelMetadata(
        species=tuple(species), cutoff=CUTOFF, dtype=dtype,
        model={"arch": "density-expansion", "preset": "fast", **sizes}), path)


def random_student_file(path, species, preset="fast", l_max=2, radial_banks=0,
                        dtype="float64", seed=1, n_radial=None):
    """A student with random weights and random descriptor statistics (mean, scale, energy
    scale: every array a model file holds is exercised), saved as train saves one; n_radial
    overrides the preset's."""
    from mlff_tools.model import ModelMetadata, save_model

    torch.manual_seed(seed)
    sizes = {**PRESETS[preset], "l_max": l_max, "radial_banks": radial_banks}
    if n_radial is not None:
        sizes["n_radial"] = n_radial
    energy = StudentEnergy(tuple(species), CUTOFF, dtype=torch.float64, **sizes)
    with torch.no_grad():
        for p in energy.parameters():
            p.normal_(0.0, 0.5)
        energy.reference_energy.uniform_(-5, -3)
        energy.inv_avg_neighbours.fill_(1 / 20)
        energy.feature_mean.normal_(0.0, 0.3)
        energy.feature_inv_std.uniform_(0.5, 2.0)
        energy.energy_scale.fill_(0.7)
    module = EdgeGradient(energy).eval()
    if dtype == "float32":
        module = module.float()
    return save_model(module, ModelMetadata(
        species=tuple(species), cutoff=CUTOFF, dtype=dtype,
        model={"arch": "density-expansion", "preset": preset, **sizes}), path)

"""`mlff-tools test model.pt data.extxyz`: a model's errors on labelled structures.

The `dp test` / `nequip-test` of mlff. Frames are evaluated in batches (several frames as
one graph, the same code that trains), and the errors are reported overall, per species
(forces) and per frame: energy per atom (meV/atom), forces (meV/Å), stress (GPa, frames
with a periodic cell and a stress label), each as MAE and RMSE. ``--json`` writes every
number, ``--plot`` the parity plots. ``sample`` writes a held-out ``*.test.extxyz`` for it.

Example::

    report = evaluate_file("model.pt", "data.test.extxyz")
    report["overall"]["force_mae_mev_per_A"], report["per_species"]["Si"]

`evaluate_frames` does the same for frames in memory (labelled by a teacher a moment ago):
it is the one comparison of student and teacher that `validate` (fidelity on the student's
own frames), `distill` (held-out errors, active learning) and the benchmarks use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .data import DEFAULT_KEYS, DatasetError, LabelKeys, collate, frame_graph, read_labelled
from .files import save_figure
from .train import EV_PER_A3_TO_GPA


def _mae_rmse(errors: np.ndarray, scale: float) -> tuple[float, float]:
    if errors.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(np.abs(errors)) * scale), float(np.sqrt(np.mean(errors ** 2)) * scale)


def evaluate_file(model_path: str | os.PathLike, data_path: str | os.PathLike, *,
                  keys: LabelKeys = DEFAULT_KEYS, batch_size: int = 8,
                  device: str = "cpu") -> dict:
    """Errors of the model on every frame of ``data_path``, and the predictions and labels
    (``_parity``) the plots need."""
    frames = read_labelled(data_path, role="test", keys=keys)
    report = evaluate_frames(model_path, frames, keys=keys, batch_size=batch_size,
                             device=device, where=f"'{data_path}'")
    return {"model": str(model_path), "data": str(data_path), **report}


def evaluate_frames(model, frames, *, keys: LabelKeys = DEFAULT_KEYS, batch_size: int = 8,
                    device: str = "cpu", where: str = "the frames") -> dict:
    """Errors of ``model`` (a file, or a loaded model) on labelled ``frames`` (ASE Atoms):
    overall, per species, per frame (with each frame's ``source``), and in ``_energies`` and
    ``_forces`` the labels and predictions themselves (eV; eV/Å, [frames, atoms, 3] when all
    frames have the same size, else flat)."""
    from .model import LoadedModel, load_model
    from .train import predict

    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device)
    species, cutoff = tuple(loaded.metadata.species), loaded.metadata.cutoff
    missing = sorted({s for a in frames for s in a.get_chemical_symbols()} - set(species))
    if missing:
        raise DatasetError(f"{where} hold {', '.join(missing)}, which the model "
                           f"'{loaded.path}' does not know (it has: {' '.join(species)})")
    graphs = [frame_graph(atoms, species, cutoff, keys) for atoms in frames]
    energy_pred, forces_pred, stress_pred = [], [], []
    for first in range(0, len(graphs), batch_size):
        batch = collate(graphs[first:first + batch_size], loaded.dtype).to(torch.device(device))
        with torch.enable_grad():
            energy, forces, stress = predict(loaded.module, batch)
        energy_pred.append(energy.detach().double().cpu().numpy())
        forces_pred.append(forces.detach().double().cpu().numpy())
        stress_pred.append(stress.detach().double().cpu().numpy())
    energy_pred = np.concatenate(energy_pred)
    forces_pred = np.concatenate(forces_pred)
    stress_pred = np.concatenate(stress_pred)

    n_atoms = np.array([len(g.species) for g in graphs])
    energy_true = np.array([g.energy for g in graphs])
    forces_true = np.concatenate([g.forces for g in graphs])
    symbols = np.concatenate([a.get_chemical_symbols() for a in frames])
    energy_error = (energy_pred - energy_true) / n_atoms
    force_error = forces_pred - forces_true
    with_stress = np.array([g.stress is not None for g in graphs])
    stress_true = np.stack([g.stress if g.stress is not None else np.zeros((3, 3))
                            for g in graphs])
    stress_error = (stress_pred - stress_true)[with_stress]

    overall = {"frames": len(frames), "atoms": int(n_atoms.sum())}
    overall["energy_mae_mev_per_atom"], overall["energy_rmse_mev_per_atom"] = \
        _mae_rmse(energy_error, 1000)
    overall["force_mae_mev_per_A"], overall["force_rmse_mev_per_A"] = \
        _mae_rmse(force_error, 1000)
    if with_stress.any():
        overall["stress_frames"] = int(with_stress.sum())
        overall["stress_mae_gpa"], overall["stress_rmse_gpa"] = \
            _mae_rmse(stress_error, EV_PER_A3_TO_GPA)
    per_species = {}
    for symbol in species:
        mask = symbols == symbol
        if mask.any():
            mae, rmse = _mae_rmse(force_error[mask], 1000)
            per_species[symbol] = {"atoms": int(mask.sum()), "force_mae_mev_per_A": mae,
                                   "force_rmse_mev_per_A": rmse}
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    per_frame = []
    for i in range(len(frames)):
        errors = force_error[offsets[i]:offsets[i + 1]]
        per_frame.append({
            "frame": i, "atoms": int(n_atoms[i]),
            "energy_error_mev_per_atom": float(energy_error[i] * 1000),
            "force_mae_mev_per_A": float(np.mean(np.abs(errors)) * 1000),
            "force_max_error_mev_per_A": float(np.linalg.norm(errors, axis=1).max() * 1000),
            "source": frames[i].info.get("source")})
    same_size = len(set(n_atoms.tolist())) == 1
    return {"overall": overall, "per_species": per_species, "per_frame": per_frame,
            "_energies": {"label": energy_true, "model": energy_pred},
            "_forces": {k: v.reshape(len(frames), -1, 3) if same_size else v
                        for k, v in (("label", forces_true), ("model", forces_pred))},
            "_parity": {"energy": (energy_true / n_atoms, energy_pred / n_atoms),
                        "forces": (forces_true.reshape(-1), forces_pred.reshape(-1)),
                        "stress": ((stress_true[with_stress] * EV_PER_A3_TO_GPA).reshape(-1),
                                   (stress_pred[with_stress] * EV_PER_A3_TO_GPA).reshape(-1))}}


def errors_of(report: dict, source: str | None = None) -> dict | None:
    """Energy and force MAE over the frames of one ``source`` (all frames: None), from the
    per-frame errors; None when no frame has that source."""
    rows = [f for f in report["per_frame"] if source is None or f.get("source") == source]
    if not rows:
        return None
    components = np.array([3 * f["atoms"] for f in rows], dtype=float)
    return {"frames": len(rows),
            "energy_mae_mev_per_atom": float(np.mean([abs(f["energy_error_mev_per_atom"])
                                                      for f in rows])),
            "force_mae_mev_per_A": float(np.sum([f["force_mae_mev_per_A"] for f in rows]
                                                * components) / components.sum())}


def plot_parity(report: dict, path: Path) -> Path:
    """Energy, force (and stress) parity plots side by side, with MAE in each title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parity, overall = report["_parity"], report["overall"]
    panels = [("energy", "energy (eV/atom)", f"MAE {overall['energy_mae_mev_per_atom']:.2f} "
               "meV/atom"),
              ("forces", "force component (eV/Å)",
               f"MAE {overall['force_mae_mev_per_A']:.1f} meV/Å")]
    if "stress_mae_gpa" in overall:
        panels.append(("stress", "stress component (GPa)",
                       f"MAE {overall['stress_mae_gpa']:.3f} GPa"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    for ax, (key, label, title) in zip(np.atleast_1d(axes), panels):
        true, pred = parity[key]
        ax.scatter(true, pred, s=3, alpha=0.5)
        low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        ax.plot([low, high], [low, high], color="black", lw=1)
        ax.set_xlabel(f"label {label}")
        ax.set_ylabel(f"model {label}")
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    return path

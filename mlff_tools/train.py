"""Distillation training: fit a student to teacher-labelled structures.

Plain PyTorch: AdamW, ReduceLROnPlateau on the validation loss (or, with
``schedule="cosine"``, a cosine decay to ``min_lr`` over ``max_epochs``; on
distill_sw's data both reached the same accuracy), an exponential moving
average (EMA) of the weights that is validated and exported, early stopping,
a checkpoint after every epoch (``--resume`` continues an interrupted run to
the same result), a JSON-lines metrics log, and a model file that follows the
contract.

Loss (per batch, mean squared errors)::

    energy_weight * (dE / n_atoms)^2 [eV^2] + force_weight * dF^2 [(eV/Å)^2]
    + stress_weight * dsigma^2 [GPa^2]

Example::

    config = TrainConfig(train="train.extxyz", val="val.extxyz", output="model.pt")
    result = train(config)
    result.errors["force_mae_mev_per_A"]
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .errors import MLFFError
from .data import (Batch, DatasetError, LabelKeys, collate, dataset_species, frame_energy,
                   frame_graph, read_labelled)
from .model import EdgeGradient, ModelMetadata, save_model
from .files import replacing, write_text
from .model.contract import TORCH_DTYPES
from .model.student import PRESET_LR, PRESETS, StudentEnergy, default_radial_banks

EV_PER_A3_TO_GPA = 160.21766208
SIZE_KNOBS = ("n_radial", "n_channels", "hidden", "n_hidden_layers", "l_max", "radial_banks")
# below this RMS force component (eV/Å) the training structures sit at or next to equilibrium:
# SW Si cells rattled by 0.02-0.15 Å (tests' data) have ~0.5 eV/Å, 300 K MD ~0.3 eV/Å
EQUILIBRIUM_FORCE_RMS = 0.02
# fields that may differ between an interrupted run and its --resume
RESUME_MAY_CHANGE = ("max_epochs", "device", "quiet", "resume", "overwrite")


class TrainingError(MLFFError, RuntimeError):
    """Training cannot start or continue; the message says why and what to do."""


@dataclass
class TrainConfig:
    train: str
    output: str
    val: str | None = None
    val_fraction: float = 0.1
    preset: str = "fast"
    cutoff: float = 5.0
    n_radial: int | None = None
    n_channels: int | None = None
    hidden: int | None = None
    n_hidden_layers: int | None = None
    l_max: int | None = None          # 2, or 3 for the l = 3 angular channel
    radial_banks: int | None = None   # 0: radial weights per species pair; M: M shared banks
    dtype: str = "float32"
    energy_weight: float = 100.0
    force_weight: float = 1.0
    stress_weight: float = 0.01
    lr: float | None = None          # default: the preset's (PRESET_LR)
    grad_clip: float = 10.0          # largest gradient norm per step
    weight_decay: float = 1e-6
    batch_size: int = 4
    max_epochs: int = 200
    patience: int = 40
    lr_patience: int = 10
    schedule: str = "plateau"        # plateau: ReduceLROnPlateau; cosine: cosine decay to min_lr
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    ema_decay: float = 0.99
    seed: int = 0
    init: str | None = None          # warm start from this model file (same architecture)
    device: str = "cpu"
    energy_key: str = "energy"       # where the datasets keep their labels (extxyz names)
    forces_key: str = "forces"
    stress_key: str = "stress"
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False

    def architecture(self, n_species: int = 1) -> dict:
        """The student's sizes: the preset's, with the knobs given; the species treatment
        (radial_banks) follows from the number of species unless given."""
        if self.preset not in PRESETS:
            raise TrainingError(f"unknown preset `{self.preset}`; choose one of "
                                f"{', '.join(PRESETS)}")
        sizes = {**PRESETS[self.preset], "radial_banks": default_radial_banks(n_species)}
        for knob in SIZE_KNOBS:
            if getattr(self, knob) is not None:
                sizes[knob] = getattr(self, knob)
        if sizes["radial_banks"] < 0:
            raise TrainingError(f"--radial-banks must be 0 (radial weights per species pair) "
                                f"or positive, got {sizes['radial_banks']}")
        return sizes

    @property
    def keys(self) -> LabelKeys:
        return LabelKeys(self.energy_key, self.forces_key, self.stress_key)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else PRESET_LR[self.preset]

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.output).with_suffix(".ckpt")

    @property
    def metrics_path(self) -> Path:
        return Path(self.output).with_suffix(".metrics.jsonl")


@dataclass
class TrainResult:
    model_path: Path
    errors: dict
    epochs: int
    n_params: int
    seconds: float
    history: list = field(default_factory=list)
    best_epoch: int = 0              # the epoch whose (EMA) weights were exported
    stopped_early: bool = False      # no better validation loss for `patience` epochs
    warnings: list = field(default_factory=list)   # what data_warnings found (also logged)


# ---------------------------------------------------------------------- predictions


def predict(module: EdgeGradient, batch: Batch):
    """Energies [F] (eV), forces [N, 3] (eV/Å) and stress [F, 3, 3] (eV/Å^3) of a batch."""
    atom_energy, edge_grad = module(batch.species, batch.edge_index, batch.edge_vec)
    n_frames = batch.n_frames
    energy = torch.zeros(n_frames, dtype=atom_energy.dtype, device=atom_energy.device)
    energy = energy.index_add(0, batch.frame_of_atom, atom_energy)
    forces = torch.zeros_like(batch.forces).index_add(0, batch.edge_index[0], edge_grad)
    forces = forces.index_add(0, batch.edge_index[1], -edge_grad)
    # stress = -W / V with W = -sum edge_vec (outer) g
    outer = (batch.edge_vec.unsqueeze(2) * edge_grad.unsqueeze(1)).reshape(-1, 9)
    virial_sum = torch.zeros(n_frames, 9, dtype=outer.dtype, device=outer.device)
    virial_sum = virial_sum.index_add(0, batch.frame_of_edge, outer).reshape(n_frames, 3, 3)
    volume = torch.where(batch.volume > 0, batch.volume, torch.ones_like(batch.volume))
    stress = virial_sum / volume.reshape(-1, 1, 1)
    return energy, forces, stress


def loss_terms(module, batch: Batch, config: TrainConfig) -> torch.Tensor:
    return loss_of(predict(module, batch), batch, config)


def loss_of(prediction, batch: Batch, config: TrainConfig) -> torch.Tensor:
    """The weighted loss of ``prediction`` (energy, forces, stress) against the batch labels."""
    energy, forces, stress = prediction
    loss = config.energy_weight * (((energy - batch.energy) / batch.n_atoms) ** 2).mean()
    loss = loss + config.force_weight * ((forces - batch.forces) ** 2).mean()
    if config.stress_weight > 0 and bool(batch.has_stress.any()):
        diff = (stress - batch.stress)[batch.has_stress] * EV_PER_A3_TO_GPA
        loss = loss + config.stress_weight * (diff ** 2).mean()
    return loss


def evaluate(module, batches: list[Batch], config: TrainConfig) -> dict:
    """Validation errors: energy MAE (meV/atom), force MAE/RMSE (meV/Å), stress MAE (GPa), loss."""
    module.eval()
    e_err, f_err, s_err, losses = [], [], [], []
    for batch in batches:
        with torch.enable_grad():
            energy, forces, stress = predict(module, batch)
        losses.append(float(loss_of((energy, forces, stress), batch, config)) * batch.n_frames)
        e_err.append(((energy - batch.energy) / batch.n_atoms).detach().double())
        f_err.append((forces - batch.forces).detach().double().reshape(-1))
        if bool(batch.has_stress.any()):
            s_err.append(((stress - batch.stress)[batch.has_stress]).detach().double()
                         .reshape(-1) * EV_PER_A3_TO_GPA)
    e, f = torch.cat(e_err), torch.cat(f_err)
    n_frames = sum(b.n_frames for b in batches)
    errors = {
        "energy_mae_mev_per_atom": float(e.abs().mean()) * 1000,
        "force_mae_mev_per_A": float(f.abs().mean()) * 1000,
        "force_rmse_mev_per_A": float((f ** 2).mean().sqrt()) * 1000,
        "loss": sum(losses) / n_frames,
    }
    if s_err:
        errors["stress_mae_gpa"] = float(torch.cat(s_err).abs().mean())
    return errors


# ---------------------------------------------------------------------- setup


def fit_reference_energies(frames, species: tuple[str, ...],
                           keys: LabelKeys = LabelKeys()) -> np.ndarray:
    """Per-species energies E0 (eV) minimising sum over frames (E - sum_atoms E0[z])^2."""
    counts = np.array([[atoms.get_chemical_symbols().count(s) for s in species]
                       for atoms in frames], dtype=float)
    energies = np.array([frame_energy(atoms, keys) for atoms in frames])
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def force_rms(graphs) -> float:
    """The RMS force component (eV/Å) of labelled graphs; 0 for none."""
    forces = np.concatenate([g.forces.reshape(-1) for g in graphs])
    return float(np.sqrt(np.mean(forces ** 2))) if forces.size else 0.0


def data_warnings(graphs) -> list[str]:
    """What in the training data will make a poor student though training succeeds.

    Forces that all (nearly) vanish: structures at equilibrium only (perfect crystals, relaxed
    molecules), the energies of which a student fits while it learns nothing of how the
    forces grow as atoms move, which is all that MD asks of it."""
    rms = force_rms(graphs)
    if rms < EQUILIBRIUM_FORCE_RMS:
        return [f"the training forces are all close to zero (RMS {rms * 1000:.2g} meV/Å per "
                f"component over {len(graphs)} frames, below {EQUILIBRIUM_FORCE_RMS * 1000:g}): "
                "structures at equilibrium, with no thermal motion. The student will fit their "
                "energies and know nothing of displaced atoms, which is all MD meets; add "
                "frames from MD or rattled copies (`mlff-tools sample --temperatures ...`)"]
    return []


def _load_sets(config: TrainConfig):
    train_frames = read_labelled(config.train, role="training", keys=config.keys)
    if config.val:
        val_frames = read_labelled(config.val, role="validation", keys=config.keys)
    else:
        if len(train_frames) < 2:
            raise DatasetError(f"training set '{config.train}' has one frame: give --val or "
                               "more frames to split a validation set from")
        order = np.random.default_rng(config.seed).permutation(len(train_frames))
        n_val = max(1, int(round(config.val_fraction * len(train_frames))))
        val_frames = [train_frames[i] for i in order[:n_val]]
        train_frames = [train_frames[i] for i in order[n_val:]]
    species = dataset_species(train_frames)
    missing = sorted(set(dataset_species(val_frames)) - set(species))
    if missing:
        raise DatasetError(f"validation set '{config.val}' has species {', '.join(missing)} "
                           f"that the training set lacks (it has {', '.join(species)}); "
                           "add structures with them to the training set")
    return train_frames, val_frames, species


def _build_module(config: TrainConfig, species, train_frames, graphs) -> EdgeGradient:
    torch.manual_seed(config.seed)
    dtype = TORCH_DTYPES[config.dtype]
    energy = StudentEnergy(species, config.cutoff, dtype=dtype,
                           **config.architecture(len(species)))
    reference = fit_reference_energies(train_frames, species, config.keys)
    neighbours = sum(g.edge_index.shape[1] for g in graphs) / sum(len(g.species) for g in graphs)
    with torch.no_grad():
        energy.reference_energy.copy_(torch.tensor(reference, dtype=dtype))
        energy.energy_scale.fill_(max(force_rms(graphs), 1e-3))
        energy.inv_avg_neighbours.fill_(1.0 / max(neighbours, 1.0))
        # standardise the descriptors over (a sample of) the training set
        sample = graphs[:: max(1, len(graphs) // 64)]
        batch = collate(sample, dtype)
        descriptors = energy.descriptors(batch.species, batch.edge_index, batch.edge_vec)
        energy.feature_mean.copy_(descriptors.mean(dim=0))
        energy.feature_inv_std.copy_(1.0 / (descriptors.std(dim=0) + 1e-6))
    return EdgeGradient(energy)


def _warm_start(model: EdgeGradient, path: str, species) -> None:
    """Copy the weights (and fitted scales) of a model file with the same architecture."""
    from .model import load_model

    loaded = load_model(path)
    if tuple(loaded.metadata.species) != tuple(species):
        raise TrainingError(f"--init {path}: its species {loaded.metadata.species} differ from "
                            f"the data's {tuple(species)}")
    # a scripted file stores non-persistent buffers (constants rebuilt at construction) too
    constants = {name for name, _ in model.named_buffers()} - set(model.state_dict())
    state = {k: v for k, v in loaded.module.state_dict().items() if k not in constants}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise TrainingError(f"--init {path}: not the same architecture ({err})") from err


def _atomic_torch_save(obj, path: Path) -> None:
    try:
        with replacing(path) as tmp:
            torch.save(obj, tmp)
    except OSError as err:
        raise TrainingError(f"cannot write checkpoint '{path}': {err}; free space and rerun "
                            "the same command with --resume") from err


def _check_resume(config: TrainConfig):
    """The checkpoint to continue from, or None for a fresh run; refuses ambiguous states."""
    path = config.checkpoint_path
    if config.resume:
        if not path.is_file():
            raise TrainingError(f"--resume: no checkpoint '{path}' to continue from")
        try:
            state = torch.load(path, weights_only=False)
        except Exception as err:  # noqa: BLE001 - a torn or foreign file
            raise TrainingError(f"checkpoint '{path}' cannot be read ({err}); start over "
                                "with --overwrite") from err
        saved = state["config"]
        differ = [k for k, v in dataclasses.asdict(config).items()
                  if k not in RESUME_MAY_CHANGE and saved.get(k) != v]
        if differ:
            raise TrainingError(
                f"--resume: the checkpoint was made with other settings ({', '.join(differ)}: "
                + ", ".join(f"{saved.get(k)!r} then, {getattr(config, k)!r} now" for k in differ)
                + "); rerun with the original settings, or start over with --overwrite")
        return state
    if path.exists() and not config.overwrite:
        raise TrainingError(f"checkpoint '{path}' exists from an earlier run: pass --resume to "
                            "continue it or --overwrite to start over")
    return None


# ---------------------------------------------------------------------- training


def train(config: TrainConfig, *, progress: Callable | None = None,
          log: Callable | None = None) -> TrainResult:
    """Train a student as ``config`` says and write the model file; see the module docstring.
    Warnings about the data (data_warnings) go to ``log`` (default: stderr; ``quiet`` only
    drops the progress bar) before training starts, into the result and into the model
    file's training metadata."""
    if config.cutoff <= 0:
        raise TrainingError(f"--cutoff must be positive, got {config.cutoff}")
    if config.schedule not in ("plateau", "cosine"):
        raise TrainingError(f"--schedule must be plateau or cosine, got {config.schedule}")
    if config.dtype not in TORCH_DTYPES:
        raise TrainingError(f"--dtype must be float32 or float64, got {config.dtype}")
    config.architecture()
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: torch sees no CUDA device here; use --device cpu")
    output = Path(config.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    state = _check_resume(config)

    started = time.perf_counter()
    train_frames, val_frames, species = _load_sets(config)
    dtype = TORCH_DTYPES[config.dtype]
    train_graphs = [frame_graph(a, species, config.cutoff, config.keys) for a in train_frames]
    val_graphs = [frame_graph(a, species, config.cutoff, config.keys) for a in val_frames]
    val_batches = [collate(val_graphs[i:i + config.batch_size], dtype).to(device)
                   for i in range(0, len(val_graphs), config.batch_size)]

    warned = data_warnings(train_graphs)
    if log is None:
        def log(message):
            print(message, file=sys.stderr, flush=True)
    for message in warned:
        log(f"mlff-tools train: warning: {message}")

    model = _build_module(config, species, train_frames, train_graphs)
    if config.init:
        _warm_start(model, config.init, species)
    model = model.to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                        use_buffers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.max_epochs, eta_min=config.min_lr)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.lr_factor, patience=config.lr_patience,
            min_lr=config.min_lr)
    start_epoch, best_loss, since_best, history, best_epoch = 0, math.inf, 0, [], 0
    best_state = copy.deepcopy(ema.module.state_dict())
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_loss = state["epoch"], state["best_loss"]
        since_best, history, best_state = state["since_best"], state["history"], state["best"]
        best_epoch = state.get("best_epoch", 0)

    from .progress import progress_bar

    bar = progress_bar(total=config.max_epochs, initial=start_epoch, unit="epoch", desc="train",
                       enabled=not config.quiet)
    for epoch in range(start_epoch, config.max_epochs):
        if since_best >= config.patience:
            break
        model.train()
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(train_graphs), generator=generator).tolist()
        train_loss = 0.0
        for first in range(0, len(order), config.batch_size):
            batch = collate([train_graphs[i] for i in order[first:first + config.batch_size]],
                            dtype).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_terms(model, batch, config)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            ema.update_parameters(model)
            train_loss += float(loss.detach()) * batch.n_frames
        metrics = evaluate(ema.module, val_batches, config)
        if config.schedule == "cosine":
            scheduler.step()
        else:
            scheduler.step(metrics["loss"])
        if metrics["loss"] < best_loss:
            best_loss, since_best, best_epoch = metrics["loss"], 0, epoch + 1
            best_state = copy.deepcopy(ema.module.state_dict())
        else:
            since_best += 1
        record = {"epoch": epoch + 1, "train_loss": train_loss / len(order),
                  "lr": optimizer.param_groups[0]["lr"],
                  **{f"val_{k}": v for k, v in metrics.items()}}
        history.append(record)
        _atomic_torch_save({"config": dataclasses.asdict(config), "epoch": epoch + 1,
                            "model": model.state_dict(), "ema": ema.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "best_loss": best_loss,
                            "since_best": since_best, "history": history, "best": best_state,
                            "best_epoch": best_epoch},
                           config.checkpoint_path)
        write_text(config.metrics_path, "".join(json.dumps(r) + "\n" for r in history))
        bar.set_postfix(E=f"{metrics['energy_mae_mev_per_atom']:.2f}meV/at",
                        F=f"{metrics['force_mae_mev_per_A']:.1f}meV/A",
                        lr=f"{record['lr']:.1e}", refresh=False)   # drawn by update()
        bar.update(1)
        if progress is not None:
            progress(record)
    bar.close()

    # export the best EMA weights
    final = _build_module(config, species, train_frames, train_graphs)
    final.load_state_dict(best_state)
    if config.init and state is None and not history:
        _warm_start(final, config.init, species)
    final.eval()
    errors = evaluate(final.to(device), val_batches, config)
    errors.pop("loss")
    final = final.to("cpu")
    n_params = final.energy.n_params()
    teacher = train_frames[0].info.get("teacher")
    metadata = ModelMetadata(
        species=species, cutoff=config.cutoff, dtype=config.dtype,
        model={"arch": "density-expansion", "preset": config.preset, "n_params": n_params,
               **config.architecture(len(species))},
        teacher={"name": teacher} if teacher else {},
        training={"n_train": len(train_frames), "n_val": len(val_frames),
                  "epochs": len(history), "seed": config.seed,
                  "train_file": str(config.train), "val_file": str(config.val or ""),
                  "validation": errors, **({"warnings": warned} if warned else {})},
    )
    path = save_model(final, metadata, output)
    return TrainResult(model_path=path, errors=errors, epochs=len(history), n_params=n_params,
                       seconds=time.perf_counter() - started, history=history,
                       best_epoch=best_epoch, warnings=warned,
                       stopped_early=len(history) < config.max_epochs
                       and since_best >= config.patience)

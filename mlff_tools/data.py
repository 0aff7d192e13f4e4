"""Labelled structures for training: read, validate, turn into graphs, batch.

Datasets are extended XYZ files read with ASE: energy (eV), forces (eV/Å)
and, for periodic cells, stress (eV/Å^3, ASE's sign convention), as written
by ``mlff-tools label`` or by any ASE SinglePointCalculator. Files from other
tools that name them otherwise (``REF_energy``, ``DFT_forces``, ...) are read
with :class:`LabelKeys` (``--energy-key`` etc. on the command line).

Example::

    frames = read_labelled("train.extxyz")
    graphs = [frame_graph(atoms, ("Si",), cutoff=5.0) for atoms in frames]
    batch = collate(graphs[:8], torch.float32)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import MLFFError
from .model.graph import atoms_graph


class DatasetError(MLFFError, ValueError):
    """A dataset that cannot be trained on, with what is wrong and where."""


@dataclass
class FrameGraph:
    """One labelled structure as a graph (float64 numpy; converted when batched)."""

    species: np.ndarray        # [N] int64
    edge_index: np.ndarray     # [2, E] int64
    edge_vec: np.ndarray       # [E, 3] Å
    energy: float              # eV
    forces: np.ndarray         # [N, 3] eV/Å
    stress: np.ndarray | None  # [3, 3] eV/Å^3 (ASE sign), None without a periodic cell
    volume: float              # Å^3, 0 without a periodic cell


@dataclass(frozen=True)
class LabelKeys:
    """Where a frame's labels are: the names in the extxyz header (energy, stress) and
    columns (forces). The default names are also read from an attached calculator."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"


DEFAULT_KEYS = LabelKeys()


def _label(atoms, name: str, keys: LabelKeys = DEFAULT_KEYS):
    """Label ``name`` (energy, forces, stress) of a frame, by the key ``keys`` gives it."""
    key = getattr(keys, name)
    calc = atoms.calc
    if key == name and calc is not None and name in getattr(calc, "results", {}):
        return calc.results[name]
    if name == "forces":
        return atoms.arrays.get(key)
    return atoms.info.get(key)


def frame_energy(atoms, keys: LabelKeys = DEFAULT_KEYS) -> float:
    return float(_label(atoms, "energy", keys))


def _missing(atoms, name: str, keys: LabelKeys) -> str:
    """What to say when a frame lacks a label: the key looked for, what the frame has."""
    key = getattr(keys, name)
    found = sorted({*atoms.info, *(k for k in atoms.arrays if k not in ("numbers", "positions")),
                    *getattr(atoms.calc, "results", {})} - {"teacher", "source"})
    return (f"has no {name} (looked for '{key}'); the frame has: {', '.join(found) or 'nothing'}."
            f" If one of those is the {name}, pass --{name}-key NAME; if the frame is "
            "unlabelled, label it with `mlff-tools label`")


def read_labelled(path: str | os.PathLike, *, role: str = "training",
                  keys: LabelKeys = DEFAULT_KEYS) -> list:
    """Read and check every frame of an extxyz file; :class:`DatasetError` names the first problem."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{role} set '{path}' does not exist")
    try:
        frames = ase.io.read(path, index=":", format="extxyz")
    except Exception as err:  # noqa: BLE001 - ASE raises many types for malformed files
        raise DatasetError(f"{role} set '{path}' is not a readable extended XYZ file: {err}") \
            from err
    if not frames:
        raise DatasetError(f"{role} set '{path}' contains no structures")
    for index, atoms in enumerate(frames):
        where = f"{role} set '{path}', frame {index}"
        energy = _label(atoms, "energy", keys)
        forces = _label(atoms, "forces", keys)
        if energy is None:
            raise DatasetError(f"{where} {_missing(atoms, 'energy', keys)}")
        if forces is None:
            raise DatasetError(f"{where} {_missing(atoms, 'forces', keys)}")
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(atoms), 3):
            raise DatasetError(f"{where}: forces have shape {forces.shape}, "
                               f"expected ({len(atoms)}, 3)")
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise DatasetError(f"{where} has non-finite (NaN or Inf) energy or forces")
        stress = _label(atoms, "stress", keys)
        if stress is not None and not np.all(np.isfinite(stress)):
            raise DatasetError(f"{where} has a non-finite stress")
    return frames


def dataset_species(frames) -> tuple[str, ...]:
    """Elements present, in order of atomic number."""
    from ase.data import atomic_numbers

    symbols = {s for atoms in frames for s in atoms.get_chemical_symbols()}
    return tuple(sorted(symbols, key=atomic_numbers.__getitem__))


def frame_graph(atoms, species: tuple[str, ...], cutoff: float,
                keys: LabelKeys = DEFAULT_KEYS) -> FrameGraph:
    """The graph and labels of one labelled structure."""
    index, edge_index, edge_vec = atoms_graph(atoms, species, cutoff)
    stress = _label(atoms, "stress", keys)
    periodic = atoms.cell.rank == 3 and all(atoms.pbc)
    if stress is not None and periodic:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (6,):
            xx, yy, zz, yz, xz, xy = stress
            stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        elif stress.shape == (9,):
            stress = stress.reshape(3, 3)
    else:
        stress = None
    return FrameGraph(species=index, edge_index=edge_index, edge_vec=edge_vec,
                      energy=frame_energy(atoms, keys),
                      forces=np.asarray(_label(atoms, "forces", keys), dtype=float),
                      stress=stress, volume=atoms.get_volume() if periodic else 0.0)


@dataclass
class Batch:
    """Several frames as one graph; ``frame_of_atom``/``frame_of_edge`` say where each belongs."""

    species: torch.Tensor        # [N] int64
    edge_index: torch.Tensor     # [2, E] int64
    edge_vec: torch.Tensor       # [E, 3] dtype
    frame_of_atom: torch.Tensor  # [N] int64
    frame_of_edge: torch.Tensor  # [E] int64
    n_atoms: torch.Tensor        # [F] dtype
    energy: torch.Tensor         # [F] eV
    forces: torch.Tensor         # [N, 3] eV/Å
    stress: torch.Tensor         # [F, 3, 3] eV/Å^3 (zeros where unknown)
    has_stress: torch.Tensor     # [F] bool
    volume: torch.Tensor         # [F] Å^3

    @property
    def n_frames(self) -> int:
        return int(self.energy.shape[0])

    def to(self, device: torch.device) -> "Batch":
        return Batch(**{k: v.to(device) for k, v in self.__dict__.items()})


def collate(frames: list[FrameGraph], dtype: torch.dtype) -> Batch:
    """Concatenate frames into one graph (edge indices offset frame by frame)."""
    offsets = np.cumsum([0] + [len(f.species) for f in frames[:-1]])
    edge_index = np.concatenate([f.edge_index + off for f, off in zip(frames, offsets)], axis=1)
    n_edges = [f.edge_index.shape[1] for f in frames]
    n_atoms = [len(f.species) for f in frames]
    stress = np.stack([f.stress if f.stress is not None else np.zeros((3, 3)) for f in frames])
    return Batch(
        species=torch.from_numpy(np.concatenate([f.species for f in frames])),
        edge_index=torch.from_numpy(edge_index),
        edge_vec=torch.from_numpy(np.concatenate([f.edge_vec for f in frames])).to(dtype),
        frame_of_atom=torch.repeat_interleave(torch.arange(len(frames)), torch.tensor(n_atoms)),
        frame_of_edge=torch.repeat_interleave(torch.arange(len(frames)), torch.tensor(n_edges)),
        n_atoms=torch.tensor(n_atoms, dtype=dtype),
        energy=torch.tensor([f.energy for f in frames], dtype=dtype),
        forces=torch.from_numpy(np.concatenate([f.forces for f in frames])).to(dtype),
        stress=torch.from_numpy(stress).to(dtype),
        has_stress=torch.tensor([f.stress is not None for f in frames]),
        volume=torch.tensor([f.volume for f in frames], dtype=dtype),
    )

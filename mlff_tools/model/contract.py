"""The model-file contract in code: the forward signature, saving and loading.

A model file is a TorchScript archive whose ``forward`` is::

    forward(species:    int64 [N],
            edge_index: int64 [2, E],     # row 0: centre i, row 1: neighbour j
            edge_vec:   dtype [E, 3])     # r_j - r_i in Å
      -> (atom_energy:  dtype [N],        # eV
          edge_grad:    dtype [E, 3])     # d(sum atom_energy) / d(edge_vec), eV/Å

plus the metadata file ``mlff.json`` (:class:`ModelMetadata`).

Example::

    module = EdgeGradient(MyAtomEnergy(...))
    save_model(module, ModelMetadata(species=("Si",), cutoff=5.0), "model.pt")
    loaded = load_model("model.pt")
    atom_energy, edge_grad = loaded.module(species, edge_index, edge_vec)
"""

from __future__ import annotations

import contextlib
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import torch

from ..files import replacing
from .metadata import ModelFileError, ModelMetadata

METADATA_FILE = "mlff.json"
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@contextlib.contextmanager
def _quiet_jit():
    """TorchScript is the format LAMMPS's libtorch loads; silence torch's deprecation notices."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        yield


class EdgeGradient(torch.nn.Module):
    """Turns an atom-energy module into a contract module.

    ``energy(species, edge_index, edge_vec) -> atom_energy [N]`` must depend on
    positions only through ``edge_vec``; this wrapper adds ``edge_grad`` by
    autograd, so hosts (LAMMPS, the ASE calculator) need no autograd of their own.
    In training mode the gradient keeps its graph, so force losses can be trained.
    """

    def __init__(self, energy: torch.nn.Module):
        super().__init__()
        self.energy = energy

    def forward(
        self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_grad_enabled():    # else edge_grad would be zeros: wrong forces, silently
            raise RuntimeError(
                "an mlff model differentiates its energy to get forces: call it with gradients "
                "enabled (inside torch.enable_grad(), not torch.no_grad() or inference_mode)")
        if not edge_vec.requires_grad:
            edge_vec = edge_vec.detach().requires_grad_(True)
        atom_energy = self.energy(species, edge_index, edge_vec)
        edge_grad = torch.zeros_like(edge_vec)
        if atom_energy.requires_grad:
            grads = torch.autograd.grad(
                [atom_energy.sum()], [edge_vec], create_graph=self.training, allow_unused=True
            )
            grad = grads[0]
            if grad is not None:
                edge_grad = grad
        if not self.training:
            atom_energy = atom_energy.detach()
            edge_grad = edge_grad.detach()
        return atom_energy, edge_grad


@dataclass(frozen=True)
class LoadedModel:
    """A model file in memory: its TorchScript module and validated metadata."""

    module: torch.jit.ScriptModule
    metadata: ModelMetadata
    path: Path

    @property
    def dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.metadata.dtype]


def _smoke_test(module: torch.nn.Module, metadata: ModelMetadata) -> None:
    """Run a pair and an isolated atom through ``module``; check the contract's shapes and dtypes."""
    dtype = TORCH_DTYPES[metadata.dtype]
    species = torch.zeros(3, dtype=torch.int64)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    edge_vec = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, -0.5]], dtype=dtype) * metadata.cutoff
    try:
        atom_energy, edge_grad = module(species, edge_index, edge_vec)
    except ValueError as err:  # a forward returning one tensor does not unpack into two
        raise ModelFileError(f"forward() must return (atom_energy, edge_grad): {err}") from err
    except Exception as err:  # noqa: BLE001 - any failure means the module breaks the contract
        last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ModelFileError(
            f"the module fails on a three-atom graph with {metadata.dtype} inputs ({last}); "
            f"does the metadata `dtype` match the module?"
        ) from err
    if atom_energy.shape != (3,) or edge_grad.shape != (2, 3):
        raise ModelFileError(
            f"forward() must return atom_energy [N] and edge_grad [E, 3]; got "
            f"{tuple(atom_energy.shape)} and {tuple(edge_grad.shape)} for N=3, E=2"
        )
    if atom_energy.dtype != dtype or edge_grad.dtype != dtype:
        raise ModelFileError(
            f"metadata says `dtype` {metadata.dtype} but the module returns "
            f"{atom_energy.dtype} and {edge_grad.dtype}"
        )


def save_model(module: torch.nn.Module, metadata: ModelMetadata, path: str | os.PathLike) -> Path:
    """Script ``module`` (if needed), check it against the contract and write ``path`` atomically.

    Nothing is left behind on failure (a full disk included): the file appears
    complete or not at all.
    """
    path = Path(path)
    if not isinstance(module, torch.jit.ScriptModule):
        with _quiet_jit():
            module = torch.jit.script(module.eval())
    module.eval()
    _smoke_test(module, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(path) as tmp, _quiet_jit():
            torch.jit.save(module, tmp, _extra_files={METADATA_FILE: metadata.to_json()})
    except OSError as err:
        raise ModelFileError(f"cannot write model file '{path}': {err}") from err
    return path


def load_model(path: str | os.PathLike, *, device: str = "cpu") -> LoadedModel:
    """Load and validate a model file; :class:`ModelFileError` says what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file '{path}' does not exist")
    from .compiled import is_package, load_package

    if is_package(path):          # contract version 2: compiled for this machine
        return load_package(path, device=device)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"model file '{path}' is not a TorchScript archive (corrupt or not a model); "
            "write model files with mlff-tools"
        )
    extra = {METADATA_FILE: ""}
    try:
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as err:  # noqa: BLE001 - torch raises several types for corrupt archives
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(
            f"model file '{path}' is not a TorchScript archive ({first}); "
            "write model files with mlff-tools"
        ) from err
    text = extra[METADATA_FILE]
    if isinstance(text, bytes):
        text = text.decode()
    if not text:
        raise ModelFileError(
            f"model '{path}' has no {METADATA_FILE} metadata: it is TorchScript but was not "
            "written by mlff-tools; save it with mlff_tools.model.save_model()"
        )
    metadata = ModelMetadata.from_json(text, source=f"model '{path}': {METADATA_FILE}")
    if metadata.version != 1:
        raise ModelFileError(f"model '{path}' says version {metadata.version} (a compiled "
                             "package) but is TorchScript (version 1); re-export it with "
                             "mlff-tools")
    module.eval()
    return LoadedModel(module=module, metadata=metadata, path=path)

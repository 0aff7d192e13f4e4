"""The model-file metadata (`mlff.json`, format ``mlff-model``, version 1).

One validated object, :class:`ModelMetadata`, written beside the TorchScript
code by :func:`mlff_tools.model.save_model` and checked again on load. The C++
plugin checks the same fields; docs/design.md is the contract both follow.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ase.data import chemical_symbols

from ..errors import MLFFError

FORMAT = "mlff-model"
VERSION = 1
VERSIONS = (1, 2)          # 2: a compiled package (`target` says for what; see compiled.py)
DTYPES = ("float32", "float64")
UNITS = "metal"


class ModelFileError(MLFFError, ValueError):
    """A model file that cannot be used, with a message that says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What LAMMPS and the Python calculator need to know about a model file.

    species: element symbols; position = species index used by the model.
    cutoff: interaction range in Å (the model is strictly local).
    dtype: floating type the model computes in, ``float32`` or ``float64``.
    model, teacher, training: free-form provenance (architecture, teacher, errors).
    """

    species: tuple[str, ...]
    cutoff: float
    dtype: str = "float64"
    units: str = UNITS
    model: dict = dataclasses.field(default_factory=dict)
    teacher: dict = dataclasses.field(default_factory=dict)
    training: dict = dataclasses.field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION
    target: dict = dataclasses.field(default_factory=dict)   # version 2: what it runs on

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(self.species))
        validate(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["species"] = list(self.species)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "mlff.json") -> "ModelMetadata":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelFileError(f"{source} is not valid JSON ({err}); re-export the model") from err
        validate(data, source=source)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _fail(source: str, message: str) -> None:
    raise ModelFileError(f"{source}: {message}")


def validate(data: Any, *, source: str = "mlff.json") -> None:
    """Raise :class:`ModelFileError` naming the first field of ``data`` that breaks the contract."""
    if not isinstance(data, dict):
        _fail(source, "must be a JSON object")
    for key in ("format", "version", "species", "cutoff", "units", "dtype"):
        if key not in data:
            _fail(source, f"lacks the key `{key}`; re-export the model with mlff-tools")
    if data["format"] != FORMAT:
        _fail(source, f"`format` is {data['format']!r}, expected {FORMAT!r}: not an mlff model file")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        _fail(source, f"`version` must be an integer, got {version!r}")
    if version not in VERSIONS:
        _fail(source, f"unknown `version` {version}; this mlff-tools reads versions "
                      f"{', '.join(map(str, VERSIONS))}, upgrade mlff-tools")
    if version == 2:
        target = data.get("target")
        if not isinstance(target, dict) or not {"device", "cpu_isa", "torch"} <= set(target):
            _fail(source, "a version 2 (compiled) model needs `target` with `device`, `cpu_isa` "
                          "and `torch`; recompile it with `mlff-tools compile`")
    species = data["species"]
    if not isinstance(species, (list, tuple)) or not species:
        _fail(source, f"`species` must be a non-empty list of element symbols, got {species!r}")
    for symbol in species:
        if not isinstance(symbol, str) or symbol not in chemical_symbols[1:]:
            _fail(source, f"`species` holds {symbol!r}, which is not an element symbol")
    if len(set(species)) != len(species):
        _fail(source, f"`species` lists an element twice: {list(species)}")
    cutoff = data["cutoff"]
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
        _fail(source, f"`cutoff` must be a positive number in Å, got {cutoff!r}")
    if data["units"] != UNITS:
        _fail(source, f"`units` must be {UNITS!r}, got {data['units']!r}")
    if data["dtype"] not in DTYPES:
        _fail(source, f"`dtype` must be one of {DTYPES}, got {data['dtype']!r}")
    for key in ("model", "teacher", "training"):
        if key in data and not isinstance(data[key], dict):
            _fail(source, f"`{key}` must be a JSON object, got {type(data[key]).__name__}")

"""Model files: the contract (`contract`), its metadata, and reference models."""

from .contract import EdgeGradient, LoadedModel, load_model, save_model
from .metadata import ModelFileError, ModelMetadata

__all__ = [
    "EdgeGradient",
    "LoadedModel",
    "ModelFileError",
    "ModelMetadata",
    "load_model",
    "save_model",
]

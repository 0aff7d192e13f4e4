"""Shared fixtures: reference models exported once per session, and structures."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.structures import distorted_silicon, label_with
from mlff_tools.lammps import potentials_dir
from mlff_tools.model.sw import export_sw


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Stillinger-Weber reference models: Si in float64 and float32, GaN in float64."""
    folder = tmp_path_factory.mktemp("models")
    return {
        "si64": export_sw("Si.sw", folder / "si64.pt", dtype="float64"),
        "si32": export_sw("Si.sw", folder / "si32.pt", dtype="float32"),
        "gan64": export_sw("GaN.sw", folder / "gan64.pt", dtype="float64"),
    }


@pytest.fixture(scope="session")
def potentials():
    return potentials_dir()


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def sw_data(models, tmp_path_factory):
    """SW-labelled Si (exact SW through the float64 reference model): train and val files."""
    import ase.io

    from mlff_tools.calculator import MLFFCalculator

    folder = tmp_path_factory.mktemp("sw_data")
    calc = MLFFCalculator(models["si64"])
    files = {}
    for name, n, seed in (("train", 48, 1), ("val", 12, 2)):
        files[name] = folder / f"{name}.extxyz"
        ase.io.write(files[name], label_with(calc, distorted_silicon(n, seed)))
    return files

"""Batch evaluation in Python: MLFFCalculator.calculate_batch (many structures as one graph)
equals the calculator one structure at a time, and `label` with a student as the teacher
(`mlff:MODEL`) labels in batches what the calculator gives."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from helpers.models import saved_random_student
from helpers.structures import gallium_nitride, silicon
from mlff_tools.calculator import MLFFCalculator
from mlff_tools.label import label_file
from mlff_tools.teachers import TeacherError, load_teacher

EXACT = 1e-10     # float64: the same arithmetic, only batched
TEXT = 1e-7       # relative: extended XYZ keeps about 8 significant digits


@pytest.fixture(scope="module")
def gan_model(tmp_path_factory):
    return saved_random_student(("Ga", "N"), tmp_path_factory.mktemp("batch") / "gan.pt",
                                seed=5)


def structures():
    """Periodic cells of several sizes, a triclinic one, a cluster without a cell and a lone
    atom (no edges)."""
    cluster = gallium_nitride((1, 1, 1))
    cluster = Atoms(cluster.get_chemical_symbols(), positions=cluster.positions, pbc=False)
    lonely = Atoms("N", positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=True)
    return [gallium_nitride((2, 2, 2)), gallium_nitride((2, 2, 1), seed=4), cluster, lonely,
            gallium_nitride((3, 2, 2), seed=9)]


def test_batch_equals_one_by_one(gan_model):
    frames = structures()
    calc = MLFFCalculator(gan_model)
    for batch_size in (1, 2, 32):
        batched = calc.calculate_batch(frames, batch_size=batch_size)
        assert len(batched) == len(frames)
        for k, (atoms, result) in enumerate(zip(frames, batched)):
            atoms = atoms.copy()
            atoms.calc = MLFFCalculator(gan_model)
            energy = atoms.get_potential_energy()
            assert abs(result["energy"] - energy) <= EXACT * max(1.0, abs(energy)), \
                f"structure {k}, batch {batch_size}: {result['energy']} vs {energy}"
            error = np.abs(result["forces"] - atoms.get_forces()).max()
            assert error <= EXACT, f"structure {k}: forces differ by {error:.2e} eV/Å"
            error = np.abs(result["energies"] - atoms.get_potential_energies()).max()
            assert error <= EXACT, f"structure {k}: per-atom energies differ by {error:.2e}"
            if all(atoms.pbc):
                error = np.abs(result["stress"] - atoms.get_stress()).max()
                assert error <= EXACT, f"structure {k}: stress differs by {error:.2e} eV/Å³"
            else:
                assert "stress" not in result
    timing = calc.batch_timing
    assert timing["structures"] == len(frames)
    assert timing["atoms"] == sum(len(a) for a in frames)
    assert timing["structures_per_s"] > 0 and timing["model_seconds"] > 0


def test_batch_names_the_structure_with_an_unknown_element(gan_model):
    from mlff_tools.errors import MLFFError

    with pytest.raises(MLFFError, match="no species Si"):
        MLFFCalculator(gan_model).calculate_batch([gallium_nitride((1, 1, 1)), silicon()])


def test_label_with_a_student_as_teacher(gan_model, tmp_path):
    frames = structures()[:3] + [gallium_nitride((2, 2, 2), seed=s) for s in range(70)]
    ase.io.write(tmp_path / "in.extxyz", frames)
    count = label_file(tmp_path / "in.extxyz", tmp_path / "out.extxyz",
                       teacher=f"mlff:{gan_model}", progress=False)
    assert count == len(frames)
    labelled = ase.io.read(tmp_path / "out.extxyz", ":")
    assert [a.info["label_index"] for a in labelled] == list(range(len(frames)))
    calc = MLFFCalculator(gan_model)
    for k in (0, 2, 40, len(frames) - 1):
        atoms = frames[k].copy()
        atoms.calc = calc
        forces = atoms.get_forces()
        error = np.abs(labelled[k].get_forces() - forces).max() / np.abs(forces).max()
        assert error <= TEXT, f"frame {k}: label and calculator differ by {error:.2e} (relative)"
    teacher = load_teacher(f"mlff:{gan_model}")
    assert teacher.elements == frozenset({"Ga", "N"})
    with pytest.raises(TeacherError, match="has no Si|cannot label|Si"):
        teacher.check_elements({"Si"})
    with pytest.raises(TeacherError, match="mlff:MODEL"):
        load_teacher("mlff:")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_batch_on_cuda_equals_cpu(gan_model):
    frames = structures()
    cpu = MLFFCalculator(gan_model).calculate_batch(frames)
    gpu = MLFFCalculator(gan_model, device="cuda").calculate_batch(frames)
    for k, (a, b) in enumerate(zip(cpu, gpu)):
        error = np.abs(a["forces"] - b["forces"]).max()
        assert error <= EXACT, f"structure {k}: CUDA and CPU forces differ by {error:.2e}"

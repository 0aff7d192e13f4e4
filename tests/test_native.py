"""`pair_style mlff model.pt evaluator native`: the student computed in C++
(pair_style/mlff_native.h) equals the same file run by libtorch.

Students with random weights and random descriptor statistics, of each kind train writes
(one species; l_max 3; per-pair weights for three species with the `accurate` sizes; shared
radial banks for six species), in float64 (to 1e-10) and float32 (to 1e-5 relative): energy,
forces, pressure tensor, per-atom energy and per-atom virial in LAMMPS, on 1 and 2 ranks and
with 2 threads. Bad requests are refused at `pair_style` by name.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.lammps import run_lmp, single_point
from helpers.models import random_student_file
from helpers.structures import silicon
from mlff_tools.lammps import write_data
from mlff_tools.model import EdgeGradient, ModelMetadata, save_model
from mlff_tools.model.student import StudentEnergy

TOL64 = 1e-10    # float64: relative to the largest value of each quantity
TOL32 = 1e-5     # float32: the same, relative

# (species, preset, l_max, radial banks): the species treatments and sizes train writes
KINDS = {
    "Si-fast": (("Si",), "fast", 2, 0),
    "Si-lmax3": (("Si",), "fast", 3, 0),
    "SiCGe-accurate-lmax3": (("Si", "C", "Ge"), "accurate", 3, 0),
    "six-species-banks": (("Si", "C", "Ge", "Sn", "O", "N"), "fast", 2, 8),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("native")
    return {(kind, dtype): random_student_file(folder / f"{kind}-{dtype}.pt", *spec,
                                               dtype=dtype)
            for kind, spec in KINDS.items() for dtype in ("float64", "float32")}


def structure(species):
    """Rattled triclinic silicon (64 atoms) with the species laid over its sites in turn."""
    atoms = silicon((2, 2, 2), rattle=0.1, triclinic=True, seed=4)
    atoms.set_chemical_symbols([species[i % len(species)] for i in range(len(atoms))])
    return atoms


def lines(model, species, evaluator, extra=""):
    return [f"pair_style mlff {model} evaluator {evaluator}{extra}",
            f"pair_coeff * * {' '.join(species)}"]


QUANTITIES = (("energy", "energy"), ("pressure", "pressure"), ("virial", "virial"),
              ("forces", "forces"), ("per-atom energy", "atom_energy"),
              ("per-atom virial", "atom_virial"))


def relative_errors(result, reference):
    """{quantity: largest error relative to the reference's largest magnitude (at least 1)} of
    what both hold (a SinglePoint also has a virial; a run_lmp result has not)."""
    def relative(a, b):
        return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1.0))

    return {name: relative(getattr(result, attribute), getattr(reference, attribute))
            for name, attribute in QUANTITIES
            if getattr(result, attribute, None) is not None
            and getattr(reference, attribute, None) is not None}


def beyond(errors, tolerance) -> str:
    """The quantities off by tolerance or more, with their errors ('' where none is)."""
    return ", ".join(f"{name} {error:.2e}" for name, error in errors.items()
                     if not error < tolerance)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
def test_native_equals_torch(models, tmp_path, kind, dtype):
    species = list(KINDS[kind][0])
    atoms = structure(species)
    results = {}
    for evaluator in ("torch", "native"):
        (tmp_path / evaluator).mkdir()
        results[evaluator] = single_point(atoms, species,
                                          lines(models[kind, dtype], species, evaluator),
                                          tmp_path=tmp_path / evaluator)
    tolerance = TOL64 if dtype == "float64" else TOL32
    off = beyond(relative_errors(results["native"], results["torch"]), tolerance)
    assert not off, f"{kind} {dtype}: native differs from torch by {off} (tolerance {tolerance:g})"
    assert np.abs(results["torch"].forces).max() > 0.01, "a test with no forces tests nothing"


def test_native_on_two_ranks_and_two_threads(models, tmp_path):
    """Two ranks (ghost atoms, forces sent back to their owners) and two threads per rank
    give the one-rank torch numbers."""
    species = list(KINDS["SiCGe-accurate-lmax3"][0])
    model = models["SiCGe-accurate-lmax3", "float64"]
    atoms = structure(species)
    data = write_data(atoms, tmp_path / "structure.data", species)
    setup = ["units metal", "atom_modify map yes", f"read_data {data}"]
    reference = run_lmp(setup + lines(model, species, "torch"), nprocs=1, cwd=tmp_path / "torch")
    for nprocs, threads in ((2, 1), (1, 2)):
        result = run_lmp(setup + lines(model, species, "native", f" threads {threads}"),
                         nprocs=nprocs, cwd=tmp_path / f"native-{nprocs}-{threads}")
        assert "computed by the native evaluator" in result.output
        off = beyond(relative_errors(result, reference), TOL64)
        assert not off, f"{nprocs} rank(s), {threads} thread(s): off by {off}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_baseline_products_equal_torch(models, tmp_path, dtype):
    """The readout's products have two builds on x86-64, AVX2 with FMA (taken where the CPU
    has them) and the plugin's baseline; MLFF_NATIVE_AVX2=0 runs the baseline, which must
    give torch's numbers too (the `accurate` sizes: 424 inputs, 96 wide)."""
    species = list(KINDS["SiCGe-accurate-lmax3"][0])
    model = models["SiCGe-accurate-lmax3", dtype]
    data = write_data(structure(species), tmp_path / "structure.data", species)
    setup = ["units metal", "atom_modify map yes", f"read_data {data}"]
    reference = run_lmp(setup + lines(model, species, "torch"), nprocs=1, cwd=tmp_path / "torch")
    result = run_lmp(setup + lines(model, species, "native"), nprocs=1, cwd=tmp_path / "base",
                     env={"MLFF_NATIVE_AVX2": "0"})
    tolerance = TOL64 if dtype == "float64" else TOL32
    assert "computed by the native evaluator" in result.output
    off = beyond(relative_errors(result, reference), tolerance)
    assert not off, f"baseline products, {dtype}: off by {off} (tolerance {tolerance:g})"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_any_number_of_radial_functions(tmp_path, dtype):
    """A student with 20 radial functions (the basis comes one function at a time, with no
    per-edge array of a fixed size; 16 was the limit before) runs natively, torch's numbers."""
    model = random_student_file(tmp_path / "wide.pt", ("Si", "C"), "fast", l_max=3,
                                dtype=dtype, n_radial=20)
    atoms = structure(["Si", "C"])
    results = {}
    for evaluator in ("torch", "native"):
        (tmp_path / evaluator).mkdir()
        results[evaluator] = single_point(atoms, ["Si", "C"],
                                          lines(model, ["Si", "C"], evaluator),
                                          tmp_path=tmp_path / evaluator)
    tolerance = TOL64 if dtype == "float64" else TOL32
    off = beyond(relative_errors(results["native"], results["torch"]), tolerance)
    assert not off, f"20 radial functions, {dtype}: off by {off} (tolerance {tolerance:g})"


def test_native_refuses_what_it_cannot_compute(models, tmp_path):
    from mlff_tools.lammps import potentials_dir
    from mlff_tools.model.sw import export_sw

    atoms = structure(["Si"])
    sw = export_sw(potentials_dir() / "Si.sw", tmp_path / "sw.pt")
    model = models["Si-fast", "float64"]
    cases = [
        (lines(sw, ["Si"], "native"), "is not one"),
        (lines(model, ["Si"], "native", " graph device"), "remove `graph device`"),
        (lines(model, ["Si"], "jax"), "evaluator `jax` is not one of auto, torch, native"),
    ]
    for pair, message in cases:
        with pytest.raises(Exception, match=message):
            single_point(atoms, ["Si"], pair, tmp_path=tmp_path)


def test_auto_takes_native_for_students_on_the_host_graph(models, tmp_path):
    """With no evaluator keyword (auto) a student's .pt runs natively on the host graph, and
    with libtorch where native does not apply: the SW reference model, `graph device`."""
    from mlff_tools.lammps import potentials_dir
    from mlff_tools.model.sw import export_sw

    sw = export_sw(potentials_dir() / "Si.sw", tmp_path / "sw.pt")
    data = write_data(structure(["Si"]), tmp_path / "si.data", ["Si"])
    setup = ["units metal", f"read_data {data}"]
    student = models["Si-fast", "float64"]
    for model, extra, native in ((student, "", True), (sw, "", False),
                                 (student, " graph device", False)):
        result = run_lmp(setup + [f"pair_style mlff {model}{extra}", "pair_coeff * * Si"],
                         nprocs=1, cwd=tmp_path / f"{model.stem}{extra.replace(' ', '-')}")
        said = "computed by the native evaluator" in result.output
        assert said == native, f"{model.name}{extra}: native {said}, expected {native}"


def test_a_student_native_gets_wrong_runs_with_torch_and_says_so(tmp_path):
    """The check at pair_style: where the C++ student and the module differ, auto warns and
    runs libtorch (the module's numbers), and `evaluator native` stops with the difference."""
    # a module whose channel pairs (a buffer the C++ student does not read: it knows the
    # order) are not the ones its weights were trained for: it computes other invariants
    energy = StudentEnergy(("Si",), 4.5, dtype=torch.float64)
    with torch.no_grad():
        energy.triu_cols.copy_(energy.triu_rows)
    model = save_model(EdgeGradient(energy).eval(), ModelMetadata(
        species=("Si",), cutoff=4.5, dtype="float64",
        model={"arch": "density-expansion", "preset": "fast"}), tmp_path / "shifted.pt")
    data = write_data(structure(["Si"]), tmp_path / "si.data", ["Si"])
    setup = ["units metal", f"read_data {data}"]
    auto = run_lmp(setup + [f"pair_style mlff {model}", "pair_coeff * * Si"], nprocs=1,
                   cwd=tmp_path / "auto")
    assert "WARNING" in auto.output and "does not compute what model" in auto.output
    assert "computed by the native evaluator" not in auto.output
    torch_run = run_lmp(setup + [f"pair_style mlff {model} evaluator torch",
                                 "pair_coeff * * Si"], nprocs=1, cwd=tmp_path / "torch")
    assert auto.energy == torch_run.energy
    refused = run_lmp(setup + [f"pair_style mlff {model} evaluator native", "pair_coeff * * Si"],
                      nprocs=1, cwd=tmp_path / "native", check=False)
    assert "does not compute what model" in refused and "energies" in refused

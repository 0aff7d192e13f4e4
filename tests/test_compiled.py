"""Compiled models (`mlff-tools compile`, contract version 2): the same numbers as the
TorchScript file, and a named error for every package that cannot run here."""

import json
import shutil
import sys
import zipfile

import numpy as np
import pytest
import torch
from ase import Atoms

from helpers.lammps import assert_a_rank_owns_no_atom, mlff_lines, run_lmp, sw_lines
from helpers.models import random_student, saved_random_student
from helpers.structures import gallium_nitride, silicon
from mlff_tools.calculator import MLFFCalculator
from mlff_tools.cli import main
from mlff_tools.lammps import potentials_dir, write_data
from mlff_tools.model import ModelFileError, ModelMetadata, load_model, save_model
from mlff_tools.model import compiled as compiled_module
from mlff_tools.model.compiled import METADATA_ENTRY, compile_model
from mlff_tools.model.sw import export_sw

TOL = {"float64": 1e-10, "float32": 1e-5}    # relative to the largest value compared
CUTOFF = 4.5


def relative_error(got, expected) -> float:
    """The largest difference, relative to the largest expected value (at least 1)."""
    got, expected = np.asarray(got), np.asarray(expected)
    return float(np.abs(got - expected).max()) / max(float(np.abs(expected).max()), 1.0)


def student_file(folder, species, dtype, l_max=2, seed=3, radial_banks=0):
    """A random-weight `fast` student written as train writes one (sizes in the metadata)."""
    return saved_random_student(
        species, folder / f"student_{'_'.join(species)}_{dtype}_banks{radial_banks}.pt",
        seed=seed, dtype=dtype, l_max=l_max, radial_banks=radial_banks)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Two students compiled once: Si float64 (l_max 2) and Si-C float32 (l_max 3)."""
    folder = tmp_path_factory.mktemp("compiled")
    out = {}
    for species, dtype, l_max in ((("Si",), "float64", 2), (("Si", "C"), "float32", 3)):
        source = student_file(folder, species, dtype, l_max)
        out[dtype] = (source, compile_model(source, source.with_suffix(".pt2")))
    return out


def structures():
    """Orthogonal and triclinic Si, Si-C with an atom far from the rest, and a dimer out of
    range (zero edges)."""
    crystal = silicon((2, 2, 2))
    triclinic = silicon((2, 2, 2), triclinic=True, seed=2)
    mixed = silicon((2, 2, 1), seed=4)
    mixed.symbols[::3] = "C"
    lonely = mixed + Atoms("Si", positions=[[mixed.cell[0, 0] / 2, mixed.cell[1, 1] / 2, 30.0]])
    lonely.cell[2, 2] = 40.0
    far = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 9.0]], cell=[20, 20, 20], pbc=True)
    return {"orthogonal": crystal, "triclinic": triclinic, "lonely atom": lonely,
            "zero edges": far}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_equals_torchscript(compiled, dtype):
    """Energy, per-atom energies, forces and stress of the package equal the .pt's."""
    source, package = compiled[dtype]
    species = load_model(source).metadata.species
    for name, atoms in structures().items():
        if not set(atoms.get_chemical_symbols()) <= set(species):
            continue
        results = []
        for path in (source, package):
            atoms = atoms.copy()
            atoms.calc = MLFFCalculator(path)
            results.append({"energy": np.array([atoms.get_potential_energy()]),
                            "energies": atoms.get_potential_energies(),
                            "forces": atoms.get_forces(), "stress": atoms.get_stress()})
        for key in results[0]:
            error = relative_error(results[1][key], results[0][key])
            assert error < TOL[dtype], f"{name} {key}: {error:.2e}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_student_in_lammps_equals_its_torchscript(compiled, tmp_path, dtype):
    """In LAMMPS the package gives its .pt's energy, forces, pressure, per-atom energy and
    per-atom virial: a triclinic cell on 1 and 2 ranks, and a cluster in a long box on 4
    ranks of which two own no atom (float64 to 1e-10, float32 to 1e-5, relative to the
    largest value)."""
    source, package = compiled[dtype]
    species = list(load_model(source).metadata.species)
    bulk = silicon((3, 3, 3), triclinic=True, seed=6)
    cluster = silicon((2, 2, 2), seed=7)
    cluster.set_cell(cluster.cell.array * [4, 1, 1], scale_atoms=False)
    for atoms in (bulk, cluster):
        if "C" in species:
            atoms.symbols[::4] = "C"
    for name, atoms, nprocs, before in (("triclinic", bulk, 1, []), ("triclinic", bulk, 2, []),
                                        ("two-empty-ranks", cluster, 4, ["processors 4 1 1"])):
        data = write_data(atoms, tmp_path / f"{name}.data", species)
        runs = [run_lmp(["units metal", *before, f"read_data {data}",
                         *mlff_lines(path, species)], nprocs=nprocs,
                        cwd=tmp_path / f"{name}_{nprocs}_{path.suffix[1:]}")
                for path in (source, package)]
        if nprocs == 4:
            assert_a_rank_owns_no_atom(runs[1].output)
        for key in ("energy", "forces", "pressure", "atom_energy", "atom_virial"):
            error = relative_error(getattr(runs[1], key), getattr(runs[0], key))
            assert error < TOL[dtype], (f"{name}, {nprocs} rank(s), {key}: the package differs "
                                        f"from the .pt by {error:.2e} (relative)")


def test_edges_in_any_order(compiled):
    """The package does not sort (StudentEnergy.export_form): each centre's edges in one run,
    the runs in any order, give the .pt's numbers; scattered edges through load_model's
    module are sorted first (the same numbers, the gradient in the caller's order), and
    given to the compiled code itself they stop it with a named error, not a wrong energy."""
    from mlff_tools.model.graph import atoms_graph

    source, package = compiled["float64"]
    s, e, v = atoms_graph(silicon((2, 2, 2), seed=5), ("Si",), CUTOFF)
    graph = (torch.from_numpy(s), torch.from_numpy(e), torch.from_numpy(v))
    with torch.enable_grad():
        energy, grad = (t.detach() for t in load_model(source).module(*graph))
    runs = torch.argsort(-graph[1][0], stable=True)           # centres' runs descending
    scattered = torch.randperm(e.shape[1], generator=torch.Generator().manual_seed(0))
    module = load_model(package).module
    for name, order, call in (("runs reversed", runs, module.compiled),
                              ("scattered", scattered, module)):
        got_energy, got_grad = call(graph[0], graph[1][:, order], graph[2][order])
        for what, got, expected in (("energy", got_energy, energy),
                                    ("gradient", got_grad, grad[order])):
            error = float((got - expected).abs().max() / expected.abs().max())
            assert error < TOL["float64"], f"{name} {what}: {error:.2e}"
    with pytest.raises(RuntimeError, match="each centre's edges next to each other"):
        module.compiled(graph[0], graph[1][:, scattered], graph[2][scattered])


def test_banked_student_compiles(tmp_path):
    """A student with shared radial banks (the species treatment for many elements) compiles,
    and its package equals the .pt on a mixed structure (float64)."""
    source = student_file(tmp_path, ("Si", "C"), "float64", radial_banks=3)
    package = compile_model(source, source.with_suffix(".pt2"))
    atoms = structures()["lonely atom"]
    results = []
    for path in (source, package):
        atoms = atoms.copy()
        atoms.calc = MLFFCalculator(path)
        results.append((atoms.get_potential_energies(), atoms.get_forces()))
    for name, expected, got in zip(("energies", "forces"), *results):
        error = float(np.abs(got - expected).max())
        assert error < TOL["float64"], f"{name}: package differs from the .pt by {error:.2e}"


def test_compile_command_and_info(compiled, tmp_path, capsys):
    """`compile` writes NAME.pt2 beside the model, refuses to overwrite it, and `info` shows
    the version 2 metadata with its target."""
    source = student_file(tmp_path, ("Si",), "float64")
    assert main(["compile", str(source)]) == 0
    package = source.with_suffix(".pt2")
    assert package.is_file() and "checked equal to the model" in capsys.readouterr().out
    assert main(["compile", str(source)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["info", str(package)]) == 0
    printed = capsys.readouterr().out
    assert "version 2" in printed and torch.__version__ in printed, printed
    assert torch.backends.cpu.get_cpu_capability() in printed


def test_bench_times_torchscript_and_compiled(compiled, tmp_path, capsys, monkeypatch):
    """`bench` on a student's .pt times it through the native evaluator and the package beside
    it too, and prints their ratios to TorchScript; a package for another machine beside it is
    not timed (and, with --no-compile, not replaced)."""
    monkeypatch.chdir(tmp_path)
    source, _ = compiled["float64"]
    argv = ["bench", "--model", str(source), "--sizes", "64", "--ranks", "1", "--plot", "b.png"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("student (")]
    assert [row.split(" ", 2)[1] for row in rows] == ["(TorchScript)", "(native)",
                                                      "(compiled)"], printed
    assert "compiled / TorchScript at 64 atoms, 1 rank(s): " in printed
    assert "native / TorchScript at 64 atoms, 1 rank(s): " in printed
    stale = tmp_path / "model"
    stale.mkdir()
    stale_source = stale / "student.pt"
    stale_source.write_bytes(source.read_bytes())
    rewritten(compiled["float64"][1], tmp_path, torch="2.99.0").rename(stale / "student.pt2")
    assert main([*argv[:2], str(stale_source), *argv[3:], "--no-compile"]) == 0
    printed = capsys.readouterr().out
    assert "not timing student.pt2: " in printed and "student (compiled)" not in printed


def rewritten(package, tmp_path, **target):
    """A copy of ``package`` whose mlff.json says another target."""
    out = tmp_path / f"other_{'_'.join(target)}.pt2"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(out, "w") as copy:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("/" + METADATA_ENTRY):
                meta = json.loads(data)
                meta["target"].update(target)
                data = json.dumps(meta).encode()
            copy.writestr(item, data)
    return out


@pytest.mark.parametrize("target, message", [
    ({"cpu_isa": "SVE256"}, r"compiled for SVE256 instructions and this CPU has \w+"),
    ({"torch": "2.99.0"}, r"compiled with torch 2\.99\.0, this is torch "),
    ({"device": "cuda"}, r"compiled for cuda, asked to run on cpu"),
])
def test_package_for_another_machine_is_refused(compiled, tmp_path, target, message):
    _, package = compiled["float64"]
    with pytest.raises(ModelFileError, match=message + r".*recompile it here with "
                                                       r"`mlff-tools compile`"):
        load_model(rewritten(package, tmp_path, **target))


def test_damaged_package_and_unsupported_model(compiled, tmp_path):
    """A truncated package and a model of an architecture compile does not know get named
    errors."""
    _, package = compiled["float64"]
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(package.read_bytes()[: package.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="recompile it|not a TorchScript archive"):
        load_model(cut)
    other = save_model(random_student(species=("Si",), seed=1), ModelMetadata(
        species=("Si",), cutoff=CUTOFF, dtype="float64", model={"arch": "someone-elses"}),
        tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="is a someone-elses model.*run this one as the "
                                             "TorchScript file"):
        compile_model(other, tmp_path / "other.pt2")


def _reuse_package(monkeypatch, package) -> list:
    """Compiling copies ``package`` instead (seconds, not a minute); returns the list of
    Inductor configurations each compile was asked for."""
    asked = []

    def copy(program, package_path, inductor_configs):
        asked.append(inductor_configs)
        return shutil.copy(package, package_path)

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", copy)
    return asked


CRASH = [sys.executable, "-c", "import faulthandler; faulthandler._sigsegv()"]


@pytest.mark.filterwarnings("ignore:Duplicate name")   # the reused package has mlff.json
def test_a_crash_of_torchs_loader_in_every_packaging_is_a_named_error_and_writes_nothing(
        compiled, tmp_path, monkeypatch):
    """torch 2.11+cu130's AOTInductor loader crashed (segmentation fault) on the CUDA
    packages it had just compiled, on an H100 and an H200: `compile` checks the package in a
    child process, and where the load crashes in every packaging torch offers, that is an
    error that names each and the way out, with no package written (here the child crashes
    on purpose, and the compile reuses a package)."""
    source, package = compiled["float64"]
    asked = _reuse_package(monkeypatch, package)
    monkeypatch.setattr(compiled_module, "_parity_command", lambda *args: CRASH)
    folder = tmp_path / "out"
    with pytest.raises(ModelFileError, match=r"crashed loading the package it compiled for cpu, "
                                             r"in each way it could package it: default "
                                             r"\(SIGSEGV\), kernel binaries in the \.so "
                                             r"\(SIGSEGV\).*Not written; run the TorchScript "
                                             r"model"):
        compile_model(source, folder / "model.pt2")
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())
    assert len(asked) == len(compiled_module.PACKAGINGS), asked
    for configs, (name, extra) in zip(asked, compiled_module.PACKAGINGS):
        assert extra.items() <= configs.items(), (name, configs)


@pytest.mark.filterwarnings("ignore:Duplicate name")   # the reused package has mlff.json
def test_a_crash_of_the_default_packaging_falls_back_on_the_next(compiled, tmp_path,
                                                                monkeypatch, capsys):
    """Where the loader crashes on the default packaging, `compile` packages the code the
    next ways: one this torch cannot compile (here: the kernel binaries inside the shared
    library, refused on purpose) is passed over, the next (weights mapped) is checked as any
    package, written, and said; the package's target names its packaging."""
    source, package = compiled["float64"]
    asked = _reuse_package(monkeypatch, package)
    reuse = torch._inductor.aoti_compile_and_package

    def refuse_embedding(program, package_path, inductor_configs):
        if "aot_inductor.embed_kernel_binary" in inductor_configs:
            asked.append(inductor_configs)
            raise RuntimeError("no such config in this torch\nsecond line")
        return reuse(program, package_path, inductor_configs)

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", refuse_embedding)
    real = compiled_module._parity_command
    calls = []

    def first_crashes(*args):
        calls.append(args)
        return CRASH if len(calls) == 1 else real(*args)

    monkeypatch.setattr(compiled_module, "_parity_command", first_crashes)
    target = tmp_path / "model.pt2"
    assert main(["compile", str(source), "-o", str(target)]) == 0
    assert len(calls) == 2 and len(asked) == 3, (calls, asked)
    assert asked[2]["aot_inductor.force_mmap_weights"] is True, asked[2]
    packaging = compiled_module.package_metadata(target).target["packaging"]
    assert packaging == "weights mapped", packaging
    assert "packaged with weights mapped" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt2"], list(tmp_path.iterdir())


@pytest.mark.parametrize("packaging", [p for p, _ in compiled_module.PACKAGINGS[1:]])
def test_each_fallback_packaging_runs_and_equals_the_model(tmp_path, monkeypatch, packaging):
    """Each way `compile` can package a student where the default crashes makes a package
    that loads here and equals the model (float64, 1e-10): `compile` checks it in a child
    process before writing, and here the package runs again, in LAMMPS (the plugin's own
    loader: one of them keeps its weights in a file beside the code) against the .pt."""
    chosen = [p for p in compiled_module.PACKAGINGS if p[0] == packaging]
    monkeypatch.setattr(compiled_module, "PACKAGINGS", tuple(chosen))
    source = student_file(tmp_path, ("Si",), "float64")
    package = compile_model(source, tmp_path / "model.pt2")
    assert compiled_module.package_metadata(package).target["packaging"] == packaging
    data = write_data(silicon((3, 3, 3), triclinic=True, seed=5), tmp_path / "si.data", ["Si"])
    runs = [run_lmp(["units metal", f"read_data {data}", *mlff_lines(path, ["Si"])],
                    nprocs=1, cwd=tmp_path / path.suffix[1:]) for path in (source, package)]
    for key in ("energy", "forces", "pressure"):
        error = relative_error(getattr(runs[1], key), getattr(runs[0], key))
        assert error < TOL["float64"], (f"{packaging}, {key}: the package differs from the .pt "
                                        f"by {error:.2e} (relative)")


def test_a_package_that_computes_another_model_is_refused(compiled, tmp_path, monkeypatch):
    """The check compares the package with the model it claims to be: a real package of
    another student (weights seed 3, checked against the student of seed 4) is an error that
    says by how much they differ, and nothing is written."""
    _, package = compiled["float64"]
    other = student_file(tmp_path, ("Si",), "float64", seed=4)
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package",
                        lambda program, package_path, **kwargs: shutil.copy(package,
                                                                            package_path))
    folder = tmp_path / "out"
    with pytest.raises(ModelFileError, match=r"compiled model's atom energy differs from the "
                                             r"model's \(float64\) by .*not written"):
        compile_model(other, folder / "model.pt2")
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


@pytest.mark.parametrize("errors, accepted", [
    # measured (round 0 of the distill test's student, float32): the package 3.8e-6 from
    # float64, the float32 model 1.4e-5 from it, so the two 1.04e-5 apart: the package is
    # the closer one and is kept
    ({"atom energy": [4.3e-7, 2.8e-7], "edge gradient": [3.8e-6, 1.4e-5]}, True),
    # a package 5e-5 off where the float32 model is within 1e-7: wrong, refused
    ({"atom energy": [2e-7, 1e-7], "edge gradient": [5e-5, 1e-7]}, False),
    # within the 1e-5 of the issue where the model is exact to round-off: kept
    ({"atom energy": [9e-6, 1e-7], "edge gradient": [2e-7, 1e-7]}, True),
])
def test_a_float32_package_is_judged_against_float64(compiled, tmp_path, monkeypatch, errors,
                                                     accepted):
    """A float32 package and the float32 model round differently, and far from the
    student's data both can be 1e-5 off the float64 answer: the package must be within
    1e-5 of the model computed in float64, or, where the float32 model itself is further
    off, within ROUNDOFF_SLACK times the model's own error (here the child's report is
    given, the numbers measured on a package that the old float32-against-float32 check
    refused)."""
    source, package = compiled["float32"]
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package",
                        lambda program, package_path, **kwargs: shutil.copy(package,
                                                                            package_path))
    monkeypatch.setattr(compiled_module, "_parity_command", lambda *args: [
        sys.executable, "-c", f"print({json.dumps(errors)!r})"])
    target = tmp_path / "model.pt2"
    if accepted:
        compile_model(source, target)
        assert target.exists()
    else:
        with pytest.raises(ModelFileError, match=r"edge gradient differs from the model's "
                                                 r"\(float64\) by 5.00e-05 \(relative; the "
                                                 r"float32 model itself is within 1.00e-07"):
            compile_model(source, target)
        assert not target.exists()


@pytest.mark.parametrize("cutoff, species", [(4.0, ("Si",)), (6.0, ("H", "O"))])
def test_the_check_graph_is_spaced_as_atoms_are(cutoff, species):
    """The graph a package is checked on holds no crowd (where a trained float32 student's
    gradient cancels so much that round-off refused a correct package): no two atoms nearer
    than 0.8 x cutoff / 2, every atom a centre with neighbours in varied numbers, every
    species present, each edge the vector between its atoms and inside the cutoff."""
    meta = ModelMetadata(species=species, cutoff=cutoff, dtype="float32",
                         model={"arch": "density-expansion"})
    kinds, edge_index, edge_vec = compiled_module.parity_graph(meta, "cpu")
    lengths = edge_vec.double().norm(dim=1)
    assert float(lengths.min()) >= 0.8 * cutoff / 2 - 1e-6, float(lengths.min())
    assert float(lengths.max()) < cutoff
    counts = torch.bincount(edge_index[0], minlength=len(kinds))
    assert int(counts.min()) > 0 and int(counts.max()) > int(counts.min()), counts
    assert set(kinds.tolist()) == set(range(len(species)))
    # antisymmetric: the edge j -> i is minus i -> j
    pairs = {(int(i), int(j)): v for (i, j), v in zip(edge_index.t(), edge_vec)}
    assert all(torch.equal(pairs[j, i], -v) for (i, j), v in pairs.items())


def test_the_check_reports_the_packages_and_the_models_own_error(compiled):
    """The child process of the check, run on a real float32 package: per output, the
    package's error against the model in float64 and the float32 model's own, both at
    float32 round-off, not zero (so the float64 reference really is another computation)."""
    import subprocess

    source, package = compiled["float32"]
    run = subprocess.run(compiled_module._parity_command(str(package), str(source), "cpu"),
                         capture_output=True, text=True,
                         env=compiled_module._child_environment(), check=True)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(report) == {"atom energy", "edge gradient"}, report
    for name, (error, own) in report.items():
        assert 0 < own < 1e-5 and error < 1e-5, f"{name}: package {error:.2e}, model {own:.2e}"


@pytest.fixture(scope="module")
def compiled_sw(tmp_path_factory):
    """The Stillinger-Weber reference model of GaN (two species: element-pair cutoffs and
    triplet parameters), float64, compiled."""
    folder = tmp_path_factory.mktemp("compiled_sw")
    source = export_sw("GaN.sw", folder / "gan64.pt", dtype="float64")
    return compile_model(source, folder / "gan64.pt2")


def kernel_source(package):
    """The C++ of a package's CPU kernels."""
    with zipfile.ZipFile(package) as archive:
        return "".join(archive.read(name).decode() for name in archive.namelist()
                       if name.endswith(".kernel.cpp"))


def test_packages_are_compiled_for_the_threads_they_run_with(compiled, compiled_sw, tmp_path):
    """A package's CPU code is written for one thread per process unless asked (LAMMPS runs a
    thread per MPI rank; code for 2 threads ran 20% slower on one), whatever the compiling
    process's own thread count; --threads 2 writes OpenMP regions, and the target says so."""
    for package in (compiled["float64"][1], compiled_sw):
        assert load_model(package).metadata.target["threads"] == 1
        source = kernel_source(package)
        assert source and "omp parallel" not in source, package
    two = compile_model(str(compiled_sw).replace(".pt2", ".pt"), tmp_path / "two.pt2", threads=2)
    assert load_model(two).metadata.target["threads"] == 2
    assert "omp parallel" in kernel_source(two)
    with pytest.raises(ModelFileError, match="threads must be at least 1"):
        compile_model(compiled["float64"][0], tmp_path / "none.pt2", threads=0)
    # LAMMPS warns when a package runs with another thread count than its code's
    data = write_data(gallium_nitride((2, 2, 1)), tmp_path / "gan.data", ["Ga", "N"])
    base = ["units metal", f"read_data {data}"]
    for package, threads, warned in ((two, 1, True), (two, 2, False), (compiled_sw, 1, False)):
        output = run_lmp([*base, f"pair_style mlff {package} threads {threads}",
                          "pair_coeff * * Ga N"], nprocs=1, check=False,
                         cwd=tmp_path / f"{package.stem}_{threads}")
        assert "Loop time" in output, output[-2000:]
        said = f"was compiled for 2 thread(s) per process and runs with {threads}"
        assert (said in output) == warned, output[-2000:]


@pytest.mark.parametrize("nprocs", [1, 2])
def test_compiled_sw_equals_native_sw(compiled_sw, tmp_path, nprocs):
    """The compiled reference model in LAMMPS equals native pair_style sw in float64
    (energy, forces, pressure) and its TorchScript file (also per-atom energy and virial,
    which native sw splits among the three atoms of a triplet and the model gives to its
    centre), on 1 and 2 ranks in a hexagonal, so triclinic, box."""
    atoms = gallium_nitride((3, 3, 2))
    data = write_data(atoms, tmp_path / "gan.data", ["Ga", "N"])
    base = ["units metal", "atom_modify map yes", f"read_data {data}"]
    runs = {name: run_lmp([*base, *lines], nprocs=nprocs, cwd=tmp_path / name) for name, lines in
            (("native", sw_lines(potentials_dir() / "GaN.sw", ["Ga", "N"])),
             ("torchscript", mlff_lines(compiled_sw.with_suffix(".pt"), ["Ga", "N"])),
             ("compiled", mlff_lines(compiled_sw, ["Ga", "N"])))}
    got = runs["compiled"]
    error = abs(got.energy - runs["native"].energy) / len(atoms)
    assert error < 1e-12, f"energy differs from native sw by {error:.2e} eV/atom"
    for against, keys in (("native", ("forces", "pressure")),
                          ("torchscript", ("forces", "pressure", "atom_energy", "atom_virial"))):
        for key in keys:
            error = relative_error(getattr(got, key), getattr(runs[against], key))
            assert error < TOL["float64"], f"{key} against {against}: {error:.2e}"

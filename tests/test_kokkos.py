"""pair_style mlff/kk (Kokkos, host backends OpenMP/Serial) equals pair_style mlff.

Runs the Kokkos-enabled LAMMPS that `make kokkos` builds from Debian's sources
(build/lammps-kokkos, see kokkos/README.md) with the plugin compiled against it.
Both styles run in the same binary: `mlff` on the host arrays, `mlff/kk` with
positions, neighbour list, edges and forces in Kokkos views, edges built by
Kokkos kernels and read by the model in place. Skipped where that build is
absent (`make test` builds it; `make test-kokkos` runs only these tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.lammps import assert_a_rank_owns_no_atom, run_lmp
from helpers.structures import silicon
from mlff_tools.lammps import lammps_orientation, write_data

ROOT = Path(__file__).resolve().parent.parent
PREFIX = Path(os.environ.get("MLFF_LAMMPS_KOKKOS", ROOT / "build" / "lammps-kokkos"))
LMP = PREFIX / "bin" / "lmp"
PLUGIN_DIR = PREFIX / "plugin"

pytestmark = [
    pytest.mark.kokkos,
    pytest.mark.skipif(not (LMP.exists() and (PLUGIN_DIR / "mlffplugin.so").exists()),
                       reason=f"no Kokkos LAMMPS with the mlff plugin in {PREFIX}: `make kokkos`"),
]

TOL64 = 1e-10    # float64: eV/atom, eV/Å, relative pressure and per-atom virial
TOL32 = 1e-5     # float32 model: relative to the largest value
SW_ENERGY_TOL, SW_FORCE_TOL, SW_PRESSURE_RTOL = 1e-9, 1e-8, 1e-6    # as test_sw_reference
ETOTAL_WANDER = 1e-3    # eV/atom, range of the total energy in 0.5 ps NVE from 2000 K (SW: 3e-4)


def kokkos_args(threads=1):
    """Kokkos on the host with `threads` OpenMP threads; newton on and half lists (the
    setting mlff/kk needs, and the one a GPU run must ask for)."""
    return ["-k", "on", "t", str(threads), "-sf", "kk", "-pk", "kokkos", "newton", "on",
            "neigh", "half"]


def run(commands, tmp_path, name, *, nprocs=1, kokkos=True, threads=1, check=True, env=None):
    """Run ``commands`` in the Kokkos LAMMPS; kokkos=False runs the same binary without -k."""
    return run_lmp(commands, nprocs=nprocs, cwd=tmp_path / name, executable=LMP,
                   args=kokkos_args(threads) if kokkos else [], check=check,
                   env={"LAMMPS_PLUGIN_PATH": str(PLUGIN_DIR), "OMP_NUM_THREADS": str(threads),
                        "OMP_PROC_BIND": "false", **(env or {})})


def setup(data, *, before=(), after=()):
    return ["units metal", *before, f"read_data {data}", *after]


def assert_same(result, reference, natoms, label, tol=TOL64):
    """Energy per atom, forces, pressure tensor, per-atom energy and per-atom virial."""
    def relative(a, b):
        return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)

    errors = {
        "energy (eV/atom)": abs(result.energy - reference.energy) / natoms,
        "forces (relative)": relative(result.forces, reference.forces),
        "pressure (relative)": relative(result.pressure, reference.pressure),
        # eV, relative where atoms hold more than 1 eV (a float32 model's precision is relative)
        "per-atom energy (eV)": np.abs(result.atom_energy - reference.atom_energy).max()
        / max(np.abs(reference.atom_energy).max(), 1.0),
        "per-atom virial (relative)": relative(result.atom_virial, reference.atom_virial),
    }
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, f"{label}: " + ", ".join(f"{k} differ by {v:.2e}" for k, v in bad.items())


@pytest.mark.parametrize("nprocs", [1, 2])
@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_kokkos_equals_plain(models, tmp_path, triclinic, nprocs):
    """SW model, float64: mlff/kk == mlff in energy, forces, virial, per-atom energy and
    virial, on 1 and 2 ranks, orthogonal and triclinic boxes."""
    atoms = silicon((3, 3, 3), rattle=0.1, triclinic=triclinic)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    commands = setup(data) + [f"pair_style mlff {models['si64']}", "pair_coeff * * Si"]
    plain = run(commands, tmp_path, "plain", kokkos=False)
    kokkos = run(commands, tmp_path, "kokkos", nprocs=nprocs)
    assert "pair mlff/kk" in kokkos.output, "-sf kk did not turn mlff into mlff/kk"
    assert "graph built by Kokkos kernels" in kokkos.output
    assert_same(kokkos, plain, len(atoms), f"mlff/kk on {nprocs} rank(s) vs mlff")


def test_kokkos_threads_and_empty_ranks(models, tmp_path):
    """Two OpenMP threads (atomic force scatter), and four ranks of which two own no atom."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    atoms.set_cell(atoms.cell.array * [4, 1, 1], scale_atoms=False)
    data = write_data(atoms, tmp_path / "slab.data", ["Si"])
    pair = [f"pair_style mlff {models['si64']}", "pair_coeff * * Si"]
    plain = run(setup(data) + pair, tmp_path, "plain", kokkos=False)
    threads = run(setup(data) + pair, tmp_path, "threads", threads=2)
    assert_same(threads, plain, len(atoms), "mlff/kk with 2 threads vs mlff")
    empty = run(setup(data, before=["processors 4 1 1"]) + pair, tmp_path, "empty", nprocs=4)
    assert_a_rank_owns_no_atom(empty.output)
    assert_same(empty, plain, len(atoms), "mlff/kk on 4 ranks (two empty) vs mlff")


@pytest.mark.parametrize("nprocs", [1, 2])
def test_sw_model_equals_native_sw_kk(models, potentials, tmp_path, nprocs):
    """The SW reference model under mlff/kk equals LAMMPS's own sw/kk."""
    atoms = silicon((3, 3, 3), rattle=0.1, triclinic=True)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    mlff = run(setup(data) + [f"pair_style mlff {models['si64']}", "pair_coeff * * Si"],
               tmp_path, "mlff", nprocs=nprocs)
    native = run(setup(data) + ["pair_style sw", f"pair_coeff * * {potentials / 'Si.sw'} Si"],
                 tmp_path, "sw", nprocs=nprocs)
    assert "pair sw/kk" in native.output
    de = abs(mlff.energy - native.energy) / len(atoms)
    df = np.abs(mlff.forces - native.forces).max()
    dp = np.abs(mlff.pressure - native.pressure).max() / np.abs(native.pressure).max()
    assert de < SW_ENERGY_TOL, f"energy differs from sw/kk by {de:.2e} eV/atom"
    assert df < SW_FORCE_TOL, f"forces differ from sw/kk by {df:.2e} eV/Å"
    assert dp < SW_PRESSURE_RTOL, f"pressure differs from sw/kk by {dp:.2e} (relative)"


def test_compiled_package_equals_native_sw_kk(models, potentials, tmp_path):
    """mlff/kk runs a compiled model (.pt2, contract version 2) as it runs the .pt: the
    compiled SW reference model on 2 ranks equals native sw/kk."""
    from mlff_tools.model.compiled import compile_model

    package = compile_model(models["si64"], tmp_path / "si64.pt2")
    atoms = silicon((3, 3, 3), rattle=0.1, triclinic=True)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    mlff = run(setup(data) + [f"pair_style mlff {package}", "pair_coeff * * Si"],
               tmp_path, "mlff", nprocs=2)
    native = run(setup(data) + ["pair_style sw", f"pair_coeff * * {potentials / 'Si.sw'} Si"],
                 tmp_path, "sw", nprocs=2)
    assert "pair mlff/kk" in mlff.output and "graph built by Kokkos kernels" in mlff.output
    de = abs(mlff.energy - native.energy) / len(atoms)
    df = np.abs(mlff.forces - native.forces).max()
    dp = np.abs(mlff.pressure - native.pressure).max() / np.abs(native.pressure).max()
    assert de < SW_ENERGY_TOL, f"energy differs from sw/kk by {de:.2e} eV/atom"
    assert df < SW_FORCE_TOL, f"forces differ from sw/kk by {df:.2e} eV/Å"
    assert dp < SW_PRESSURE_RTOL, f"pressure differs from sw/kk by {dp:.2e} (relative)"


@pytest.mark.parametrize("dtype, tol", [("float64", TOL64), ("float32", TOL32)])
def test_student_two_species(tmp_path, dtype, tol):
    """A two-species student (random weights) run by libtorch (`evaluator torch`, the GPU's
    default path: the model reads Kokkos's edge views in place): mlff/kk == mlff on 2 ranks,
    triclinic SiC; a float32 student agrees to float32 precision."""
    from ase.build import bulk

    from helpers.models import saved_random_student

    model = saved_random_student(("Si", "C"), tmp_path / "student.pt", dtype=dtype)
    atoms = lammps_orientation(bulk("SiC", "zincblende", a=4.36).repeat((3, 3, 3)))
    atoms.rattle(0.1, seed=3)
    data = write_data(atoms, tmp_path / "sic.data", ["Si", "C"])
    commands = setup(data) + [f"pair_style mlff {model} evaluator torch", "pair_coeff * * Si C"]
    plain = run(commands, tmp_path, "plain", kokkos=False)
    kokkos = run(commands, tmp_path, "kokkos", nprocs=2)
    assert "computed by the native evaluator" not in kokkos.output
    assert_same(kokkos, plain, len(atoms), f"{dtype} student, mlff/kk vs mlff", tol)


def test_auto_takes_native_on_a_host_backend(models, tmp_path):
    """`evaluator auto` (the default) under mlff/kk on OpenMP runs a student's .pt natively,
    as plain mlff does on a CPU (measured faster there), with torch's numbers; the SW
    reference model, which is no student, still runs on libtorch."""
    from helpers.models import random_student_file

    model = random_student_file(tmp_path / "student.pt", ("Si",))
    data = write_data(silicon((2, 2, 2), rattle=0.1, seed=5), tmp_path / "si.data", ["Si"])
    auto = run(setup(data) + [f"pair_style mlff {model}", "pair_coeff * * Si"], tmp_path, "auto")
    assert "pair mlff/kk" in auto.output
    assert "computed by the native evaluator" in auto.output, auto.output[-2000:]
    torch_run = run(setup(data) + [f"pair_style mlff {model} evaluator torch",
                                   "pair_coeff * * Si"], tmp_path, "torch")
    assert "computed by the native evaluator" not in torch_run.output
    assert_same(auto, torch_run, 64, "mlff/kk auto (native) vs evaluator torch")
    sw = run(setup(data) + [f"pair_style mlff {models['si64']}", "pair_coeff * * Si"],
             tmp_path, "sw")
    assert "computed by the native evaluator" not in sw.output


@pytest.mark.parametrize("dtype, tol", [("float64", TOL64), ("float32", TOL32)])
def test_native_evaluator_equals_torch(tmp_path, dtype, tol):
    """`evaluator native` under mlff/kk (the student's own kernel, one thread per centre, on
    Kokkos's device) == mlff with torch: three species, l_max 3, the `accurate` sizes, on 1
    and 2 ranks, with two threads, and with the GPU's interleaved scratch
    (MLFF_NATIVE_INTERLEAVE=1); with each atom's grid in its team's scratch
    (MLFF_NATIVE_SHARED=1), two atoms per team of two threads and one per team of one; six
    species with shared radial banks, and 20 radial functions with l_max 3 (the device's
    edges: the basis one function at a time, the angular values in registers), each on one
    rank and in team scratch."""
    from helpers.models import random_student_file

    shared = {"MLFF_NATIVE_SHARED": "1", "MLFF_NATIVE_TEAM": "2"}
    runs = [dict(), dict(nprocs=2), dict(threads=2, env={"MLFF_NATIVE_INTERLEAVE": "1"}),
            dict(threads=2, env={**shared, "MLFF_NATIVE_INTERLEAVE": "1"}),
            dict(env={**shared, "MLFF_NATIVE_TEAM": "1"})]
    kinds = ((("Si", "C", "Ge"), "accurate", 3, 0, None, runs),
             (("Si", "C", "Ge", "Sn", "O", "N"), "fast", 2, 8, None, runs[:1] + runs[-1:]),
             (("Si", "C"), "fast", 3, 0, 20, runs[:1] + runs[-1:]))
    for species, preset, l_max, banks, n_radial, kind_runs in kinds:
        label = f"{len(species)}-species-{n_radial or 'preset'}-radial"
        model = random_student_file(tmp_path / f"{label}.pt", species, preset, l_max, banks,
                                    dtype=dtype, n_radial=n_radial)
        atoms = silicon((2, 2, 2), rattle=0.1, triclinic=True, seed=4)
        atoms.set_chemical_symbols([species[i % len(species)] for i in range(len(atoms))])
        data = write_data(atoms, tmp_path / "mixed.data", list(species))
        pair = [f"pair_style mlff {model} evaluator EVALUATOR", f"pair_coeff * * {' '.join(species)}"]
        plain = run(setup(data) + [p.replace("EVALUATOR", "torch") for p in pair], tmp_path,
                    f"{label}-torch", kokkos=False)
        native = setup(data) + [p.replace("EVALUATOR", "native") for p in pair]
        for options in kind_runs:
            result = run(native, tmp_path, f"{label}-native-{len(os.listdir(tmp_path))}",
                         **options)
            assert "pair mlff/kk" in result.output
            assert "computed by the native evaluator" in result.output
            assert_same(result, plain, len(atoms), f"{label} {dtype} native mlff/kk {options} "
                        "vs mlff torch", tol)


def test_native_evaluator_follows_a_new_pair_style(tmp_path):
    """A student, another model, then a third student under `evaluator native` in one input:
    the last step runs the third student's weights (each new pair_style uploads its own)."""
    from helpers.models import random_student_file

    first, third = (random_student_file(tmp_path / f"{name}.pt", ("Si",), seed=seed)
                    for name, seed in (("first", 1), ("third", 2)))
    second = random_student_file(tmp_path / "second.pt", ("Si",), seed=3)
    atoms = silicon((2, 2, 2), rattle=0.1, seed=4)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    switched = run(setup(data) + [f"pair_style mlff {first} evaluator native",
                                  "pair_coeff * * Si", "run 0",
                                  f"pair_style mlff {second} evaluator torch",
                                  "pair_coeff * * Si", "run 0",
                                  f"pair_style mlff {third} evaluator native",
                                  "pair_coeff * * Si"], tmp_path, "switched")
    alone = run(setup(data) + [f"pair_style mlff {third} evaluator torch", "pair_coeff * * Si"],
                tmp_path, "alone", kokkos=False)
    assert_same(switched, alone, len(atoms), "the third student after two pair_style changes")


def test_hybrid_overlay_null_type(models, tmp_path):
    """A type mapped to NULL is left out of the graph, as in mlff (hybrid/overlay with zbl)."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    text = data.read_text().replace("1 atom types", "2 atom types").replace(
        "Masses\n\n1 ", "Masses\n\n2 28.0855\n1 ")
    data.write_text(text)
    commands = ["units metal", "atom_modify map yes", f"read_data {data}",
                "set atom 1*10 type 2",
                f"pair_style hybrid/overlay mlff {models['si64']} zbl 1.0 2.0",
                "pair_coeff * * mlff Si NULL", "pair_coeff * * zbl 14 14"]
    plain = run(commands, tmp_path, "plain", kokkos=False)
    kokkos = run(commands, tmp_path, "kokkos")
    assert "pair_style mlff/kk: model" in kokkos.output, "hybrid did not take mlff/kk"
    assert_same(kokkos, plain, len(atoms), "hybrid/overlay mlff/kk + zbl/kk vs mlff + zbl")


def test_nve_follows_plain_style(models, tmp_path):
    """500 steps of NVE (1 fs, 64 atoms from 2000 K): mlff/kk conserves energy and follows
    mlff's trajectory (float64; the two sum forces in different orders)."""
    commands = ["units metal", "lattice diamond 5.431", "region box block 0 2 0 2 0 2",
                "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855",
                "velocity all create 2000 4928459 loop geom",
                f"pair_style mlff {models['si64']}", "pair_coeff * * Si",
                "timestep 0.001", "fix nve all nve", "thermo 50",
                "thermo_style custom step pe etotal press", "thermo_modify format float %.15g",
                "run 500"]

    def thermo(result):
        lines = result.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["Step"])
        rows = [line.split() for line in lines[start + 1:start + 12]]
        return np.array(rows, dtype=float)

    plain, kokkos = (thermo(run(commands, tmp_path, name, kokkos=kk))
                     for name, kk in (("plain", False), ("kokkos", True)))
    wander = np.ptp(kokkos[:, 2]) / 64
    assert wander < ETOTAL_WANDER, f"total energy wanders by {wander:.2e} eV/atom under mlff/kk"
    follow = np.abs(kokkos[:, 1:3] - plain[:, 1:3]).max() / 64
    assert follow < 1e-8, f"energies differ from mlff by up to {follow:.2e} eV/atom"


def test_profile_splits_each_step(models, tmp_path):
    """MLFF_PROFILE=1 makes mlff/kk log ms per call in edges, model and tally (one call per
    step and one at setup) with the edge count, and changes no result."""
    data = write_data(silicon((2, 2, 2), rattle=0.1), tmp_path / "si.data", ["Si"])
    commands = setup(data, after=[f"pair_style mlff {models['si64']}", "pair_coeff * * Si",
                                  "mass 1 28.0855", "fix nve all nve", "run 3"])
    plain = run(commands, tmp_path, "plain")
    profiled = run_lmp(commands, nprocs=1, cwd=tmp_path / "profiled", executable=LMP,
                       args=kokkos_args(), env={"LAMMPS_PLUGIN_PATH": str(PLUGIN_DIR),
                                                "OMP_NUM_THREADS": "1", "MLFF_PROFILE": "1"})
    lines = [line for line in profiled.output.splitlines()
             if line.startswith("mlff/kk profile")]
    assert len(lines) == 1, f"expected one profile line:\n{profiled.output[-1500:]}"
    # the phases that mlff/kk shares with mlff are reported once, as its own
    assert "mlff profile" not in profiled.output, profiled.output[-1500:]
    calls = int(lines[0].split("(")[1].split()[0])
    assert calls >= 4, f"{calls} calls profiled for 3 steps and their setup: {lines[0]}"
    split = lines[0].split("ms per call: ")[1]
    times = {phase: float(split.split(f"{phase} ")[1].split(",")[0])
             for phase in ("edges", "model", "tally")}
    assert all(t > 0 for t in times.values()), lines[0]
    assert "profile" not in plain.output
    assert profiled.energy == plain.energy
    assert np.array_equal(profiled.forces, plain.forces)


BOX = ["units metal", "lattice diamond 5.431", "region box block 0 2 0 2 0 2",
       "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855"]


def kokkos_error(commands, tmp_path, name, *, args=None):
    output = run(commands, tmp_path, name, check=False)
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert errors, f"expected a LAMMPS error:\n{output[-2000:]}"
    return "\n".join(errors)


def test_newton_off_says_how_to_run(models, tmp_path):
    """The Kokkos GPU default (newton off) is refused with the command-line fix."""
    error = kokkos_error(["units metal", "newton off", *BOX[1:],
                          f"pair_style mlff {models['si64']}", "pair_coeff * * Si", "run 0"],
                         tmp_path, "newton")
    assert "pair_style mlff/kk requires `newton pair on`" in error
    assert "-pk kokkos newton on neigh half" in error


def test_device_keyword_conflict(models, tmp_path):
    """`device cuda` on a host Kokkos style names the conflict."""
    error = kokkos_error(BOX + [f"pair_style mlff {models['si64']} device cuda"], tmp_path,
                         "device")
    assert "pair_style mlff/kk: `device cuda` conflicts with where Kokkos runs this style (cpu)" \
        in error


def test_unknown_element_and_overlap(models, tmp_path):
    """The errors of mlff: a species the model lacks, and atoms on top of each other."""
    error = kokkos_error(BOX + [f"pair_style mlff {models['si64']}", "pair_coeff * * Ge"],
                         tmp_path, "element")
    assert "has no species 'Ge' (atom type 1); it has: Si" in error
    error = kokkos_error(BOX + ["create_atoms 1 single 0 0 0 units box",
                                f"pair_style mlff {models['si64']}", "pair_coeff * * Si",
                                "run 0"], tmp_path, "overlap")
    assert "are on top of each other (distance 0 A) at step 0" in error
    assert "atoms 1 and 65" in error or "atoms 65 and 1" in error


def test_non_finite_output_names_step_and_atom(tmp_path):
    """NaN out of the model stops mlff/kk and names the step and the atom, as mlff does."""
    from mlff_tools.model import ModelMetadata
    from mlff_tools.model.contract import METADATA_FILE
    from helpers.models import NaNForAtomTwo

    path = tmp_path / "nan.pt"
    torch.jit.save(torch.jit.script(NaNForAtomTwo()), str(path), _extra_files={
        METADATA_FILE: ModelMetadata(species=("Si",), cutoff=3.0).to_json()})
    error = kokkos_error(BOX + ["atom_modify sort 0 0", f"pair_style mlff {path}",
                                "pair_coeff * * Si", "reset_timestep 42", "run 0"], tmp_path,
                         "nan")
    assert "the model returned a non-finite energy at step 42 for atom 3 (type 1)" in error


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc (CUDA compiler)")
def test_plugin_compiles_for_cuda(tmp_path):
    """Every plugin source, the Kokkos kernels of mlff/kk included, compiles with nvcc for a
    Hopper GPU (sm_90) against Kokkos configured for CUDA: GPU code is checked on a machine
    without a GPU (kokkos/check_cuda_compile.sh)."""
    proc = subprocess.run([str(ROOT / "kokkos" / "check_cuda_compile.sh"), str(PREFIX),
                           str(tmp_path / "cuda")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "all plugin sources compile for CUDA sm_90" in proc.stdout

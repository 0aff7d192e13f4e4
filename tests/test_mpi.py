"""1, 2 and 4 MPI ranks give the same energy, forces and pressure (float64).

Each rank builds edges from its owned atoms to its ghosts; forces on ghosts
travel back to their owners. Splitting the box must change nothing beyond
round-off, also when a rank owns no atom at all.
"""

import numpy as np
import pytest

from helpers.lammps import GRAPHS, assert_a_rank_owns_no_atom, run_lmp
from helpers.structures import silicon
from mlff_tools.lammps import lammps_orientation, write_data

pytestmark = pytest.mark.mpi
TOL = 1e-10   # eV/atom, eV/Å, relative pressure


def inputs(model, data, before=(), after=(), graph="host"):
    return ["units metal", *before, f"read_data {data}", *after,
            f"pair_style mlff {model} graph {graph}", "pair_coeff * * Si"]


def assert_same(result, reference, natoms, label):
    de = abs(result.energy - reference.energy) / natoms
    df = np.abs(result.forces - reference.forces).max()
    dp = np.abs(result.pressure - reference.pressure).max() / np.abs(reference.pressure).max()
    assert de < TOL, f"{label}: energy differs by {de:.2e} eV/atom"
    assert df < TOL, f"{label}: forces differ by {df:.2e} eV/Å"
    assert dp < TOL, f"{label}: pressure differs by {dp:.2e} (relative)"


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
@pytest.mark.parametrize("graph", GRAPHS)
def test_ranks_agree_on_bulk(models, tmp_path, triclinic, graph):
    """Periodic bulk Si: 1 == 2 == 4 ranks."""
    atoms = silicon((3, 3, 3), rattle=0.1, triclinic=triclinic)
    data = write_data(atoms, tmp_path / "bulk.data", ["Si"])
    results = {n: run_lmp(inputs(models["si64"], data, graph=graph), nprocs=n,
                          cwd=tmp_path / str(n))
               for n in (1, 2, 4)}
    for n in (2, 4):
        assert_same(results[n], results[1], len(atoms), f"{n} ranks vs 1")


@pytest.mark.parametrize("graph", GRAPHS)
def test_rank_without_atoms(models, tmp_path, graph):
    """A cluster in one corner of a large box: ranks that own nothing still take part."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    atoms.set_cell(atoms.cell.array * [4, 1, 1], scale_atoms=False)
    data = write_data(atoms, tmp_path / "slab.data", ["Si"])
    reference = run_lmp(inputs(models["si64"], data), nprocs=1, cwd=tmp_path / "1")
    result = run_lmp(inputs(models["si64"], data, before=["processors 4 1 1"], graph=graph),
                     nprocs=4, cwd=tmp_path / "4")
    assert_a_rank_owns_no_atom(result.output)
    assert_same(result, reference, len(atoms), "4 ranks (two empty) vs 1")


def test_short_comm_cutoff_is_raised(models, tmp_path):
    """`comm_modify cutoff` below the model cutoff: LAMMPS widens the ghost shell, results hold."""
    atoms = silicon((3, 3, 3), rattle=0.1)
    data = write_data(atoms, tmp_path / "bulk.data", ["Si"])
    reference = run_lmp(inputs(models["si64"], data), nprocs=1, cwd=tmp_path / "1")
    result = run_lmp(inputs(models["si64"], data, after=["comm_modify cutoff 1.0"]), nprocs=2,
                     cwd=tmp_path / "2")
    assert_same(result, reference, len(atoms), "comm_modify cutoff 1.0 on 2 ranks")


@pytest.mark.parametrize("graph", GRAPHS)
def test_ranks_agree_with_student(tmp_path, graph):
    """A two-species student (float64, random weights): 1 == 2 == 4 ranks, triclinic SiC."""
    from ase.build import bulk

    from helpers.models import saved_random_student

    model = saved_random_student(("Si", "C"), tmp_path / "student.pt")
    atoms = lammps_orientation(bulk("SiC", "zincblende", a=4.36).repeat((4, 4, 4)))
    atoms.rattle(0.1, seed=3)
    data = write_data(atoms, tmp_path / "sic.data", ["Si", "C"])
    commands = ["units metal", f"read_data {data}", f"pair_style mlff {model} graph {graph}",
                "pair_coeff * * Si C"]
    results = {n: run_lmp(commands, nprocs=n, cwd=tmp_path / str(n)) for n in (1, 2, 4)}
    for n in (2, 4):
        assert_same(results[n], results[1], len(atoms), f"student, {n} ranks vs 1")


def test_unoptimised_graph_executor_changes_nothing(models, tmp_path):
    """MLFF_JIT_OPTIMIZE=0 (TorchScript without profiling and fusion, the GPU checks' switch)
    gives the same energy, forces and pressure, on 2 ranks with the graph on the device."""
    atoms = silicon((3, 3, 3), rattle=0.1)
    data = write_data(atoms, tmp_path / "bulk.data", ["Si"])
    commands = inputs(models["si64"], data, graph="device")
    reference = run_lmp(commands, nprocs=2, cwd=tmp_path / "default")
    plain = run_lmp(commands, nprocs=2, cwd=tmp_path / "plain", env={"MLFF_JIT_OPTIMIZE": "0"})
    assert_same(plain, reference, len(atoms), "MLFF_JIT_OPTIMIZE=0")

"""Physics of the student model: invariances, forces = -grad E, smooth and strictly local,
and an exported file that computes exactly what the in-memory model does."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk
from scipy.spatial.transform import Rotation

from helpers.models import CUTOFF, random_student
from mlff_tools.calculator import MLFFCalculator
from mlff_tools.model import EdgeGradient, ModelMetadata, load_model, save_model
from mlff_tools.model.graph import atoms_graph
from mlff_tools.model.student import PRESETS, StudentEnergy

EXACT = 1e-10        # float64 round-off
FD_STEP = 1e-5       # Å
FD_TOL = 1e-6        # eV/Å


@pytest.fixture(scope="module", params=[(2, 0), (3, 0), (2, 3)],
                ids=["l_max2", "l_max3", "banks3"])
def student_file(tmp_path_factory, request):
    path = tmp_path_factory.mktemp("student") / "student.pt"
    l_max, banks = request.param
    save_model(random_student(("Si", "C"), l_max=l_max, radial_banks=banks),
               ModelMetadata(species=("Si", "C"), cutoff=CUTOFF, dtype="float64"), path)
    return path


def sic(seed=0):
    atoms = bulk("SiC", "zincblende", a=4.36, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.1, seed=seed)
    return atoms


def energy_forces(path, atoms):
    atoms = atoms.copy()
    atoms.calc = MLFFCalculator(path)
    return atoms.get_potential_energy(), atoms.get_forces()


def test_rotation_and_reflection(student_file):
    """Energy is invariant and forces rotate with the structure (any orthogonal map)."""
    atoms = sic()
    e0, f0 = energy_forces(student_file, atoms)
    for matrix in (Rotation.random(random_state=5).as_matrix(), -np.eye(3)):
        turned = atoms.copy()
        turned.set_cell(atoms.cell.array @ matrix.T, scale_atoms=False)
        turned.positions = atoms.positions @ matrix.T
        e1, f1 = energy_forces(student_file, turned)
        assert abs(e1 - e0) < EXACT * len(atoms), f"energy changed by {e1 - e0:.2e} eV"
        assert np.abs(f1 - f0 @ matrix.T).max() < EXACT * 10


def test_translation_and_permutation(student_file):
    atoms = sic()
    e0, f0 = energy_forces(student_file, atoms)
    moved = atoms.copy()
    moved.translate([0.3, -1.7, 2.2])
    e1, f1 = energy_forces(student_file, moved)
    assert abs(e1 - e0) < EXACT * len(atoms) and np.abs(f1 - f0).max() < EXACT
    order = np.random.default_rng(1).permutation(len(atoms))
    e2, f2 = energy_forces(student_file, atoms[order])
    assert abs(e2 - e0) < EXACT * len(atoms) and np.abs(f2 - f0[order]).max() < EXACT


def test_forces_are_minus_energy_gradient(student_file):
    atoms = sic(seed=2)
    _, forces = energy_forces(student_file, atoms)
    for atom, axis in ((0, 0), (5, 1), (17, 2), (40, 0)):
        energies = []
        for sign in (1, -1):
            displaced = atoms.copy()
            displaced.positions[atom, axis] += sign * FD_STEP
            energies.append(energy_forces(student_file, displaced)[0])
        fd = -(energies[0] - energies[1]) / (2 * FD_STEP)
        assert abs(fd - forces[atom, axis]) < FD_TOL, \
            f"atom {atom} axis {axis}: force {forces[atom, axis]:.9f}, -dE/dx {fd:.9f}"


def dimer(path, distance):
    """Energy and force on atom 0 of an isolated Si-C dimer."""
    from ase import Atoms

    return energy_forces(path, Atoms("SiC", positions=[[0, 0, 0], [distance, 0, 0]]))


def test_zero_force_at_and_beyond_cutoff(student_file):
    """At and beyond the cutoff, a neighbour changes nothing: same energy, zero force."""
    e_far, f_far = dimer(student_file, CUTOFF + 2.0)
    assert np.abs(f_far).max() == 0.0
    for distance in (CUTOFF, CUTOFF + 1e-9, CUTOFF + 0.5):
        energy, forces = dimer(student_file, distance)
        assert energy == e_far and np.abs(forces).max() == 0.0, f"r = {distance}"


def test_smooth_to_zero_at_cutoff(student_file):
    """C2 envelope: near the cutoff the force vanishes like (rc - r)^2, the energy like (rc - r)^3."""
    e_far, _ = dimer(student_file, CUTOFF + 1.0)
    e1, f1 = dimer(student_file, CUTOFF - 1e-2)
    e2, f2 = dimer(student_file, CUTOFF - 1e-3)
    force_ratio = abs(f2[0, 0]) / abs(f1[0, 0])
    energy_ratio = abs(e2 - e_far) / abs(e1 - e_far)
    assert force_ratio < 0.02, f"force fell only by {force_ratio:.3g} for 10x closer (want ~0.01)"
    assert energy_ratio < 0.002, f"energy fell only by {energy_ratio:.3g} (want ~0.001)"


@pytest.mark.parametrize("preset,l_max,banks",
                         [(p, None, 0) for p in PRESETS] + [("fast", 3, 0), ("accurate", None, 4)])
def test_export_parity(tmp_path, preset, l_max, banks):
    """The exported TorchScript file gives the in-memory model's energies and forces (float64)."""
    module = random_student(("Si", "C"), preset, l_max=l_max, radial_banks=banks)
    path = save_model(module, ModelMetadata(species=("Si", "C"), cutoff=CUTOFF,
                                            dtype="float64"), tmp_path / "m.pt")
    species, edge_index, edge_vec = (torch.from_numpy(x) for x in
                                     atoms_graph(sic(), ("Si", "C"), CUTOFF))
    e_mem, g_mem = module(species, edge_index, edge_vec)
    e_file, g_file = load_model(path).module(species, edge_index, edge_vec)
    assert (e_mem - e_file).abs().max() < EXACT and (g_mem - g_file).abs().max() < EXACT


def test_unsorted_edges_and_ghost_atoms(student_file):
    """Edges in any order, and trailing atoms without edges (as LAMMPS ghosts), change nothing."""
    module = load_model(student_file).module
    species, edge_index, edge_vec = (torch.from_numpy(x) for x in
                                     atoms_graph(sic(), ("Si", "C"), CUTOFF))
    e0, g0 = module(species, edge_index, edge_vec)
    order = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    e1, g1 = module(species, edge_index[:, order], edge_vec[order])
    assert (e1 - e0).abs().max() < EXACT and (g1 - g0[order]).abs().max() < EXACT
    ghosts = torch.cat([species, torch.tensor([0, 1, 1])])
    e2, g2 = module(ghosts, edge_index, edge_vec)
    assert (e2[:len(species)] - e0).abs().max() < EXACT and (g2 - g0).abs().max() < EXACT
    isolated, _ = module(torch.tensor([0, 1]), torch.zeros((2, 0), dtype=torch.int64),
                         torch.zeros((0, 3), dtype=torch.float64))
    assert torch.allclose(e2[-3:], isolated[[0, 1, 1]], rtol=0, atol=EXACT)


def test_a_model_file_sorts_only_edges_not_grouped_by_centre(student_file):
    """Edges in ascending centre order (as LAMMPS and the calculator give them) go through a
    model file without a sort; shuffled ones are sorted, to the same result."""
    from torch.profiler import profile

    module = load_model(student_file).module
    species, edge_index, edge_vec = (torch.from_numpy(x) for x in
                                     atoms_graph(sic(), ("Si", "C"), CUTOFF))
    assert bool((edge_index[0, 1:] >= edge_index[0, :-1]).all()), "atoms_graph's own order"
    order = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(2))
    sorts = {}
    for name, graph in (("grouped", (species, edge_index, edge_vec)),
                        ("shuffled", (species, edge_index[:, order], edge_vec[order]))):
        with profile() as prof:
            module(*graph)
        sorts[name] = sum(event.count for event in prof.key_averages() if event.key == "aten::sort")
    assert sorts == {"grouped": 0, "shuffled": 1}, sorts


def test_l3_invariant_is_legendre_p3():
    """The stored l = 3 components contract to the full traceless tensor product, which for
    unit vectors is (2/5) P_3(cos theta) = cos^3 - 3 cos / 5."""
    from mlff_tools.model.student import rank3_projection

    generator = torch.Generator().manual_seed(0)
    u, v = (torch.nn.functional.normalize(torch.randn(50, 3, generator=generator,
                                                     dtype=torch.float64), dim=1)
            for _ in range(2))

    def components(w):
        cube = w[:, :, None, None] * w[:, None, :, None] * w[:, None, None, :]
        return cube.reshape(-1, 27) @ rank3_projection()

    c = (u * v).sum(1)
    err = ((components(u) * components(v)).sum(1) - (c ** 3 - 0.6 * c)).abs().max().item()
    assert err < EXACT, f"l = 3 contraction off P_3 by {err:.2g}"


def test_only_l3_sees_the_tetrahedron():
    """Four neighbours at the tetrahedral angles form a spherical 2-design: the l = 1 and
    l = 2 densities vanish, so without l = 3 the student sees only how many neighbours there
    are and how far; the l = 3 invariant (A3_c : A3_c) is what sees the tetrahedral order."""
    import math

    tetra = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]],
                         dtype=torch.float64) / math.sqrt(3)
    energy = StudentEnergy(("Si",), CUTOFF, dtype=torch.float64, l_max=3)
    edge_index = torch.stack([torch.zeros(4, dtype=torch.long), torch.arange(1, 5)])
    b = energy.descriptors(torch.zeros(5, dtype=torch.long), edge_index, 2.35 * tetra)[0]
    k = energy.n_channels
    pairs = k * (k + 1) // 2
    b1, b2, b3 = (b[k + l * pairs:k + (l + 1) * pairs] for l in (1, 2, 3))
    assert b1.abs().max() < EXACT and b2.abs().max() < EXACT, "l = 1, 2 should vanish"
    diagonal = torch.triu_indices(k, k)[0] == torch.triu_indices(k, k)[1]
    assert (b3[diagonal] > 1e-6).all(), f"l = 3 invariants {b3[diagonal]}"


def test_banks_contain_the_per_pair_weights(tmp_path):
    """M = n_species^2 banks with one-hot pair weights are the per-pair student exactly: the
    banked form is a factorisation of the per-pair radial weights, not another model."""
    per_pair = random_student(("Si", "C"), seed=5).energy
    banked = random_student(("Si", "C"), seed=5, radial_banks=4).energy
    pairs = 4
    with torch.no_grad():
        for name, value in per_pair.state_dict().items():
            if name != "radial_weight":
                banked.state_dict()[name].copy_(value)
        banked.radial_weight.copy_(per_pair.radial_weight)
        banked.pair_embedding.copy_(torch.eye(pairs, dtype=torch.float64))
    graph = [torch.from_numpy(x) for x in atoms_graph(sic(), ("Si", "C"), CUTOFF)]
    expected, got = per_pair(*graph), banked(*graph)
    assert (got - expected).abs().max() < EXACT, \
        f"banked energies differ by {(got - expected).abs().max():.2e} eV"
    # a per-pair file holds what files written before the banks held, no new entry
    path = save_model(EdgeGradient(per_pair), ModelMetadata(species=("Si", "C"), cutoff=CUTOFF,
                                                            dtype="float64"), tmp_path / "m.pt")
    saved = set(load_model(path).module.state_dict())
    assert not any("pair_embedding" in name for name in saved), sorted(saved)


def reference_descriptors(energy: StudentEnergy, species, edge_index, edge_vec):
    """The descriptors as the module docstring defines them, atom by atom with full 3x3
    (and 3x3x3) tensors: an independent check of the grids, strides and stored components
    that the fast path uses."""
    k, l_max, rc = energy.n_channels, energy.l_max, energy.cutoff
    weight = energy.radial_weight.detach()
    n_radial, n_species = energy.n_radial, energy.n_species
    blocks = weight.shape[0] // n_radial
    eye = torch.eye(3, dtype=torch.float64)
    n_active = int(edge_index[0].max()) + 1
    rows, cols = torch.triu_indices(k, k)
    result = []
    for i in range(n_active):
        a = [torch.zeros((k,) + (3,) * l, dtype=torch.float64) for l in range(l_max + 1)]
        for e in torch.nonzero(edge_index[0] == i).flatten():
            vec = edge_vec[e]
            r = torch.linalg.vector_norm(vec)
            u = vec / r
            x = r / rc
            n = torch.arange(1, n_radial + 1, dtype=torch.float64)
            basis = (math.sqrt(2 / rc) * torch.sin(n * math.pi * r / rc) / r
                     * (1 - 10 * x ** 3 + 15 * x ** 4 - 6 * x ** 5))
            pair = int(species[i]) * n_species + int(species[edge_index[1, e]])
            mixing = (energy.pair_embedding.detach()[pair] if energy.radial_banks
                      else torch.nn.functional.one_hot(torch.tensor(pair), blocks).double())
            radial = torch.einsum("n,m,nmc->c", basis, mixing,
                                  weight.reshape(n_radial, blocks, -1)).reshape(l_max + 1, k)
            uu = torch.outer(u, u)
            tensors = [torch.ones(()), u, uu - eye / 3]
            if l_max >= 3:
                sym = (u[:, None, None] * eye[None] + u[None, :, None] * eye[:, None, :]
                       + u[None, None, :] * eye[:, :, None])
                tensors.append(uu[:, :, None] * u[None, None, :] - sym / 5)
            for l in range(l_max + 1):
                a[l] += radial[l].reshape((k,) + (1,) * l) * tensors[l]
        a = [x * energy.inv_avg_neighbours for x in a]
        row = [a[0], a[0][rows] * a[0][cols]]
        row += [(a[l][rows] * a[l][cols]).reshape(len(rows), -1).sum(1)
                for l in range(1, l_max + 1)]
        result.append(torch.cat(row))
    return torch.stack(result)


@pytest.mark.parametrize("l_max,banks", [(2, 0), (3, 0), (2, 3)])
def test_descriptors_equal_their_definition(l_max, banks):
    """The fast path's descriptors (edges sorted into padded grids, one matrix product for
    every l, the symmetric tensors by their independent components) equal the docstring's
    sums over neighbours with full tensors, atom by atom, in float64."""
    energy = random_student(("Si", "C"), l_max=l_max, radial_banks=banks).energy
    species, edge_index, edge_vec = (torch.from_numpy(x) for x in
                                     atoms_graph(sic(seed=5), ("Si", "C"), CUTOFF))
    with torch.no_grad():
        fast = energy.descriptors(species, edge_index, edge_vec)
    expected = reference_descriptors(energy, species, edge_index, edge_vec)
    err = (fast - expected).abs().max().item()
    assert err < EXACT * expected.abs().max().item(), f"descriptors off by {err:.2g}"

"""The student: a strictly local, single-layer density-expansion potential.

Why this architecture. A student must be cheap per atom-step in LAMMPS on one
CPU core and still many-body. Message-passing models (NequIP, MACE with two
layers) multiply the receptive field and need ghost-of-ghost communication;
DeepPot-SE's embedding matrix product costs O(neighbours x M1 x M2) per atom.
A single ACE/MTP-style density expansion is the cheapest many-body form we
measured: every edge is touched once, by a few dozen flops, and the per-atom
work is a small MLP.

For each edge i -> j (r = |r_ij| < cutoff, unit vector u):

    b_n(r)      = sqrt(2/rc) sin(n pi r / rc) / r * f_env(r / rc)          n = 1..n_radial
    R_{l,c}(r)  = sum_n W[z_i z_j]_{n, l c} b_n(r)                          l = 0, 1, 2
    A0_{i,c}    = sum_j R_{0,c}                                              (2-body)
    A1_{i,c,a}  = sum_j R_{1,c} u_a
    A2_{i,c,ab} = sum_j R_{2,c} (u_a u_b - delta_ab / 3)
    A3_{i,c,abc} = sum_j R_{3,c} (u_a u_b u_c - (u_a delta_bc + u_b delta_ac + u_c delta_ab) / 5)
    B = [A0, A0_c A0_d, A1_c . A1_d, A2_c : A2_d, A3_c : A3_d]  (c <= d)     (3-body invariants)
    E_i = E0[z_i] + scale * MLP([B, onehot(z_i)])

Species. The radial weights W[z_i z_j] are one block per species pair (radial_banks = 0).
With radial_banks = M > 0 they are factored through M shared radial banks,
W[z_i z_j]_{n, lc} = sum_m P[z_i z_j, m] W_m[n, lc], with learned pair weights P: fewer
parameters, the same cost. train picks per-pair weights for up to PER_PAIR_UP_TO species.

R is linear in the basis, so the densities are computed as ACE computes them: the radial
weights act once per atom, those of its own species pairs, on the sums
B_{i,z,n,lm} = sum over neighbours j of species z of b_n(r) Y_lm(u), A_l = sum_z W[z_i z]_l^T
B_{i,z,l}. The edges carry only b_n and Y_lm, and each atom's sums are kept per neighbour
species (the edges go to groups (i, z_j)): per edge n_radial x 8 products for l = 1, 2 whatever
the species count, where radial functions per edge would take a radial matrix product
(n_species^2 n_radial wide, with one-hot pairs) and an (l_max k) x 8 one.

f_env(x) = 1 - 10x^3 + 15x^4 - 6x^5 is C2 at the cutoff (value, slope and
curvature vanish), so energy and forces go continuously to zero there and NVE
conserves energy. The invariants are exact 3-body terms: an SW-like angular
term sum_jk g(r_j) g(r_k) P_l(cos theta_jk) is the l-th contraction, so the
MLP only has to learn radial shapes and a readout. ``l_max`` 3 adds the l = 3
channel, which tells a tetrahedral neighbourhood from others (P_3 of the
tetrahedral angle is far from zero): it matters for covalent liquids.

The symmetric tensors are stored by their independent components, scaled by
the square root of their multiplicity (u_x u_y counts twice in A2 : A2), so a
plain dot product of the stored vectors is the full tensor contraction.

Example::

    energy = StudentEnergy(("Si",), cutoff=5.0, **PRESETS["fast"])
    module = EdgeGradient(energy)        # a contract module for save_model()
"""

from __future__ import annotations

import itertools
import math
from typing import Dict, List, Tuple

import torch

from ..errors import ConfigError

# learning rates that train each preset stably (mlff_tools.train uses them unless told otherwise)
PRESET_LR: Dict[str, float] = {"fast": 5e-3, "accurate": 1.5e-3}

PRESETS: Dict[str, Dict[str, int]] = {
    # smallest cost per atom-step at acceptable accuracy: the production default
    "fast": {"n_radial": 6, "n_channels": 6, "hidden": 32, "n_hidden_layers": 2, "l_max": 2},
    "accurate": {"n_radial": 10, "n_channels": 16, "hidden": 96, "n_hidden_layers": 2,
                 "l_max": 2},
}

# the species treatment (see StudentEnergy): radial weights per species pair up to this many
# species, shared radial banks mixed per pair beyond it. Per pair was the more accurate up to
# 5, the most measured (benchmarks/species_accuracy.py), and since the weights act per atom it
# costs what 8 banks cost there; beyond, banks keep the parameters (n_species^2 blocks) in hand
PER_PAIR_UP_TO = 5
DEFAULT_BANKS = 8


def default_radial_banks(n_species: int) -> int:
    """0 (one radial weight block per species pair) for few species, else DEFAULT_BANKS."""
    return 0 if n_species <= PER_PAIR_UP_TO else DEFAULT_BANKS


def envelope(x: torch.Tensor) -> torch.Tensor:
    """C2 polynomial cutoff: 1 at x=0, and value, slope, curvature 0 at x>=1."""
    x = torch.clamp(x, max=1.0)
    x3 = x * x * x
    return 1.0 - x3 * (10.0 - x * (15.0 - 6.0 * x))


def rank3_projection(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """[27, 10]: takes u (x) u (x) u (flattened) of a unit vector u to the independent
    components of its symmetric traceless part, each times the square root of its
    multiplicity. Uses |u| = 1 to write the trace terms u_a delta_bc as sum_d u_a u_d u_d
    delta_bc, so that the whole map is one constant matrix."""
    traceless = torch.zeros(3, 3, 3, 3, 3, 3, dtype=torch.float64)   # [p, q, r, a, b, c]
    for p, q, r, a, b, c in itertools.product(range(3), repeat=6):
        value = float((p, q, r) == (a, b, c))
        if q == r:          # sum_d X_pdd is t_p, the trace that u_p delta_bc stands for
            value -= 0.2 * ((p == a) * (b == c) + (p == b) * (a == c) + (p == c) * (a == b))
        traceless[p, q, r, a, b, c] = value
    traceless = traceless.reshape(27, 3, 3, 3)
    columns = []
    for a, b, c in ((0, 0, 0), (1, 1, 1), (2, 2, 2), (0, 0, 1), (0, 0, 2), (1, 1, 0),
                    (1, 1, 2), (2, 2, 0), (2, 2, 1), (0, 1, 2)):
        multiplicity = len({(a, b, c), (a, c, b), (b, a, c), (b, c, a), (c, a, b), (c, b, a)})
        columns.append(traceless[:, a, b, c] * math.sqrt(multiplicity))
    return torch.stack(columns, dim=1).to(dtype)


class StudentEnergy(torch.nn.Module):
    """Per-atom energies [N] (eV) from a graph; see the module docstring."""

    def __init__(self, species: Tuple[str, ...], cutoff: float, *, n_radial: int = 6,
                 n_channels: int = 6, hidden: int = 32, n_hidden_layers: int = 2,
                 l_max: int = 2, radial_banks: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        if l_max not in (2, 3):
            raise ConfigError(f"l_max must be 2 or 3, got {l_max}")
        if radial_banks < 0:
            raise ConfigError(f"radial_banks must be 0 (one radial weight block per species "
                              f"pair) or positive, got {radial_banks}")
        self.l_max = l_max
        self.radial_banks = radial_banks
        self.species = list(species)
        self.n_species = len(species)
        self.cutoff = float(cutoff)
        self.n_radial = n_radial
        self.n_channels = n_channels
        n_pairs = self.n_species ** 2
        k = n_channels
        generator = torch.Generator().manual_seed(0)

        # per pair: one [n_radial, (l_max + 1) k] block per species pair; banks: M blocks, each
        # pair's weights its M learned mix of them (formed per call; then the same code)
        blocks = radial_banks if radial_banks > 0 else n_pairs
        self.radial_weight = torch.nn.Parameter(
            torch.randn(n_radial * blocks, (l_max + 1) * k, generator=generator, dtype=dtype)
            / math.sqrt(n_radial))
        if radial_banks > 0:
            self.pair_embedding = torch.nn.Parameter(
                torch.randn(n_pairs, radial_banks, generator=generator, dtype=dtype)
                / math.sqrt(radial_banks))
        rows, cols = torch.triu_indices(k, k)
        # the channel pairs c <= d as flat indices into the k^2 products: read by nothing now,
        # kept because every model file holds it in its state
        self.register_buffer("triu", rows * k + cols)
        # the same pairs as row and column (constants, not in the state: files written
        # before they existed load into a new student unchanged)
        self.register_buffer("triu_rows", rows, persistent=False)
        self.register_buffer("triu_cols", cols, persistent=False)
        # and as a 0/1 matrix that picks them from all k^2 products (compiled form)
        self.register_buffer("triu_select", torch.nn.functional.one_hot(
            self.triu, k * k).t().to(dtype), persistent=False)
        self.register_buffer("frequencies",
                             torch.arange(1, n_radial + 1, dtype=dtype) * math.pi / self.cutoff)
        n_descriptors = k + (l_max + 1) * (k * (k + 1) // 2)
        self.register_buffer("rank3", rank3_projection(dtype) if l_max >= 3
                             else torch.zeros(0, 0, dtype=dtype), persistent=False)
        layers: List[torch.nn.Module] = []
        width = n_descriptors + self.n_species
        for _ in range(n_hidden_layers):
            layers += [torch.nn.Linear(width, hidden, dtype=dtype), torch.nn.SiLU()]
            width = hidden
        layers.append(torch.nn.Linear(width, 1, dtype=dtype))
        self.readout = torch.nn.Sequential(*layers)

        # fitted from the training data before training (see mlff_tools.train)
        self.register_buffer("reference_energy", torch.zeros(self.n_species, dtype=dtype))
        self.register_buffer("energy_scale", torch.ones((), dtype=dtype))
        self.register_buffer("inv_avg_neighbours", torch.ones((), dtype=dtype))
        self.register_buffer("feature_mean", torch.zeros(n_descriptors, dtype=dtype))
        self.register_buffer("feature_inv_std", torch.ones(n_descriptors, dtype=dtype))
        # True while traced for a compiled package (mlff_tools.model.compiled): no branch on
        # the data (edges are not sorted), and straight-line forms that Inductor fuses
        self.export_form = False

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor,
                edge_vec: torch.Tensor) -> torch.Tensor:
        dtype = edge_vec.dtype
        descriptors = self.descriptors(species, edge_index, edge_vec)
        n_active = descriptors.shape[0]
        species_onehot = torch.nn.functional.one_hot(species, self.n_species).to(dtype)
        features = torch.cat([(descriptors - self.feature_mean) * self.feature_inv_std,
                              species_onehot[:n_active]], dim=1)
        active_energy = self.readout(features).squeeze(1)

        # the rest have all-zero densities: the readout of that, one value per species
        zero = ((torch.zeros_like(self.feature_mean) - self.feature_mean)
                * self.feature_inv_std).expand(self.n_species, -1)
        eye = torch.eye(self.n_species, dtype=dtype, device=edge_vec.device)
        idle = self.readout(torch.cat([zero, eye], dim=1)).squeeze(1)
        learned = torch.cat([active_energy, idle[species[n_active:]]])
        return self.reference_energy[species] + self.energy_scale * learned

    def descriptors(self, species: torch.Tensor, edge_index: torch.Tensor,
                    edge_vec: torch.Tensor) -> torch.Tensor:
        """Invariant descriptors [n_active, n_descriptors] of the atoms up to the last centre."""
        dtype = edge_vec.dtype
        centre = edge_index[0]
        k = self.n_channels

        # atoms that are nobody's centre (LAMMPS ghosts, isolated atoms) have all-zero
        # densities: only atoms up to the last centre go through the full computation.
        # Written so that torch.export can trace it with symbolic sizes (mlff-tools compile):
        # the data-dependent sizes stay symbolic (.item() and torch._check when exporting),
        # the edges are sorted by centre every call, and counted with index_add.
        last = torch.cat([centre, centre.new_full((1,), -1)]).max()
        if torch.jit.is_scripting():
            n_active = int(last) + 1
        else:
            n_active = last.item() + 1
            torch._check(n_active >= 0)
            torch._check(n_active <= species.shape[0])
        # LAMMPS (mlff, mlff/kk) and the calculator give the edges grouped by centre in
        # ascending order: only edges that are not get sorted (a sort and its gathers, forward
        # and backward, cost 10-20% of the model). Traced for a package, which cannot branch on
        # the data, nothing is sorted: its callers group the edges, and it checks (below)
        if not self.export_form and bool((centre[1:] < centre[:-1]).any()):
            order = torch.sort(centre, stable=True)[1]
            edge_index = edge_index[:, order]
            edge_vec = edge_vec[order]
            centre = edge_index[0]

        r = torch.linalg.vector_norm(edge_vec, dim=1)
        # compiled: the basis edge-last, [n, E], so that Inductor's CPU code runs its kernel
        # and its gradient's along the edges in whole vectors; in rows of n_radial values per
        # edge it took a partial, masked vector per edge (compiled `fast`: 13-19% less time
        # per call at 4096 atoms, old and new packages timed in turns)
        edge_last = self.export_form
        scale = envelope(r / self.cutoff) * math.sqrt(2.0 / self.cutoff) / r
        if edge_last:
            basis = torch.sin(self.frequencies.unsqueeze(1) * r) * scale          # [n, E]
        else:
            basis = torch.sin(self.frequencies * r.unsqueeze(1)) * scale.unsqueeze(1)  # [E, n]
        # The radial functions are linear in the basis, so the densities are too (ACE's atomic
        # base): with B[i, z, n, lm] = sum over neighbours j of species z of b_n(r_ij) Y_lm(u_ij),
        # A_l[i, c, m] = sum_{z, n} W[z_i z]_{n, lc} B[i, z, n, lm]. Edges carry only the basis
        # and the angular parts, n_radial x 8 products each for l = 1, 2 whatever the species;
        # each atom's sums are kept per neighbour species (the edges' groups, below) and the
        # weights act once per atom. The same numbers as radial functions per edge (a radial
        # matrix product and an l_max k x 8 one per edge).
        n_species, n_radial = self.n_species, self.n_radial
        n_basis = n_species * n_radial
        width = self.radial_weight.shape[1]                          # (l_max + 1) k
        # each species pair's weights [pair, n, (l_max + 1) k], pair = z_i n_species + z_j:
        # its own block, or (radial_banks > 0) its learned mix of the shared banks. hasattr is
        # decided when scripting, so a per-pair student (and its file) has no pair_embedding at
        # all and reads as files written before banks existed
        if hasattr(self, "pair_embedding"):
            banks = self.radial_weight.reshape(n_radial, self.radial_banks, width)
            pair_weights = (self.pair_embedding @ banks.transpose(0, 1).reshape(
                self.radial_banks, n_radial * width)).reshape(-1, n_radial, width)
        else:
            pair_weights = self.radial_weight.reshape(
                n_radial, n_species * n_species, width).transpose(0, 1)
        # [z_j n_radial + n, z_i, (l_max + 1) k]: every centre species' weights side by side
        weights = pair_weights.reshape(n_species, n_basis, width).transpose(0, 1)
        edge_basis = basis.t() if edge_last else basis               # [E, n_radial]
        unit = edge_vec / r.unsqueeze(1)
        x, y, z = unit[:, 0], unit[:, 1], unit[:, 2]
        xx, yy, zz = x * x, y * y, z * z
        # u u - 1/3 by its five independent components, an isometry of the symmetric traceless
        # matrices: dot products are the full contractions, as with all nine
        sqrt2 = math.sqrt(2.0)
        y2 = torch.stack([sqrt2 * x * y, sqrt2 * x * z, sqrt2 * y * z, (xx - yy) / sqrt2,
                          (2.0 * zz - xx - yy) / math.sqrt(6.0)], dim=1)
        angular = [unit, y2]                                         # per l: [E, 3], [E, 5]
        if self.l_max >= 3:
            cube = (unit.unsqueeze(2) * unit.unsqueeze(1)).reshape(-1, 9, 1) * unit.unsqueeze(1)
            angular.append(cube.reshape(-1, 27) @ self.rank3)        # [E, 10]

        # the edges' groups: (centre, neighbour species), group = centre n_species + z_j
        if n_species > 1:
            neighbour = species[edge_index[1]]
            group = centre * n_species + neighbour
        else:
            neighbour = centre          # unused; TorchScript wants it set on both branches
            group = centre
        n_groups = n_active * n_species

        # l = 0: each atom's summed basis per neighbour species, then the weights of its species
        b0 = torch.zeros(n_groups, n_radial, dtype=dtype, device=edge_vec.device)
        b0 = b0.index_add(0, group, edge_basis).reshape(n_active, n_basis)
        a0 = self.own_species(b0 @ weights[:, :, :k].reshape(n_basis, n_species * k),
                              species, n_active, 1, k).squeeze(1) * self.inv_avg_neighbours
        out = [a0, self.pair_products(a0.unsqueeze(2))]
        # l >= 1: the sums over each group's edges as one small matrix product per group:
        # edges are laid out in a padded [group, slot] grid (edges of a centre are contiguous)
        counts = torch.zeros(n_groups, dtype=centre.dtype, device=centre.device)
        counts = counts.index_add(0, group, torch.ones_like(centre))
        most = torch.cat([counts, counts.new_ones(1)]).max()        # at least one slot
        if torch.jit.is_scripting():
            slots = int(most)
        else:
            slots = most.item()
            # a node in the traced graph (torch._check leaves none), so that export knows
            # the grids' strides are the slots themselves
            torch.ops.aten.sym_constrain_range_for_size.default(slots, min=1)
            torch._check(slots <= max(centre.shape[0], 1))
        position = torch.arange(centre.shape[0], device=centre.device)
        atom_counts = counts.reshape(n_active, n_species).sum(1) if n_species > 1 else counts
        if self.export_form:
            # each centre's edges in one run, the runs in any order: a run starts at its
            # first edge. Edges of a centre apart would put two in one slot or one past the
            # grid, so the package stops instead of computing a wrong energy
            first_edge = torch.full_like(atom_counts, centre.shape[0]).scatter_reduce(
                0, centre, position, "amin")
            run_start = first_edge[centre]
            torch._assert_async((position - run_start < atom_counts[centre]).all(),
                                "a compiled mlff model needs each centre's edges next to "
                                "each other (as LAMMPS and mlff's graphs give them)")
        else:
            run_start = (torch.cumsum(atom_counts, dim=0) - atom_counts)[centre]
        if n_species > 1:
            # an edge's slot: the edges of its neighbour's species before it in its centre's
            # run (those before it anywhere, less those before the run)
            onehot = torch.nn.functional.one_hot(neighbour, n_species)
            before = torch.cumsum(onehot, dim=0) - onehot
            slot = (before.gather(1, neighbour.unsqueeze(1)).squeeze(1)
                    - before[run_start, neighbour])
        else:
            slot = position - run_start
        widths = [y.shape[1] for y in angular]
        n_angular = sum(widths)
        # the grids: TorchScript (no fusion) and eager place whole rows of edges, [group * slot,
        # values]; compiled code wants them values before slots, [group, values, slot], so that
        # their gradients come back in that layout and are read at [group, :, slot] with plain
        # strides (read at group * slots + slot of a transposed grid, the compiled backward
        # spent a quarter of its time dividing indices by the slots). The same numbers
        if self.export_form:
            grid_y = torch.zeros(n_groups, n_angular, slots, dtype=dtype, device=edge_vec.device)
            grid_y[group, :, slot] = torch.cat(angular, dim=1)
            grid_b = torch.zeros(n_groups, n_radial, slots, dtype=dtype, device=edge_vec.device)
            grid_b[group, :, slot] = edge_basis
            grid_b = grid_b.transpose(1, 2)
        else:
            cell = group * slots + slot
            grid_y = torch.zeros(n_groups * slots, n_angular, dtype=dtype,
                                 device=edge_vec.device)
            grid_y = grid_y.index_copy_(0, cell, torch.cat(angular, dim=1)).reshape(
                n_groups, slots, n_angular).transpose(1, 2)
            grid_b = torch.zeros(n_groups * slots, n_radial, dtype=dtype,
                                 device=edge_vec.device).index_copy_(0, cell, edge_basis)
            grid_b = grid_b.reshape(n_groups, slots, n_radial)
        # B: [group, lm, n] -> [atom, lm, z_j n_radial + n]; then every l >= 1's weights, for
        # each atom its species': [atom, lm, l_max k] (the blocks of one l's weights and
        # another's m unused: a few products per atom)
        basis_y = torch.bmm(grid_y, grid_b)
        if n_species > 1:
            basis_y = basis_y.reshape(n_active, n_species, n_angular, n_radial).transpose(1, 2)
        lk = width - k
        a_all = self.own_species(
            basis_y.reshape(n_active * n_angular, n_basis)
            @ weights[:, :, k:].reshape(n_basis, n_species * lk),
            species, n_active, n_angular, lk) * self.inv_avg_neighbours
        start = 0
        for l in range(1, self.l_max + 1):
            m = widths[l - 1]
            out.append(self.pair_products(
                a_all[:, start:start + m, (l - 1) * k:l * k].transpose(1, 2)))
            start += m
        return torch.cat(out, dim=1)

    def own_species(self, values: torch.Tensor, species: torch.Tensor, n_active: int,
                    rows: int, width: int) -> torch.Tensor:
        """[atom, rows, width] of [atom rows, species width]: each atom's own species' block."""
        if self.n_species == 1:
            return values.reshape(n_active, rows, width)
        values = values.reshape(n_active, rows, self.n_species, width).transpose(1, 2)
        own = torch.arange(n_active, device=species.device) * self.n_species + species[:n_active]
        return values.reshape(n_active * self.n_species, rows, width).index_select(0, own)

    def pair_products(self, a: torch.Tensor) -> torch.Tensor:
        """[atom, k(k + 1) / 2]: the dot products a_c . a_d of the channels c <= d of
        a [atom, k, m], in triu order, written out: a batch of tiny matrix products costs more
        than the few multiplications it holds."""
        if self.export_form:
            # compiled: all k^2 products, summed over m with the k^2 contiguous (a vector
            # loop; summed over an inner m of 3 or 5 it was not: 6% of a `fast` call), then
            # the upper triangle by a 0/1 matrix product. Gathering the factors by the index
            # lists (below) cost Inductor two bounds-checked indirect loads per product and m,
            # forward and backward (4-5%), and picking the triangle by index_select took a
            # scalar scatter for its gradient (10%)
            k = self.n_channels
            a = a.transpose(1, 2)
            return (a.unsqueeze(3) * a.unsqueeze(2)).sum(1).reshape(a.shape[0], k * k) \
                @ self.triu_select
        # index_select, not [:, index]: its gradient is an index_add, where advanced indexing
        # takes back an accumulating index_put (zero-filled, and sorted on CUDA)
        return (a.index_select(1, self.triu_rows) * a.index_select(1, self.triu_cols)).sum(2)

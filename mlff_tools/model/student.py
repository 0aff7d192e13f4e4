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
    B = [A0, A0_c A0_d, A1_c . A1_d, A2_c : A2_d]  (c <= d)                  (3-body invariants)
    E_i = E0[z_i] + scale * MLP([B, onehot(z_i)])

f_env(x) = 1 - 10x^3 + 15x^4 - 6x^5 is C2 at the cutoff (value, slope and
curvature vanish), so energy and forces go continuously to zero there and NVE
conserves energy. The invariants are exact 3-body terms: an SW-like angular
term sum_jk g(r_j) g(r_k) P_l(cos theta_jk) is the l-th contraction, so the
MLP only has to learn radial shapes and a readout.

Example::

    energy = StudentEnergy(("Si",), cutoff=5.0, **PRESETS["fast"])
    module = EdgeGradient(energy)        # a contract module for save_model()
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch

# learning rates that train each preset stably (mlff_tools.train uses them unless told otherwise)
PRESET_LR: Dict[str, float] = {"fast": 5e-3, "accurate": 1.5e-3}

PRESETS: Dict[str, Dict[str, int]] = {
    # smallest cost per atom-step at acceptable accuracy: the production default
    "fast": {"n_radial": 6, "n_channels": 6, "hidden": 32, "n_hidden_layers": 2},
    "accurate": {"n_radial": 10, "n_channels": 16, "hidden": 96, "n_hidden_layers": 2},
}


def envelope(x: torch.Tensor) -> torch.Tensor:
    """C2 polynomial cutoff: 1 at x=0, and value, slope, curvature 0 at x>=1."""
    x = torch.clamp(x, max=1.0)
    x3 = x * x * x
    return 1.0 - x3 * (10.0 - x * (15.0 - 6.0 * x))


class StudentEnergy(torch.nn.Module):
    """Per-atom energies [N] (eV) from a graph; see the module docstring."""

    def __init__(self, species: Tuple[str, ...], cutoff: float, *, n_radial: int = 6,
                 n_channels: int = 6, hidden: int = 32, n_hidden_layers: int = 2,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.species = list(species)
        self.n_species = len(species)
        self.cutoff = float(cutoff)
        self.n_radial = n_radial
        self.n_channels = n_channels
        n_pairs = self.n_species ** 2
        k = n_channels
        generator = torch.Generator().manual_seed(0)

        self.radial_weight = torch.nn.Parameter(
            torch.randn(n_radial * n_pairs, 3 * k, generator=generator, dtype=dtype)
            / math.sqrt(n_radial))
        rows, cols = torch.triu_indices(k, k)
        self.register_buffer("triu", rows * k + cols)
        self.register_buffer("frequencies",
                             torch.arange(1, n_radial + 1, dtype=dtype) * math.pi / self.cutoff)
        n_descriptors = k + 3 * (k * (k + 1) // 2)
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
        # densities: only atoms up to the last centre go through the full computation
        n_active = 0
        if centre.shape[0] > 0:
            n_active = int(centre.max()) + 1

        if centre.shape[0] > 1 and bool((centre[1:] < centre[:-1]).any()):
            order = torch.sort(centre, stable=True)[1]
            edge_index = edge_index[:, order]
            edge_vec = edge_vec[order]
            centre = edge_index[0]

        r = torch.linalg.vector_norm(edge_vec, dim=1)
        basis = (torch.sin(self.frequencies * r.unsqueeze(1)) / r.unsqueeze(1)
                 * (envelope(r / self.cutoff) * math.sqrt(2.0 / self.cutoff)).unsqueeze(1))
        if self.n_species > 1:
            pair = species[centre] * self.n_species + species[edge_index[1]]
            onehot = torch.nn.functional.one_hot(pair, self.n_species * self.n_species).to(dtype)
            basis = (basis.unsqueeze(2) * onehot.unsqueeze(1)).reshape(
                r.shape[0], self.n_radial * self.n_species * self.n_species)
        radial = basis @ self.radial_weight                          # [E, 3k]
        unit = edge_vec / r.unsqueeze(1)
        eye = torch.eye(3, dtype=dtype, device=edge_vec.device)
        y2 = (unit.unsqueeze(2) * unit.unsqueeze(1) - eye / 3.0).reshape(-1, 9)
        angular = torch.cat([unit, y2], dim=1)                       # [E, 12]

        # neighbour densities as one small matrix product per atom: edges are laid out
        # in a padded [atom, neighbour slot] grid (edges of a centre are contiguous)
        a0 = torch.zeros(n_active, k, dtype=dtype, device=edge_vec.device)
        a0 = a0.index_add(0, centre, radial[:, :k])
        counts = torch.bincount(centre, minlength=n_active)
        slots = 0
        if centre.shape[0] > 0:
            slots = int(counts.max())
        first_edge = torch.cumsum(counts, dim=0) - counts
        cell = centre * slots + torch.arange(centre.shape[0], device=centre.device) \
            - first_edge[centre]
        grid_radial = torch.zeros(n_active * slots, 2 * k, dtype=dtype, device=edge_vec.device)
        grid_radial = grid_radial.index_copy(0, cell, radial[:, k:]).reshape(n_active, slots,
                                                                             2 * k)
        grid_angular = torch.zeros(n_active * slots, 12, dtype=dtype, device=edge_vec.device)
        grid_angular = grid_angular.index_copy(0, cell, angular).reshape(n_active, slots, 12)
        a1 = torch.bmm(grid_radial[:, :, :k].transpose(1, 2), grid_angular[:, :, :3])
        a2 = torch.bmm(grid_radial[:, :, k:].transpose(1, 2), grid_angular[:, :, 3:])
        a0 = a0 * self.inv_avg_neighbours
        a1 = a1 * self.inv_avg_neighbours
        a2 = a2 * self.inv_avg_neighbours

        b0 = (a0.unsqueeze(2) * a0.unsqueeze(1)).reshape(n_active, k * k)[:, self.triu]
        b1 = torch.bmm(a1, a1.transpose(1, 2)).reshape(n_active, k * k)[:, self.triu]
        b2 = torch.bmm(a2, a2.transpose(1, 2)).reshape(n_active, k * k)[:, self.triu]
        return torch.cat([a0, b0, b1, b2], dim=1)

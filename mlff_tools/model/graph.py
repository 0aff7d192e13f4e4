"""The graph of a structure that a model reads: species indices, edges and edge vectors.

The same contract LAMMPS fills from its neighbour list (docs/design.md); here the edges come
from ASE's periodic neighbour list, images applied as shifts. The calculator, training and
`mlff-tools test` all build graphs here.

    species, edge_index, edge_vec = atoms_graph(atoms, ("Si",), cutoff=5.0)
"""

from __future__ import annotations

import numpy as np
from ase.neighborlist import neighbor_list

from ..errors import StructureError


def atoms_graph(atoms, species: tuple[str, ...], cutoff: float):
    """Graph of ``atoms`` for the model contract.

    Returns species index [N] int64, edge_index [2, E] int64 (centre, neighbour)
    and edge_vec [E, 3] float64 in Å (r_j - r_i with periodic images applied).
    """
    index = {symbol: i for i, symbol in enumerate(species)}
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(index))
    if unknown:
        raise StructureError(f"the model has no species {', '.join(unknown)} "
                             f"(it has: {' '.join(species)})")
    positions = atoms.get_positions()
    if not np.all(np.isfinite(positions)):
        bad = int(np.argwhere(~np.isfinite(positions))[0, 0])
        raise StructureError(f"atom {bad} has a non-finite position {positions[bad]}")
    species_index = np.array([index[s] for s in atoms.get_chemical_symbols()], dtype=np.int64)
    centre, neighbour, edge_vec = neighbor_list("ijD", atoms, cutoff, self_interaction=False)
    edge_index = np.stack([centre, neighbour]).astype(np.int64)
    return species_index, edge_index, np.ascontiguousarray(edge_vec, dtype=np.float64)

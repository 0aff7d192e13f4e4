"""What a structure is, and the settings of sampling and MD that follow from it.

`sample` and `distill` take their timestep, rattle and strain amplitudes and (for `distill`)
temperatures from here when the user gives none, and print the reason for each choice:

    system = describe(load_structure("water.extxyz"))
    system.timestep      # 0.5 fs: hydrogen is the lightest element
    system.summary()     # "24 atoms (H16O8), 8 molecules in a periodic box; ..."

Kinds, from the bonded network (atoms closer than ``BOND_FACTOR`` x the sum of their covalent
radii): ``crystal`` (a bonded cluster that joins its own periodic image: silicon, copper, NaCl,
and their melts and glasses), ``molecular`` (finite molecules in a periodic box: liquid water,
a molecular crystal), ``molecule`` (a cell periodic in no direction: a molecule in vacuum) and
``slab`` (periodic in one or two directions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOND_FACTOR = 1.25     # bonded: closer than 1.25 x the sum of covalent radii (O-H 1.21 Å;
                       # water's hydrogen bond, 1.8 Å, is not; Si-Si 2.78 Å)

HYDROGEN_TIMESTEP = 0.5     # fs: O-H and C-H stretches (~9-11 fs periods) need it
TIMESTEP = 1.0              # fs: everything heavier (LAMMPS metal units' default)
RATTLE_PER_BOND = 0.04      # largest rattle std, as a fraction of the shortest bond
STRAIN = 0.04               # largest strain component of a periodic structure
CRYSTAL_TEMPERATURES = (300.0, 1200.0, 2000.0)  # K: silicon's range, solid to liquid
MOLECULAR_TEMPERATURES = (300.0,)               # K: room temperature; no boiling by default


@dataclass(frozen=True)
class System:
    formula: str
    atoms: int
    kind: str                   # crystal, molecular, molecule or slab
    molecules: int              # finite bonded clusters (0 for a crystal)
    lightest: str
    shortest_bond: float        # Å, the closest pair of atoms
    timestep: float             # fs
    rattle: float               # Å
    strain: float               # 0 where the cell is not periodic
    vacancies: bool             # vacancy frames make sense (not for molecules)
    temperatures: tuple[float, ...]

    @property
    def periodic(self) -> bool:
        return self.kind in ("crystal", "molecular")

    def summary(self) -> str:
        where = {"crystal": "an extended bonded network (a crystal, or its melt or glass)",
                 "molecular": f"{self.molecules} molecules in a periodic box",
                 "molecule": f"{self.molecules} molecule(s) in vacuum (not periodic)",
                 "slab": "periodic in some directions only (a slab or a wire)"}[self.kind]
        return f"{self.atoms} atoms ({self.formula}), {where}"

    def reasons(self) -> dict[str, str]:
        """Why each default is what it is, keyed by setting."""
        light = "hydrogen" if self.lightest == "H" else self.lightest
        reasons = {
            "timestep": f"{self.timestep:g} fs ({light} is the lightest element)",
            "rattle": f"{self.rattle:.3g} Å ({RATTLE_PER_BOND:.0%} of the shortest bond, "
                      f"{self.shortest_bond:.3g} Å)",
            "strain": (f"{self.strain:g}" if self.periodic else
                       "none (the cell is not periodic in every direction)"),
        }
        if not self.vacancies:
            reasons["vacancy"] = "none (a vacancy in a molecule makes another molecule)"
        if self.kind in ("crystal", "slab"):
            reasons["temperatures"] = ("300, 1200, 2000 K (the default range: silicon's, "
                                       "solid to liquid; give --temperatures for yours)")
        else:
            reasons["temperatures"] = ("300 K (a molecular system: give --temperatures for "
                                       "others; no melt stage)")
        return reasons


def _bond_graph(atoms):
    """Bonds (i, j, image shift S), their sparse graph, and its connected components."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(atoms)
    first, second, shifts = neighbor_list("ijS", atoms, covalent_radii[atoms.numbers] * BOND_FACTOR)
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(n, n)).tocsr()
    count, labels = connected_components(graph, directed=False)
    return first, second, shifts, graph, count, labels


def cluster_labels(atoms) -> np.ndarray:
    """Each atom's bonded cluster (0, 1, ...), without asking which clusters are finite."""
    return _bond_graph(atoms)[5]


def bonded_clusters(atoms) -> tuple[np.ndarray, np.ndarray]:
    """The bonded clusters of ``atoms``: each atom's cluster label (0, 1, ...) and, per
    cluster, whether it is extended, that is bonded to one of its own periodic images (a
    crystal's network, a polymer chain) rather than finite (a molecule, a lone atom).

    Found by walking each cluster's bonds from one atom and noting which periodic image of
    each atom the walk reaches: a bond that leads to another image of an atom already reached
    closes a loop through the boundary. Linear in the number of bonds (ASE's dimensionality
    analysis, which also finds the dimension, takes ~30 s on 4096 atoms)."""
    from scipy.sparse.csgraph import breadth_first_order

    n = len(atoms)
    first, second, shifts, graph, count, labels = _bond_graph(atoms)
    # the image each atom is reached in, along a spanning tree of its cluster
    shift_of = {}
    for i, j, shift in zip(first.tolist(), second.tolist(), shifts.tolist()):
        shift_of.setdefault((i, j), shift)
    image = np.zeros((n, 3), int)
    roots = np.unique(labels, return_index=True)[1]
    for root in roots:
        order, parent = breadth_first_order(graph, root, directed=False)
        for atom in order[1:]:
            image[atom] = image[parent[atom]] + shift_of[(parent[atom], atom)]
    # a bond i -> j at shift S reaches j's image image[i] + S; any other than image[j] wraps
    wraps = np.any(image[first] + shifts != image[second], axis=1)
    extended = np.zeros(count, bool)
    extended[labels[first[wraps]]] = True
    return labels, extended


def describe(atoms) -> System:
    """The kind of ``atoms`` and the sampling settings that follow from it."""
    from ase.data import atomic_masses, atomic_numbers
    from ase.neighborlist import neighbor_list

    symbols = sorted(set(atoms.get_chemical_symbols()),
                     key=lambda s: atomic_masses[atomic_numbers[s]])
    lightest = symbols[0]
    periodic = bool(np.all(atoms.pbc)) and atoms.cell.rank == 3
    reach = 4.0      # the shortest distance, periodic images included (one-atom cells)
    while True:
        distances = neighbor_list("d", atoms, reach)
        if len(distances) or reach > 20:
            break
        reach *= 2
    shortest = float(distances.min()) if len(distances) else 2.0
    extended = bonded_clusters(atoms)[1]
    molecules = int(np.count_nonzero(~extended))
    if not np.any(atoms.pbc):
        kind = "molecule"
    elif not periodic:
        kind, molecules = "slab", 0
    elif molecules and not extended.any():
        kind = "molecular"
    else:
        kind = "crystal"
        molecules = 0
    return System(
        formula=atoms.get_chemical_formula(), atoms=len(atoms), kind=kind, molecules=molecules,
        lightest=lightest, shortest_bond=shortest,
        timestep=HYDROGEN_TIMESTEP if lightest == "H" else TIMESTEP,
        rattle=round(RATTLE_PER_BOND * shortest, 3),
        strain=STRAIN if periodic else 0.0, vacancies=kind in ("crystal", "slab"),
        temperatures=MOLECULAR_TEMPERATURES if kind in ("molecular", "molecule")
        else CRYSTAL_TEMPERATURES)

"""Structures: read from files or built from a name, and the supercells made of them.

Every command takes a structure the same way: a file ASE reads (CIF, POSCAR, extxyz, a
LAMMPS data file whose masses name the elements) or an element whose crystal `ase.build.bulk`
knows by default ("Si", "Cu"; a compound such as NaCl needs a file).

    atoms = load_structure("Si", (2, 2, 2))
    n = cubic_repeats(len(load_structure("Si")), 512)      # (n, n, n) for about 512 atoms
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import StructureError

LAMMPS_DATA_SUFFIXES = (".data", ".lmpdat", ".lammps-data")


def read_structures(path: str | os.PathLike) -> list:
    """Every structure in ``path`` (any format ASE reads); :class:`StructureError` if
    unreadable."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise StructureError(f"structure file '{path}' does not exist")
    if path.suffix in LAMMPS_DATA_SUFFIXES or path.name.startswith("data."):
        try:   # elements come from the masses
            return [ase.io.read(path, format="lammps-data", atom_style="atomic", units="metal")]
        except Exception as err:  # noqa: BLE001
            raise StructureError(f"cannot read LAMMPS data file '{path}' (atom_style atomic, "
                                 f"units metal): {err}") from err
    try:
        frames = ase.io.read(path, index=":")
    except Exception as err:  # noqa: BLE001 - ASE raises many types for unreadable files
        raise StructureError(f"cannot read structures from '{path}': {err}") from err
    if not frames:
        raise StructureError(f"structure file '{path}' contains no structures")
    return frames


def load_structure(spec: str, supercell=(1, 1, 1)):
    """A structure from a file ASE reads, or an element/formula that ``ase.build.bulk`` knows,
    repeated ``supercell`` times."""
    from ase.build import bulk

    if Path(spec).is_file():
        atoms = read_structures(spec)[0]
    else:
        try:
            atoms = bulk(spec, cubic=True)
        except Exception:  # noqa: BLE001 - not every structure has a cubic cell
            try:
                atoms = bulk(spec)
            except Exception as err:  # noqa: BLE001
                if Path(spec).suffix or "/" in spec:    # meant as a file: say it is missing
                    raise StructureError(f"structure file '{spec}' not found (no such file in "
                                         f"{Path.cwd()})") from err
                raise StructureError(f"`{spec}` is neither a structure file nor a crystal "
                                     f"that ase.build.bulk knows ({err}); give a CIF, POSCAR, "
                                     "extxyz or LAMMPS data file") from err
    return atoms.repeat(tuple(supercell))


def cubic_repeats(base_atoms: int, target_atoms: int) -> tuple[int, int, int]:
    """(n, n, n) repeats of a cell of ``base_atoms`` atoms for about ``target_atoms``."""
    n = max(1, round((target_atoms / base_atoms) ** (1 / 3)))
    return (n, n, n)


def small_supercell(structure: str, target_atoms: int = 32) -> tuple[int, int, int]:
    """The largest of 1x1x1, 2x1x1, 2x2x1, 2x2x2, 3x3x3 with at most 1.5 x ``target_atoms``."""
    base = len(load_structure(structure))
    best = (1, 1, 1)
    for n in ((1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (3, 3, 3)):
        if base * np.prod(n) <= target_atoms * 1.5:
            best = n
    return best


def cell_heights(cell) -> list[float]:
    """Distances between opposite faces of a cell (Å): the periodic room in each direction."""
    cell = np.asarray(cell, float)
    volume = abs(np.linalg.det(cell))
    return [volume / np.linalg.norm(np.cross(cell[i], cell[j]))
            for i, j in ((1, 2), (0, 2), (0, 1))]


def repeats_for_height(cell, min_height: float, pbc=(True, True, True)) -> tuple[int, int, int]:
    """The smallest repeat of ``cell`` whose heights reach ``min_height`` Å along the periodic
    directions (1 along the others)."""
    return tuple(max(1, int(np.ceil(min_height / h - 1e-9))) if periodic else 1
                 for h, periodic in zip(cell_heights(cell), pbc))


def supercell_for_height(structure: str, min_height: float) -> tuple[int, int, int]:
    """The smallest repeat whose cell heights all reach ``min_height`` Å."""
    return repeats_for_height(load_structure(structure).cell.array, min_height)


VACUUM_MARGIN = 2.0        # Å beyond the cutoff between a boxed molecule and its images


def box_molecule(atoms, cutoff: float, margin: float = VACUUM_MARGIN):
    """A molecule in vacuum (periodic in no direction) in a cube whose edge is its diameter +
    ``cutoff`` + ``margin``, centred, so that LAMMPS (periodic boxes) finds no periodic image
    of it within the cutoff; returns (atoms, note), or (atoms, None) unchanged when its own
    cell is already that large or the structure is periodic."""
    if atoms.pbc.any():
        return atoms, None
    positions = atoms.get_positions()
    diameter = float(np.max(np.linalg.norm(positions[:, None] - positions[None], axis=-1)))
    edge = diameter + cutoff + margin
    heights = cell_heights(atoms.cell.array) if atoms.cell.rank == 3 else [0.0] * 3
    if min(heights) >= edge:
        return atoms, None
    boxed = atoms.copy()
    boxed.set_cell(np.eye(3) * edge)
    boxed.center()
    boxed.pbc = False
    return boxed, (f"box: {edge:.1f} Å cube (the molecule's {diameter:.1f} Å + cutoff "
                   f"{cutoff:g} Å + {margin:g} Å: no periodic image in reach in LAMMPS)")

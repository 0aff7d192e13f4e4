"""What phase a run is in, from how its atoms move: a liquid diffuses, a solid vibrates.

A solid's mean-squared displacement stops at the vibrational plateau, a few tenths of an Å^2
even at its melting point (Lindemann: rms displacement ~0.1-0.15 of the bond length); a
liquid's grows without bound, by 6 D t (D ~ 0.2-2 Å^2/ps for liquid metals, silicon and
water). So a run whose atoms, centre of mass removed, have moved more than
``LIQUID_MSD_A2`` on average, and still move, is called liquid.

    phase = measured_phase(positions, cells)   # {"phase": "liquid", "msd_A2": 12.1, ...}
"""

from __future__ import annotations

import numpy as np

LIQUID_MSD_A2 = 1.0              # Å^2: well above any solid's vibrational plateau
DIFFUSING_A2_PER_PS = 0.02       # slope of the MSD over the second half (6 D)


def unwrapped(positions: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Positions made continuous across periodic boundaries, frame to frame by the minimum
    image (frames close enough that no atom moves half a cell between them)."""
    out = np.array(positions, float)
    for i in range(1, len(out)):
        step = positions[i] - positions[i - 1]
        fractional = step @ np.linalg.inv(cells[i])
        step = (fractional - np.round(fractional)) @ cells[i]
        out[i] = out[i - 1] + step
    return out


def mean_squared_displacement(positions: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """MSD (Å^2) of every frame from the first, centre-of-mass motion removed."""
    path = unwrapped(positions, cells)
    moved = path - path[0]
    moved -= moved.mean(axis=1, keepdims=True)
    return (moved ** 2).sum(axis=2).mean(axis=1)


def measured_phase(positions: np.ndarray, cells: np.ndarray, times_ps: np.ndarray) -> dict:
    """"liquid" or "solid" from the atoms' motion over the run, with the numbers it rests on:
    the final MSD and the MSD's slope over the run's second half (6 D, Å^2/ps)."""
    if len(positions) < 3:
        return {"phase": "unknown", "reason": "fewer than 3 frames"}
    msd = mean_squared_displacement(positions, cells)
    half = len(msd) // 2
    slope = float(np.polyfit(times_ps[half:], msd[half:], 1)[0]) if len(msd) - half >= 2 else 0.0
    liquid = msd[-1] > LIQUID_MSD_A2 and slope > DIFFUSING_A2_PER_PS
    return {"phase": "liquid" if liquid else "solid", "msd_A2": float(msd[-1]),
            "msd_slope_A2_per_ps": slope, "diffusion_A2_per_ps": slope / 6,
            "over_ps": float(times_ps[-1] - times_ps[0])}


def min_distances(positions: np.ndarray, cells: np.ndarray, cutoff: float = 4.0) -> np.ndarray:
    """Smallest interatomic distance (Å, periodic) of every frame."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    result = []
    for xyz, cell in zip(positions, cells):
        atoms = Atoms(positions=xyz, cell=cell, pbc=True)
        d = neighbor_list("d", atoms, cutoff)
        result.append(float(d.min()) if d.size else cutoff)
    return np.array(result)


def molecules(symbols, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Each atom's molecule, as the lowest atom index of its bonded cluster (periodic)."""
    from ase import Atoms

    from ..system import cluster_labels

    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    labels = cluster_labels(atoms)
    n = len(atoms)
    lowest = np.full(labels.max() + 1, n)
    np.minimum.at(lowest, labels, np.arange(n))
    return lowest[labels]


MOLECULE_CHANGE_FRAMES = 2   # a change of molecules counts when it holds this many frames


def molecule_formulas(symbols, labels: np.ndarray) -> dict[str, int]:
    """How many molecules of each formula (Hill order: "H2O", "H3O", "HO")."""
    from collections import Counter

    from ase.formula import Formula

    symbols = np.asarray(symbols)
    return dict(sorted(Counter(Formula.from_list(list(symbols[labels == m])).format("hill")
                               for m in np.unique(labels)).items()))


def first_molecule_change(symbols, positions: np.ndarray, cells: np.ndarray,
                          persist: int = MOLECULE_CHANGE_FRAMES) -> dict | None:
    """The first frame whose molecules differ from the first frame's (a bond broken, or atoms
    of two molecules bonded) and keep differing for ``persist`` frames (or to the run's end),
    with how many molecules of each formula there are then and at the start; None if every
    frame keeps them. A
    bond that breaks and re-forms within fewer frames is a vibration caught mid-stretch (or
    a proton shared for an instant), not a changed molecule."""
    start = molecules(symbols, positions[0], cells[0])
    changed_since = None
    for index in range(1, len(positions)):
        now = molecules(symbols, positions[index], cells[index])
        if np.array_equal(now, start):
            changed_since = None
            continue
        if changed_since is None:
            changed_since, first = index, now
        if index - changed_since + 1 >= persist or index == len(positions) - 1:
            return {"frame": changed_since,
                    "formulas_at_start": molecule_formulas(symbols, start),
                    "formulas_now": molecule_formulas(symbols, first)}
    return None

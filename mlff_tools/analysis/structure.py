"""What phase a run is in, from how its atoms move: a liquid diffuses, a solid vibrates.

A solid's mean-squared displacement stops at the vibrational plateau, a few tenths of an Å^2
even at its melting point (Lindemann: rms displacement ~0.1-0.15 of the bond length); a
liquid's grows without bound, by 6 D t (D ~ 0.2-2 Å^2/ps for liquid metals, silicon and
water). So a run whose atoms, centre of mass removed, have moved more than
``LIQUID_MSD_A2`` on average, and still move, is called liquid.

A solid is then crystalline or amorphous (a glass: water frozen into a disordered network,
a quenched melt): the atoms' mean positions over the run, vibrations averaged out, of a
crystal scatter into Bragg peaks, |<exp(i k.r)>|^2 near 1 at some reciprocal vector k of the
cell, where disordered sites give ~1/N at every k.

    phase = measured_phase(positions, cells, times_ps, symbols)
    phase["phase"], phase.get("order")     # "solid", "crystalline"
    phase_text(phase)                       # "solid, crystalline (mean-squared ...)"
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


BRAGG_CRYSTAL = 0.35       # strongest |<exp(i k.r)>|^2 of the mean positions: a crystal's
                           # is ~1 (0.5 and more for an element with a basis), disordered
                           # sites' ~ln(K)/N (64 atoms of a-Si: 0.13; 216: 0.04)
BRAGG_K_MAX = 3.5          # 1/Å: past the first reflections of common crystals (Cu 111: 3.0)
ORDER_MIN_ATOMS = 32       # fewer atoms of an element cannot tell order from chance
ORDER_MAX_TERMS = 2e8      # atoms x reciprocal vectors; beyond, the order is not measured


def bragg_peak(positions: np.ndarray, cells: np.ndarray, symbols=None) -> float | None:
    """The strongest Bragg peak of the atoms' mean positions over the frames (centre of mass
    held): max over reciprocal vectors k of the cell, 0 < |k| <= BRAGG_K_MAX, of
    |<exp(i k.r)>|^2 over the atoms of one element, the largest over elements with at least
    ORDER_MIN_ATOMS atoms (sublattices scatter on their own); None where no element has as
    many, or the cell is too large to sum over."""
    path = unwrapped(positions, cells)
    path -= path.mean(axis=1, keepdims=True) - path[0].mean(axis=0)
    mean, cell = path.mean(axis=0), cells.mean(axis=0)
    reciprocal = 2 * np.pi * np.linalg.inv(cell).T          # rows b_i: a_i . b_j = 2 pi d_ij
    reach = np.ceil(BRAGG_K_MAX * np.linalg.norm(cell, axis=1) / (2 * np.pi)).astype(int)
    hkl = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in reach], indexing="ij"),
                   -1).reshape(-1, 3)
    k = hkl @ reciprocal
    length = np.linalg.norm(k, axis=1)
    k = k[(length > 0) & (length <= BRAGG_K_MAX)]
    groups = [np.arange(len(mean))] if symbols is None else \
        [np.flatnonzero(np.asarray(symbols) == e) for e in sorted(set(symbols))]
    groups = [g for g in groups if len(g) >= ORDER_MIN_ATOMS]
    if not groups or len(k) * sum(map(len, groups)) > ORDER_MAX_TERMS:
        return None
    best = 0.0
    for group in groups:
        for chunk in np.array_split(k, max(1, len(k) * len(group) // 2_000_000)):
            amplitude = np.exp(1j * (mean[group] @ chunk.T)).mean(axis=0)
            best = max(best, float(np.max(np.abs(amplitude) ** 2)))
    return best


def measured_phase(positions: np.ndarray, cells: np.ndarray, times_ps: np.ndarray,
                   symbols=None) -> dict:
    """"liquid" or "solid" from the atoms' motion over the run, with the numbers it rests on:
    the final MSD and the MSD's slope over the run's second half (6 D, Å^2/ps); a solid's
    order, "crystalline" or "amorphous", from its Bragg peak (bragg_peak; None where it
    cannot be measured)."""
    if len(positions) < 3:
        return {"phase": "unknown", "reason": "fewer than 3 frames"}
    msd = mean_squared_displacement(positions, cells)
    half = len(msd) // 2
    slope = float(np.polyfit(times_ps[half:], msd[half:], 1)[0]) if len(msd) - half >= 2 else 0.0
    liquid = msd[-1] > LIQUID_MSD_A2 and slope > DIFFUSING_A2_PER_PS
    out = {"phase": "liquid" if liquid else "solid", "msd_A2": float(msd[-1]),
           "msd_slope_A2_per_ps": slope, "diffusion_A2_per_ps": slope / 6,
           "over_ps": float(times_ps[-1] - times_ps[0])}
    if not liquid:
        peak = bragg_peak(positions, cells, symbols)
        out["bragg_peak"] = peak
        out["order"] = None if peak is None else \
            "crystalline" if peak >= BRAGG_CRYSTAL else "amorphous"
    return out


def phase_text(phase: dict) -> str:
    """"solid, amorphous (a glass; mean-squared displacement 0.31 Å² over 40 ps)"."""
    name = phase["phase"]
    if phase.get("order") == "crystalline":
        name += ", crystalline"
    elif phase.get("order") == "amorphous":
        name += ", amorphous (a glass"
    details = (f"mean-squared displacement {phase['msd_A2']:.2g} Å² over "
               f"{phase['over_ps']:.3g} ps")
    if phase.get("order") == "amorphous":
        return f"{name}; {details})"
    return f"{name} ({details})"


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

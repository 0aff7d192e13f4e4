"""Intramolecular geometry: bond lengths and bond angles by type, the student's against the
teacher's (water's O-H and H-O-H, ethanol's C-C, C-O-H, ...).

The bonds are those of the run's first frame (``mlff_tools.system``'s bonded network); every
later frame measures the same atoms, by the minimum image. Per frame, each type's mean and
mean square; over frames, the student's plain average against the teacher's, which is either
the same frames reweighted by the teacher's energies (as for the RDFs) or a reference
trajectory of the teacher's.

    topology = molecular_topology(atoms)
    per_frame = frame_geometry(positions, cells, topology)
    compared = compare_geometry(per_frame, reweighting=reweighting)   # {"H-O": {...}, ...}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rdf import Reweighting, reweighted_mean


@dataclass(frozen=True)
class Topology:
    bonds: dict[str, np.ndarray]      # type "H-O" -> [n, 2] atom indexes
    angles: dict[str, np.ndarray]     # type "H-O-H" -> [n, 3] atom indexes, the apex second

    def types(self) -> dict[str, str]:
        """Each type and its kind ("bond" or "angle")."""
        return {**{t: "bond" for t in self.bonds}, **{t: "angle" for t in self.angles}}


def molecular_topology(atoms) -> Topology:
    """The bonds and bond angles of ``atoms`` (bonded as in ``mlff_tools.system``), grouped by
    the elements they join."""
    from ..system import _bond_graph

    symbols = atoms.get_chemical_symbols()
    first, second = _bond_graph(atoms)[:2]
    pairs = sorted({(int(i), int(j)) for i, j in zip(first, second) if i < j})
    bonds: dict[str, list] = {}
    neighbours: dict[int, list[int]] = {}
    for i, j in pairs:
        bonds.setdefault("-".join(sorted((symbols[i], symbols[j]))), []).append((i, j))
        neighbours.setdefault(i, []).append(j)
        neighbours.setdefault(j, []).append(i)
    angles: dict[str, list] = {}
    for apex, around in neighbours.items():
        for a in range(len(around)):
            for b in range(a + 1, len(around)):
                i, k = sorted((around[a], around[b]), key=lambda n: (symbols[n], n))
                name = f"{symbols[i]}-{symbols[apex]}-{symbols[k]}"
                angles.setdefault(name, []).append((i, apex, k))
    return Topology(bonds={t: np.array(v) for t, v in sorted(bonds.items())},
                    angles={t: np.array(v) for t, v in sorted(angles.items())})


def _minimum_image(vectors: np.ndarray, cell: np.ndarray) -> np.ndarray:
    fractional = vectors @ np.linalg.inv(cell)
    return (fractional - np.round(fractional)) @ cell


def frame_geometry(positions: np.ndarray, cells: np.ndarray, topology: Topology) -> dict:
    """Per type, the mean and mean square of its bond lengths (Å) or angles (degrees) in every
    frame: {type: (mean [frames], mean square [frames])}."""
    out = {}
    for name, index in topology.bonds.items():
        values = np.array([np.linalg.norm(_minimum_image(xyz[index[:, 1]] - xyz[index[:, 0]],
                                                         cell), axis=1)
                           for xyz, cell in zip(positions, cells)])
        out[name] = (values.mean(axis=1), (values ** 2).mean(axis=1))
    for name, index in topology.angles.items():
        values = []
        for xyz, cell in zip(positions, cells):
            u = _minimum_image(xyz[index[:, 0]] - xyz[index[:, 1]], cell)
            v = _minimum_image(xyz[index[:, 2]] - xyz[index[:, 1]], cell)
            cosine = np.sum(u * v, axis=1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
            values.append(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
        values = np.array(values)
        out[name] = (values.mean(axis=1), (values ** 2).mean(axis=1))
    return out


def _average(per_frame: tuple, weights: np.ndarray) -> tuple[float, float]:
    mean = float(weights @ per_frame[0])
    return mean, float(np.sqrt(max(weights @ per_frame[1] - mean ** 2, 0.0)))


def compare_geometry(student: dict, *, reweighting: Reweighting | None = None,
                     reference: dict | None = None, n_bootstrap: int = 200) -> dict:
    """The student's mean and spread of every type against the teacher's: the same frames
    weighted by ``reweighting`` (with a bootstrap standard error of the difference, frames
    resampled), or the frames of a ``reference`` trajectory."""
    out = {}
    for name, values in student.items():
        frames = len(values[0])
        mean, width = _average(values, np.full(frames, 1.0 / frames))
        if reference is not None:
            if name not in reference:
                continue
            other = reference[name]
            teacher, teacher_width = _average(other, np.full(len(other[0]), 1.0 / len(other[0])))
            entry = {"source": "teacher trajectory"}
        else:
            teacher, teacher_width = _average(values, reweighting.weights())
            entry = {"source": f"the student's frames, reweighted ({reweighting.method})",
                     "standard_error":
                         reweighted_mean(values[0], reweighting, n_bootstrap)["standard_error"]}
        out[name] = {"kind": "angle" if name.count("-") == 2 else "bond",
                     "unit": "degrees" if name.count("-") == 2 else "Å",
                     "student": mean, "teacher": teacher, "error": abs(mean - teacher),
                     "student_width": width, "teacher_width": teacher_width, **entry}
    return out

"""An ASE calculator that runs an mlff model file in Python.

The same TorchScript file LAMMPS runs: edges come from a periodic neighbour
list (``ase.neighborlist.neighbor_list``, images applied as shifts), and the
host turns the model's edge gradients into forces and stress exactly as the
LAMMPS plugin does (see docs/design.md).

Example::

    atoms.calc = MLFFCalculator("model.pt")
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Many structures at once (one graph per batch, on the calculator's device)::

    calc = MLFFCalculator("model.pt", device="cuda")
    results = calc.calculate_batch(frames)      # [{"energy", "energies", "forces", "stress"}]
    calc.batch_timing                           # structures/s, atoms/s, graph and model time
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from .errors import EvaluationError
from .model import load_model
from .model.graph import atoms_graph


class MLFFCalculator(Calculator):
    """ASE calculator for an mlff model file.

    Properties: ``energy`` and ``free_energy`` (eV), ``energies`` (per atom,
    eV), ``forces`` (eV/Å) and, for cells periodic in all three directions,
    ``stress`` (eV/Å^3, Voigt order xx yy zz yz xz xy, ASE's sign convention).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model_path: str | os.PathLike, *, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        self.model = load_model(model_path, device=device)
        self.device = torch.device(device)

    @property
    def species(self) -> tuple[str, ...]:
        return self.model.metadata.species

    @property
    def cutoff(self) -> float:
        return self.model.metadata.cutoff

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        species, edge_index, edge_vec = atoms_graph(atoms, self.species, self.cutoff)
        dtype = self.model.dtype
        with torch.enable_grad():
            atom_energy, edge_grad = self.model.module(
                torch.from_numpy(species).to(self.device),
                torch.from_numpy(edge_index).to(self.device),
                torch.from_numpy(edge_vec).to(self.device, dtype),
            )
        atom_energy = atom_energy.detach().cpu().double().numpy()
        edge_grad = edge_grad.detach().cpu().double().numpy()
        if not np.all(np.isfinite(atom_energy)) or not np.all(np.isfinite(edge_grad)):
            raise EvaluationError("the model returned non-finite energies or forces; check the "
                             "structure for overlapping atoms")

        # contract: F_i += g, F_j -= g, W = -sum edge_vec (outer) g, stress = -W / V
        forces = np.zeros((len(atoms), 3))
        np.add.at(forces, edge_index[0], edge_grad)
        np.subtract.at(forces, edge_index[1], edge_grad)
        self.results["energies"] = atom_energy
        self.results["energy"] = self.results["free_energy"] = float(atom_energy.sum())
        self.results["forces"] = forces
        if atoms.cell.rank == 3 and all(atoms.pbc):
            virial = -edge_vec.T @ edge_grad
            stress = -virial / atoms.get_volume()
            # the upper triangle, as LAMMPS tallies it (symmetric for invariant models)
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a cell periodic in all directions")

    def calculate_batch(self, structures, *, batch_size: int = 32) -> list[dict]:
        """Energy (eV), per-atom energies, forces (eV/Å) and, for cells periodic in all three
        directions, stress (eV/Å^3, ASE's Voigt order) of each of ``structures``, evaluated
        ``batch_size`` structures at a time as one graph; the same numbers as
        :meth:`calculate` one by one. Timing of the call in :attr:`batch_timing`."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        results, graph_seconds, model_seconds = [], 0.0, 0.0
        for first in range(0, len(structures), batch_size):
            chunk = structures[first:first + batch_size]
            started = time.perf_counter()
            graphs = [atoms_graph(atoms, self.species, self.cutoff) for atoms in chunk]
            atom_offsets = np.cumsum([0] + [len(g[0]) for g in graphs])
            species = torch.from_numpy(np.concatenate([g[0] for g in graphs]))
            edge_index = torch.from_numpy(np.concatenate(
                [g[1] + offset for g, offset in zip(graphs, atom_offsets)], axis=1))
            edge_vec = np.concatenate([g[2] for g in graphs])
            graph_seconds += time.perf_counter() - started
            started = time.perf_counter()
            with torch.enable_grad():
                atom_energy, edge_grad = self.model.module(
                    species.to(self.device), edge_index.to(self.device),
                    torch.from_numpy(edge_vec).to(self.device, self.model.dtype))
            atom_energy = atom_energy.detach().cpu().double().numpy()
            edge_grad = edge_grad.detach().cpu().double().numpy()
            model_seconds += time.perf_counter() - started
            index = edge_index.numpy()
            forces = np.zeros((len(species), 3))
            np.add.at(forces, index[0], edge_grad)
            np.subtract.at(forces, index[1], edge_grad)
            edge_offsets = np.cumsum([0] + [g[1].shape[1] for g in graphs])
            for k, atoms in enumerate(chunk):
                atoms_slice = slice(atom_offsets[k], atom_offsets[k + 1])
                energies = atom_energy[atoms_slice]
                if not np.all(np.isfinite(energies)) or not np.all(
                        np.isfinite(forces[atoms_slice])):
                    raise EvaluationError(
                        f"the model returned non-finite energies or forces for structure "
                        f"{first + k} ({atoms.get_chemical_formula()}); check it for "
                        "overlapping atoms")
                result = {"energy": float(energies.sum()), "energies": energies,
                          "forces": forces[atoms_slice]}
                if atoms.cell.rank == 3 and all(atoms.pbc):
                    edges = slice(edge_offsets[k], edge_offsets[k + 1])
                    stress = edge_vec[edges].T @ edge_grad[edges] / atoms.get_volume()
                    result["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
                results.append(result)
        atoms_total = sum(len(a) for a in structures)
        seconds = graph_seconds + model_seconds
        self.batch_timing = {
            "structures": len(structures), "atoms": atoms_total, "batch_size": batch_size,
            "seconds": seconds, "graph_seconds": graph_seconds, "model_seconds": model_seconds,
            "structures_per_s": len(structures) / seconds if seconds else float("inf"),
            "atoms_per_s": atoms_total / seconds if seconds else float("inf")}
        return results

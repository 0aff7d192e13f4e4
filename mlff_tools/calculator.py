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
        result = self._evaluate([self.atoms])[0][0]
        self.results["energies"] = result["energies"]
        self.results["energy"] = self.results["free_energy"] = result["energy"]
        self.results["forces"] = result["forces"]
        if "stress" in result:
            self.results["stress"] = result["stress"]
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
            chunk, graph_s, model_s = self._evaluate(structures[first:first + batch_size], first)
            results += chunk
            graph_seconds += graph_s
            model_seconds += model_s
        atoms_total = sum(len(a) for a in structures)
        seconds = graph_seconds + model_seconds
        self.batch_timing = {
            "structures": len(structures), "atoms": atoms_total, "batch_size": batch_size,
            "seconds": seconds, "graph_seconds": graph_seconds, "model_seconds": model_seconds,
            "structures_per_s": len(structures) / seconds if seconds else float("inf"),
            "atoms_per_s": atoms_total / seconds if seconds else float("inf")}
        return results

    def _evaluate(self, structures, first: int = 0) -> tuple[list[dict], float, float]:
        """The results of ``structures`` evaluated as one graph, and the seconds spent building
        the graph and in the model; ``first`` numbers the structures in error messages."""
        started = time.perf_counter()
        graphs = [atoms_graph(atoms, self.species, self.cutoff) for atoms in structures]
        atom_offsets = np.cumsum([0] + [len(g[0]) for g in graphs])
        edge_offsets = np.cumsum([0] + [g[1].shape[1] for g in graphs])
        species = np.concatenate([g[0] for g in graphs])
        edge_index = np.concatenate([g[1] + offset for g, offset in zip(graphs, atom_offsets)],
                                    axis=1)
        edge_vec = np.concatenate([g[2] for g in graphs])
        graph_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with torch.enable_grad():
            atom_energy, edge_grad = self.model.module(
                torch.from_numpy(species).to(self.device),
                torch.from_numpy(edge_index).to(self.device),
                torch.from_numpy(edge_vec).to(self.device, self.model.dtype))
        atom_energy = atom_energy.detach().cpu().double().numpy()
        edge_grad = edge_grad.detach().cpu().double().numpy()
        model_seconds = time.perf_counter() - started

        # contract: F_i += g, F_j -= g, W = -sum edge_vec (outer) g, stress = -W / V
        forces = np.zeros((len(species), 3))
        np.add.at(forces, edge_index[0], edge_grad)
        np.subtract.at(forces, edge_index[1], edge_grad)
        results = []
        for k, atoms in enumerate(structures):
            own = slice(atom_offsets[k], atom_offsets[k + 1])
            energies = atom_energy[own]
            if not np.all(np.isfinite(energies)) or not np.all(np.isfinite(forces[own])):
                which = f"structure {first + k} " if len(structures) > 1 or first else ""
                raise EvaluationError(
                    f"the model returned non-finite energies or forces for {which}"
                    f"({atoms.get_chemical_formula()}); check it for overlapping atoms")
            result = {"energy": float(energies.sum()), "energies": energies,
                      "forces": forces[own]}
            if atoms.cell.rank == 3 and all(atoms.pbc):
                edges = slice(edge_offsets[k], edge_offsets[k + 1])
                virial = -edge_vec[edges].T @ edge_grad[edges]
                # the upper triangle, as LAMMPS tallies it (symmetric for invariant models)
                result["stress"] = (-virial / atoms.get_volume()).flat[[0, 4, 8, 5, 2, 1]]
            results.append(result)
        return results, graph_seconds, model_seconds

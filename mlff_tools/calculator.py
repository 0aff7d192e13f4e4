"""An ASE calculator that runs an mlff model file in Python.

The same TorchScript file LAMMPS runs: edges come from a periodic neighbour
list (``ase.neighborlist.neighbor_list``, images applied as shifts), and the
host turns the model's edge gradients into forces and stress exactly as the
LAMMPS plugin does (see docs/design.md).

Example::

    atoms.calc = MLFFCalculator("model.pt")
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
"""

from __future__ import annotations

import os

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

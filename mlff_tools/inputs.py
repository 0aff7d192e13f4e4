"""`mlff-tools write-input`: LAMMPS inputs for a model from the templates in lammps_inputs/.

Writes ``run.lmp`` and its data file beside it; paths inside are relative to
that folder, so run LAMMPS from there (``cd folder && lmp -in run.lmp``) or
copy the folder to a cluster as it is.

Example::

    write_input(InputConfig(model="model.pt", structure="Si", supercell=(4, 4, 4),
                            ensemble="npt", temperature=1000, pressure=1.0,
                            output="run/run.lmp"))
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path

from .errors import MLFFError
from .lammps import inputs_dir, lammps_orientation, write_data
from .model import load_model
from .structures import load_structure

ENSEMBLES = {
    "nve": "md_nve.lmp",
    "nvt": "md_nvt.lmp",
    "nvt-langevin": "md_nvt_langevin.lmp",
    "npt": "md_npt.lmp",
    "npt-tri": "md_npt_tri.lmp",
}


class InputError(MLFFError, ValueError):
    """An input that cannot be written as asked; the message says why."""


class _Template(string.Template):
    delimiter = "@"


@dataclass
class InputConfig:
    model: str
    output: str = "run.lmp"
    structure: str = "Si"
    supercell: tuple[int, int, int] = (1, 1, 1)
    ensemble: str = "nvt"
    temperature: float = 300.0      # K
    pressure: float = 1.0           # bar (npt)
    timestep: float = 1.0           # fs
    steps: int = 10000
    thermo_every: int | None = None  # steps; default: steps / 1000, at least 1
    dump_every: int | None = None    # steps; default: steps / 200, at least 1
    tdamp: float = 100.0            # timesteps
    pdamp: float = 1000.0           # timesteps
    seed: int = 4928459


def write_input(config: InputConfig) -> tuple[Path, Path]:
    """Write the LAMMPS input and its data file; returns both paths."""
    if config.ensemble not in ENSEMBLES:
        raise InputError(f"unknown ensemble `{config.ensemble}`; choose one of "
                         f"{', '.join(ENSEMBLES)}")
    if config.temperature <= 0 or config.timestep <= 0 or config.steps < 0:
        raise InputError("temperature and timestep must be positive and steps non-negative")
    model = load_model(config.model)
    species = model.metadata.species
    atoms = lammps_orientation(load_structure(config.structure, config.supercell))
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(species))
    if unknown:
        raise InputError(f"the structure has element(s) {', '.join(unknown)} that model "
                         f"'{config.model}' lacks (it has: {' '.join(species)})")
    present = [s for s in species if s in set(atoms.get_chemical_symbols())]

    output = Path(config.output)
    folder = output.parent.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    data = write_data(atoms, folder / f"{stem}.data", present)
    dt_ps = config.timestep / 1000.0
    values = {
        "title": f"{config.ensemble.upper()} of {len(atoms)} atoms "
                 f"({atoms.get_chemical_formula()}) with {Path(config.model).name}",
        "input_name": output.name,
        "ensemble": config.ensemble,
        "temperature": f"{config.temperature:g}",
        "pressure": f"{config.pressure:g}",
        "timestep_fs": f"{config.timestep:g}",
        "timestep_ps": f"{dt_ps:g}",
        "tdamp_ps": f"{config.tdamp * dt_ps:g}",
        "pdamp_ps": f"{config.pdamp * dt_ps:g}",
        "data": data.name,
        "model": os.path.relpath(Path(config.model).resolve(), folder),
        "elements": " ".join(present),
        "seed": str(config.seed),
        "thermo_every": str(config.thermo_every or max(1, config.steps // 1000)),
        "dump_every": str(config.dump_every or max(1, config.steps // 200)),
        "dump_file": f"{stem}.lammpstrj",
        "steps": str(config.steps),
    }
    text = _Template((inputs_dir() / ENSEMBLES[config.ensemble]).read_text()).substitute(values)
    output = folder / output.name
    output.write_text(text)
    return output, data

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
from .files import write_text
from .lammps import inputs_dir, lammps_orientation, write_data
from .model import load_model
from .structures import box_molecule, load_structure

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


def write_input(config: InputConfig, log=None) -> tuple[Path, Path]:
    """Write the LAMMPS input and its data file; returns both paths. What the structure made
    it do or notice goes to ``log`` (a callable taking a line) and into the input's header:
    a molecule in vacuum (periodic in no direction) is boxed so that no periodic image is
    within the model's cutoff (a supercell of it: copies out of each other's reach, as the
    speed benchmarks use); finite molecules in a periodic cell thinner than twice the
    cutoff meet their own images, which is said."""
    if config.ensemble not in ENSEMBLES:
        raise InputError(f"unknown ensemble `{config.ensemble}`; choose one of "
                         f"{', '.join(ENSEMBLES)}")
    if config.temperature <= 0 or config.timestep <= 0 or config.steps < 0:
        raise InputError("temperature and timestep must be positive and steps non-negative")
    model = load_model(config.model)
    species = model.metadata.species
    base = load_structure(config.structure)
    notes = _structure_notes(base, config, model.metadata.cutoff)
    if not base.pbc.any():
        # boxed first: a --supercell then makes copies that are out of each other's reach
        base, note = box_molecule(base, model.metadata.cutoff)
        notes += [note] if note else []
    atoms = lammps_orientation(base.repeat(tuple(config.supercell)))
    for note in notes:
        if log:
            log(note)
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
                 f"({atoms.get_chemical_formula()}) with {Path(config.model).name}"
                 + "".join(f"\n# {note}" for note in notes),
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
    write_text(output, text)
    return output, data


def _structure_notes(base, config: InputConfig, cutoff: float) -> list[str]:
    """Finite molecules in a periodic cell thinner than twice the model's cutoff: each meets
    its own periodic images within the cutoff. Right for a molecular crystal, wrong for a
    molecule meant to be alone and a small liquid box: said, with the fixes."""
    from .structures import cell_heights
    from .system import describe

    if not base.pbc.all():
        return []
    heights = [h * n for h, n in zip(cell_heights(base.cell.array), config.supercell)]
    thin = [f"{axis} {h:.2f} Å" for axis, h in zip("abc", heights) if h < 2 * cutoff]
    if not thin or describe(base).kind != "molecular":     # a thin cell holds few atoms
        return []
    return [f"note: the cell is thinner than twice the model's cutoff ({2 * cutoff:g} Å) along "
            f"{', '.join(thin)}: each molecule meets its own periodic images. Right for a "
            "molecular crystal; for a molecule alone give a structure periodic in no "
            "direction (write-input boxes it), for a liquid a larger --supercell"]

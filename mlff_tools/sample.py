"""`mlff-tools sample`: structures for training, labelled by the teacher as they are made.

Strategies, mixed by settable fractions of the requested frames:

- ``md``: teacher-driven molecular dynamics over the temperature (and optional
  pressure) schedule, ASE Langevin for NVT and ASE's isotropic MTK integrator for
  NPT; one frame every ``md_interval`` steps after ``md_equilibration`` steps.
- ``rattle``: the crystal with Gaussian displacements.
- ``strain``: the crystal under random symmetric strains (slightly rattled).
- ``vacancy``: the crystal with one atom removed (slightly rattled).

Frames with two atoms closer than the minimum distance are dropped and made
again. The frames are written to the output and split into train/val/test files.

Settings left at None come from the structure (:mod:`mlff_tools.system`), each choice said
once: the timestep from the lightest element, the rattle from the shortest bond, no strain
where the cell is not periodic and no vacancies in molecules (their frames go to MD).

Example::

    config = SampleConfig(teacher="emt", structure="Cu", supercell=(2, 2, 2),
                          temperatures=(300.0,), frames=20, output="cu.extxyz")
    paths = sample(config)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MLFFError
from .files import replacing
from .label import label_atoms
from .structures import load_structure
from .teachers import DEFAULT_TEACHER, load_teacher

STRATEGIES = ("md", "rattle", "strain", "vacancy")


class SampleError(MLFFError, ValueError):
    """Sampling cannot run as asked; the message says why and what to do."""


@dataclass
class SampleConfig:
    output: str
    teacher: str = DEFAULT_TEACHER
    structure: str = "Si"
    supercell: tuple[int, int, int] = (1, 1, 1)
    temperatures: tuple[float, ...] = (300.0, 1000.0, 2000.0)
    pressures: tuple[float, ...] | None = None       # bar (as LAMMPS metal); None: NVT
    frames: int = 100
    fractions: dict = field(default_factory=lambda: {"md": 0.7, "rattle": 0.1, "strain": 0.1,
                                                     "vacancy": 0.1})
    timestep: float | None = None     # fs; None: 0.5 with hydrogen, else 1
    friction: float = 0.01            # 1/fs, Langevin
    md_interval: int = 10             # steps between frames
    md_equilibration: int = 50        # steps before the first frame of each trajectory
    rattle: float | None = None       # Å, largest rattle std; None: 4% of the shortest bond
    strain: float | None = None       # largest strain component; None: 0.04 (0 unperiodic)
    min_distance: float | None = None  # Å; None: 0.6 x the sum of covalent radii
    cutoff: float | None = 6.0        # Å, the student's: a liquid's cell must be 2x as high
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    progress: bool = True


def too_close(atoms, min_distance: float | None) -> bool:
    """True if two atoms are closer than ``min_distance`` (default: 0.6 x covalent radii sum)."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    radii = covalent_radii[atoms.numbers]
    reach = min_distance if min_distance is not None else 1.2 * radii.max()
    i, j, d = neighbor_list("ijd", atoms, reach)
    if min_distance is not None:
        return bool(np.any(d < min_distance))
    return bool(np.any(d < 0.6 * (radii[i] + radii[j])))


def frame_counts(config: SampleConfig) -> dict[str, int]:
    """Frames per strategy: fractions of ``config.frames``, rounded to add up exactly."""
    unknown = set(config.fractions) - set(STRATEGIES)
    if unknown:
        raise SampleError(f"unknown strategies {sorted(unknown)}; known: {', '.join(STRATEGIES)}")
    total = sum(config.fractions.values())
    if total <= 0 or min(config.fractions.values()) < 0:
        raise SampleError(f"strategy fractions must be non-negative and not all zero: "
                          f"{config.fractions}")
    raw = {k: config.frames * v / total for k, v in config.fractions.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True):
        if sum(counts.values()) >= config.frames:
            break
        counts[k] += 1
    return counts


class _Counter:
    """Teacher calls for the progress bar."""

    def __init__(self, bar):
        self.bar, self.calls, self.start = bar, 0, None

    def add(self, n=1):
        import time

        self.start = self.start or time.perf_counter()
        self.calls += n
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(teacher_calls_per_s=f"{self.calls / elapsed:.2f}", refresh=False)


def md_frames(base, teacher, config, n_frames, rng, counter, bar):
    """Teacher-driven MD frames spread over the (temperature, pressure) schedule."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    conditions = [(t, p) for t in config.temperatures for p in (config.pressures or (None,))]
    per_condition = [n_frames // len(conditions) + (k < n_frames % len(conditions))
                     for k in range(len(conditions))]
    frames = []
    for (temperature, pressure), count in zip(conditions, per_condition):
        if count == 0:
            continue
        atoms = base.copy()
        atoms.calc = teacher.calculator
        thermalize_momenta(atoms, temperature, rng=rng)
        Stationary(atoms)
        if pressure is None:
            dynamics = Langevin(atoms, config.timestep * units.fs, temperature_K=temperature,
                                friction=config.friction / units.fs, fixcm=False, rng=rng)
        else:
            from ase.md.nose_hoover_chain import IsotropicMTKNPT

            dynamics = IsotropicMTKNPT(atoms, config.timestep * units.fs,
                                       temperature_K=temperature,
                                       pressure_au=pressure * units.bar,
                                       tdamp=100 * config.timestep * units.fs,
                                       pdamp=1000 * config.timestep * units.fs)
        dynamics.attach(lambda: counter.add(), interval=1)
        dynamics.run(config.md_equilibration)
        kept, attempts = 0, 0
        while kept < count:
            dynamics.run(config.md_interval)
            attempts += 1
            if not np.all(np.isfinite(atoms.positions)):
                raise SampleError(f"MD at {temperature} K blew up; lower the temperature or "
                                  "the timestep")
            if too_close(atoms, config.min_distance):
                if attempts > 3 * count + 10:
                    raise SampleError(f"MD at {temperature} K keeps bringing atoms closer than "
                                      "the minimum distance; lower the temperature")
                continue
            frame = label_atoms(atoms, teacher)
            frame.info.update(source="md", target_temperature=temperature,
                              temperature=float(atoms.get_temperature()))
            if pressure is not None:
                frame.info["target_pressure_bar"] = pressure
            frames.append(frame)
            kept += 1
            bar.update(1)
    return frames


def distorted_frames(base, teacher, config, counts, rng, counter, bar):
    """Rattled, strained and vacancy frames of the crystal, labelled by the teacher."""
    frames = []
    for strategy in ("rattle", "strain", "vacancy"):
        made = attempts = 0
        while made < counts.get(strategy, 0):
            attempts += 1
            if attempts > 10 * counts[strategy] + 10:
                raise SampleError(f"{strategy} frames keep violating the minimum distance; "
                                  "lower --rattle/--strain or --min-distance")
            atoms = base.copy()
            if strategy == "rattle":
                sigma = rng.uniform(0.2, 1.0) * config.rattle
            elif strategy == "strain":
                strain = rng.uniform(-config.strain, config.strain, (3, 3))
                deformation = np.eye(3) + 0.5 * (strain + strain.T)
                atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
                sigma = 0.02
            else:
                if len(atoms) < 2:
                    raise SampleError("vacancy frames need at least two atoms; use a supercell")
                del atoms[int(rng.integers(len(atoms)))]
                sigma = 0.05
            atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
            atoms.wrap()
            if too_close(atoms, config.min_distance):
                continue
            frame = label_atoms(atoms, teacher)
            counter.add()
            frame.info["source"] = strategy
            frames.append(frame)
            made += 1
            bar.update(1)
    return frames


def split_paths(output: Path) -> dict[str, Path]:
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return {name: output.with_name(f"{stem}.{name}.extxyz") for name in ("train", "val", "test")}


def _write(path: Path, frames) -> None:
    import ase.io

    with replacing(path) as tmp:
        ase.io.write(tmp, frames, format="extxyz")


def needed_frames(split) -> int:
    """The fewest frames that give every non-empty part of ``split`` at least one frame."""
    n = 1
    while any(f > 0 and round(f * n) == 0 for f in split[1:]):
        n += 1
    return n


def resolve(config: SampleConfig, base, log=None) -> SampleConfig:
    """``config`` with the settings it leaves at None taken from the structure ``base``, and
    the frames of strategies the structure does not allow (strain where the cell is not
    periodic, vacancies in molecules) moved to MD; ``log`` is told each choice."""
    import dataclasses

    from .system import describe

    system = describe(base)
    check_cell_height(base, system.kind, config, log)
    reasons = system.reasons()
    chosen = {name: getattr(system, name) for name in ("timestep", "rattle", "strain")
              if getattr(config, name) is None}
    fractions = dict(config.fractions)
    dropped = [name for name, allowed in (("strain", system.strain > 0 and
                                           (config.strain is None or config.strain > 0)),
                                          ("vacancy", system.vacancies))
               if not allowed and fractions.get(name)]
    for name in dropped:
        fractions["md"] = fractions.get("md", 0.0) + fractions.pop(name)
    if log:
        log(f"structure: {system.summary()}")
        for name in chosen:
            log(f"  {name}: {reasons[name]}")
        for name in dropped:
            log(f"  {name} frames: {reasons.get(name, 'none')}; their share goes to MD")
    return dataclasses.replace(config, fractions=fractions, **chosen)


def check_cell_height(base, kind: str, config: SampleConfig, log=None) -> None:
    """A periodic direction thinner than twice the student's cutoff puts an atom's own
    periodic images among its neighbours, so the teacher's frames hold environments a large
    box never has. In a liquid or molecular system that is an error (the student learns
    artefacts of the small box); a crystal's images are the crystal itself, so there it is a
    note (its vibrations are those the supercell allows)."""
    from .structures import cell_heights, repeats_for_height

    if not config.cutoff or not base.pbc.any() or base.cell.rank < 3:
        return
    need = 2 * config.cutoff
    factors = repeats_for_height(base.cell.array, need, base.pbc)
    thin = [(axis, h) for axis, h, factor in zip("abc", cell_heights(base.cell.array), factors)
            if factor > 1]
    if not thin:
        return
    repeats = tuple(n * factor for n, factor in zip(config.supercell, factors))
    said = ", ".join(f"{axis} {h:.2f} Å" for axis, h in thin)
    fix = f"--supercell {' '.join(map(str, repeats))}"
    if kind == "molecular":
        raise SampleError(
            f"the cell is thinner than twice the cutoff ({need:g} Å) along {said}: each "
            "molecule would meet its own periodic images, and a student trained on that "
            f"learns the small box; repeat it ({fix}) or give a smaller --cutoff")
    if log:
        log(f"cell: {said} thinner than twice the cutoff ({need:g} Å); fine for a crystal "
            f"(its images are the crystal), {fix} for vibrations of longer wavelength")


def sample(config: SampleConfig, log=None) -> dict[str, Path]:
    """Make, label and write ``config.frames`` frames; returns the paths written. Settings
    left at None are chosen from the structure and said to ``log`` (default: stderr when
    ``config.progress``)."""
    import sys

    from .progress import progress_bar

    if not config.temperatures or min(config.temperatures) <= 0:
        raise SampleError(f"temperatures must be positive, got {config.temperatures}")
    if config.frames < 1:
        raise SampleError(f"--frames must be at least 1, got {config.frames}")
    if config.frames < needed_frames(config.split):    # checked before any labelling
        raise SampleError(f"--frames {config.frames} leaves no frame for validation or test "
                          f"(split {config.split[0]:g}/{config.split[1]:g}/{config.split[2]:g}); "
                          f"ask for at least {needed_frames(config.split)} frames")
    output = Path(config.output)
    base = load_structure(config.structure, config.supercell)
    if log is None and config.progress:
        def log(message):
            print(message, file=sys.stderr)
    config = resolve(config, base, log)
    teacher = load_teacher(config.teacher)
    teacher.check_elements(set(base.get_chemical_symbols()))
    counts = frame_counts(config)
    rng = np.random.default_rng(config.seed)

    bar = progress_bar(total=config.frames, unit="frame", desc=f"sample ({teacher.name})",
                       enabled=config.progress)
    counter = _Counter(bar)
    frames = []
    if counts.get("md", 0):
        frames += md_frames(base, teacher, config, counts["md"], rng, counter, bar)
    frames += distorted_frames(base, teacher, config, counts, rng, counter, bar)
    bar.close()

    order = rng.permutation(len(frames))
    n_val = int(round(config.split[1] * len(frames)))
    n_test = int(round(config.split[2] * len(frames)))
    parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test],
             "train": order[n_val + n_test:]}
    output.parent.mkdir(parents=True, exist_ok=True)
    paths = {"all": output}
    try:
        _write(output, frames)
        for name, path in split_paths(output).items():
            _write(path, [frames[i] for i in sorted(parts[name])])
            paths[name] = path
    except OSError as err:
        raise SampleError(f"cannot write '{output}': {err}") from err
    return paths


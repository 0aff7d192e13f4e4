"""`mlff-tools validate run.lmp`: run an input that uses pair_style mlff and judge the model.

Checks, each against a threshold (defaults in :class:`Thresholds`, settable by
flag or a TOML file):

- NVE: total-energy drift, the least-squares slope after a 10% warm-up
  (meV/atom/ps), also relative to the kinetic-energy fluctuation.
- NVT/NPT: mean temperature and pressure against their targets; mean density
  and volume, their drift and fluctuation.
- Stability: temperature blow-up, atoms closer than a fraction of the starting
  minimum distance, lost atoms, NaN: "collapsed at step N" with the reason.
- Structure: RDF per element pair (MDAnalysis InterRDF) of the student
  against the teacher's; error = L1 area between the curves over the
  teacher's area, in percent. The teacher's RDF comes, by default in NVT/NPT,
  from reweighting: the teacher labels frames of the student's run and each
  frame counts with weight exp(-(E_teacher - E_student) / kT), which is the
  teacher's canonical average (thermodynamic perturbation). Student and
  teacher curves then share their frames, so the sampling noise of a short
  run cancels in the difference, as long as most frames carry weight. What
  noise remains (few effective frames) is measured and taken out
  (`analysis.rdf.noise_corrected_error`: the weights shifted in time against
  the frames give the error of no true difference); the report gives the raw
  error, that noise floor, the effective sample size and a standard error.
  Where the exponential weights keep under 20 % of the frames (a large cell's
  energy differences spread by several kT even when each atom's error is
  small), the frames are weighted by the linear response instead, <A> -
  Cov(A, dE)/kT, trusted while each atom's energy error is within 0.25 kT
  (`analysis.rdf.Reweighting`, measured on LJ argon against the teacher's own
  MD); beyond that the exponential weights are kept and the effective-sample
  check fails: the student explores other states than the teacher would.
  Measured: a
  perfect student (the SW TorchScript model against native SW, 64 atoms)
  against 0.4-2 ps of teacher MD from the same start scores 1.6-2.4 % on the
  crystal at 300 K and 4-6 % on the liquid at 2000 K, from sampling noise
  alone; `--rdf-method md` still runs that direct comparison (teacher MD in
  ASE from the student's start), and NVE runs always use it.
- Fidelity: the teacher relabels frames of the student's own trajectory.

A measured value with a standard error (drift, mean temperature and pressure,
reweighted RDF error) is shown as value ± error and decides only when value ± 2
errors lies on one side of the threshold; otherwise the check says "cannot
judge: run too short" and how long a run would decide. Means are taken after
equilibration (detected, not a fixed fraction): a thermostat that has not
settled is not averaged in.

Exit code 0 when every check passes, 1 when one fails, 2 when a check or the
whole run cannot be judged. Everything measured goes to ``--json``; ``--html``
adds plots.

Example::

    report = validate(ValidateConfig(input="run.lmp", teacher="sevenn:7net-0"))
    report["verdict"], report["checks"]
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .analysis.geometry import compare_geometry, frame_geometry, molecular_topology
from .analysis.rdf import (EXPONENTIAL, LINEAR_RESPONSE_LIMIT, Reweighting, rdf_error_percent,
                           reweighted_mean, reweighted_rdfs, rdfs)
from .analysis.structure import measured_phase, min_distances
from .analysis.thermo import energy_metrics, ensemble_metrics
from .files import write_text
from .report import jsonable
from .runner import RunPlan, RunResult, ValidateError, plan_run, run_input

RDF_WARMUP_FRACTION = 0.2

__all__ = ["Thresholds", "ValidateConfig", "ValidateError", "plan_run", "rdf_error_percent",
           "rdfs", "validate"]


@dataclass
class Thresholds:
    nve_drift_mev_per_atom_ps: float = 0.005
    nve_fluctuation_ratio: float = 0.2         # std(total energy) / std(kinetic energy)
    temperature_relative: float = 0.1          # |<T> - target| / target
    pressure_bar: float = 1000.0               # |<P> - target|
    min_distance_fraction: float = 0.5         # of the starting minimum distance
    blowup_factor: float = 3.0                 # temperature above factor x max(target, start)
    rdf_error_percent: float = 5.0
    rdf_effective_fraction: float = 0.2        # reweighted RDF: Kish sample size / frames
    rdf_linear_response_kt: float = LINEAR_RESPONSE_LIMIT   # below rdf_effective_fraction:
                                               # linear-response weights, trusted to this
                                               # per-atom energy error (in kT)
    energy_mae_mev_per_atom: float = 5.0       # fidelity on the student's own frames
    force_mae_mev_per_A: float = 100.0         # forces: this, or where the teacher's forces
    force_mae_relative: float = 0.2            # are larger (hot, liquid) this fraction of
                                               # their mean |component|, whichever is larger
    density_relative: float = 0.02             # NPT: mean density against the teacher's
    bond_length_A: float = 0.01                # molecules: mean bond length of each type
    bond_angle_deg: float = 1.0                # molecules: mean bond angle of each type

    @classmethod
    def from_toml(cls, path: str | Path) -> "Thresholds":
        import tomllib

        data = tomllib.loads(Path(path).read_text())
        data = data.get("thresholds", data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidateError(f"{path}: unknown threshold(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        return cls(**{k: float(v) for k, v in data.items()})


@dataclass
class ValidateConfig:
    input: str
    teacher: str | None = None
    reference: str | None = None      # extxyz trajectory of the teacher
    teacher_steps: int = 500          # teacher MD for --rdf-method md
    fidelity_frames: int = 10
    rdf_method: str = "auto"          # reweight | md | auto: reweight in NVT/NPT, md in NVE
    rdf_frames: int = 100             # student frames the teacher labels to reweight
    json: str | None = None
    html: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    chunk: int | None = None          # steps per progress update
    progress: bool = True
    overwrite: bool = False           # replace an earlier report of the same name


def rdf_method(plan: RunPlan, config: ValidateConfig) -> str:
    """How the teacher's RDF is obtained: "reweight", "md" or "reference"."""
    if config.reference:
        return "reference"
    if config.rdf_method not in ("auto", "reweight", "md"):
        raise ValidateError(f"--rdf-method must be auto, reweight or md, got "
                            f"`{config.rdf_method}`")
    canonical = plan.ensemble in ("nvt", "npt") and bool(plan.temperature)
    if config.rdf_method == "reweight" and not canonical:
        raise ValidateError(f"--rdf-method reweight needs an NVT or NPT run with a target "
                            f"temperature (this input is {plan.ensemble}); use --rdf-method md")
    if config.rdf_method == "auto":
        return "reweight" if canonical else "md"
    return config.rdf_method


def dump_frames(plan: RunPlan, config: ValidateConfig) -> int:
    """Frames validate dumps: 100, or enough for the reweighted RDF after its warm-up."""
    if config.teacher and rdf_method(plan, config) == "reweight":
        return max(100, int(np.ceil(config.rdf_frames / (1 - RDF_WARMUP_FRACTION))) + 1)
    return 100


def stability(run: RunResult, thresholds: Thresholds, symbols: list[str] | None = None,
              start=None) -> dict:
    """First collapse of the run, if any: the LAMMPS error or blow-up, atoms too close, or,
    given the ``symbols`` of a molecular system, a molecule broken or two bonded together.
    ``start``: the first frame's description (first_frame), when the caller has it."""
    out = {"collapsed": False, "steps_done": run.steps_done}
    if symbols and len(run.positions) > 1 and \
            (start or first_frame(symbols, run)).kind in ("molecular", "molecule"):
        from .analysis.structure import first_molecule_change

        change = first_molecule_change(symbols, run.positions, run.cells)
        out["molecules"] = "intact"
        if change:
            out.update(collapsed=True, step=int(run.frame_steps[change["frame"]]),
                       reason=f"molecules changed: {_count(change['formulas_at_start'])} at "
                              f"the start, {_count(change['formulas_now'])} now (a bond broke "
                              "or formed)")
            out["molecules"] = "changed"
    distances = min_distances(run.positions, run.cells) if len(run.positions) else np.zeros(0)
    if len(distances):
        out["start_min_distance_A"] = float(distances[0])
        out["min_distance_A"] = float(distances.min())
        limit = thresholds.min_distance_fraction * distances[0]
        close = np.nonzero(distances < limit)[0]
        if len(close) and (not out["collapsed"] or run.frame_steps[close[0]] <= out["step"]):
            out.update(collapsed=True, step=int(run.frame_steps[close[0]]),
                       reason=f"atoms closer than {limit:.3f} Å "
                              f"({thresholds.min_distance_fraction:g} x the starting minimum "
                              f"{distances[0]:.3f} Å)")
    if run.collapse and (not out["collapsed"] or run.collapse["step"] < out["step"]):
        out.update(collapsed=True, **run.collapse)
    # where molecules changed, the frames after it are still a real run (chemistry, not a
    # blow-up) until atoms come too close or LAMMPS stops it: the step where that happens
    physical = [int(run.frame_steps[close[0]])] if len(distances) and len(close) else []
    physical += [run.collapse["step"]] if run.collapse else []
    out["physical_until_step"] = min(physical) if physical else None
    if out["collapsed"]:
        out["summary"] = f"collapsed at step {out['step']}: {out['reason']}"
    return out


def _count(formulas: dict[str, int]) -> str:
    """"64 (62 H2O, 1 H3O, 1 HO)": molecules, and how many of each formula."""
    return f"{sum(formulas.values())} (" + ", ".join(f"{n} {name}" for name, n in
                                                     formulas.items()) + ")"


def first_frame(symbols: list[str], run: RunResult):
    """What the run's first frame is (mlff_tools.system.describe; seconds for thousands of
    atoms, so a caller that needs it twice computes it once and passes it on)."""
    from ase import Atoms

    from .system import describe

    return describe(Atoms(symbols, positions=run.positions[0], cell=run.cells[0], pbc=True))


def run_phase(run: RunResult, symbols: list[str], start=None) -> dict:
    """The phase of the run from how its atoms move (measured_phase), except for a single
    molecule, which has none: its atoms' motion is the molecule's rotation and vibration.
    ``start``: the first frame's description (first_frame), when the caller has it."""
    if symbols and (start or first_frame(symbols, run)).molecules == 1:
        return {"phase": "molecule", "reason": "one molecule: its atoms rotate and vibrate, "
                                               "no phase to name"}
    return measured_phase(run.positions, run.cells, run.frame_steps * run.dt_ps, symbols)


def teacher_trajectory(plan: RunPlan, start, teacher, steps: int, dt_ps: float,
                       progress: bool):
    """The teacher's MD in ASE from the student's starting point (positions and velocities,
    when ``start`` has them), in the same ensemble."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    from .progress import progress_bar

    atoms = start.copy()
    atoms.calc = teacher.calculator
    temperature = plan.temperature or 300.0
    if not np.any(atoms.get_momenta()):
        thermalize_momenta(atoms, temperature, rng=np.random.default_rng(0))
        Stationary(atoms)
    dt = dt_ps * 1000 * units.fs
    if plan.ensemble == "nve":
        dynamics = VelocityVerlet(atoms, dt)
    elif plan.ensemble == "npt":
        from ase.md.nose_hoover_chain import IsotropicMTKNPT

        dynamics = IsotropicMTKNPT(atoms, dt, temperature_K=temperature,
                                   pressure_au=(plan.pressure or 0.0) * units.bar,
                                   tdamp=100 * dt, pdamp=1000 * dt)
    else:
        dynamics = Langevin(atoms, dt, temperature_K=temperature, friction=0.01 / units.fs,
                            fixcm=False, rng=np.random.default_rng(1))
    every = max(1, steps // 100)
    positions, cells = [], []
    bar = progress_bar(total=steps, unit="step", desc=f"teacher MD ({teacher.name})",
                       enabled=progress)
    for _ in range(0, steps, every):
        dynamics.run(every)
        bar.update(every)
        positions.append(atoms.positions.copy())
        cells.append(atoms.cell.array.copy())
    bar.close()
    return np.array(positions), np.array(cells)


def label_frames(run: RunResult, symbols: list[str], model: Path, teacher,
                 indexes, progress: bool = True) -> dict:
    """The teacher labels frames of the student's own trajectory; the student is evaluated
    on them (`evaluation.evaluate_frames`). Returns the energies [K] (eV) and forces
    [K, N, 3] of both and the errors. A bar shows the labelling: 200 frames of 192 water
    atoms take SevenNet-0 20-30 minutes on 2 cores."""
    from ase import Atoms

    from .evaluation import evaluate_frames
    from .label import label_atoms
    from .progress import progress_bar

    frames = [label_atoms(Atoms(symbols, positions=run.positions[i], cell=run.cells[i],
                                pbc=True), teacher)
              for i in progress_bar(iterable=indexes, unit="frame",
                                    desc=f"teacher labels ({teacher.name})", enabled=progress)]
    report = evaluate_frames(model, frames)
    return {"frames": np.asarray(indexes, dtype=int),
            "teacher_energy": report["_energies"]["label"],
            "student_energy": report["_energies"]["model"],
            "teacher_forces": report["_forces"]["label"],
            "student_forces": report["_forces"]["model"], "errors": report["overall"]}


def fidelity(labels: dict) -> dict:
    """Teacher vs student on frames of the student's own trajectory (see label_frames)."""
    errors = labels["errors"]
    return {"frames": errors["frames"],
            "energy_mae_mev_per_atom": errors["energy_mae_mev_per_atom"],
            "force_mae_mev_per_A": errors["force_mae_mev_per_A"],
            "force_rmse_mev_per_A": errors["force_rmse_mev_per_A"],
            "teacher_force_mean_abs_mev_per_A":
                1000 * float(np.mean(np.abs(labels["teacher_forces"]))),
            "_parity": (labels["teacher_forces"].ravel(), labels["student_forces"].ravel())}


def force_threshold(thresholds: Thresholds, teacher_scale: float) -> float:
    """The force MAE (meV/Å) a student may have on frames whose teacher forces have mean
    |component| ``teacher_scale`` (meV/Å): the absolute threshold, or the relative one where
    the forces are large. A 2000 K silicon melt has components of ~700 meV/Å, twice a 300 K
    crystal's, and a local student of SevenNet-0 is off by ~90-100 meV/Å there whatever its
    size (fast, accurate, 6 Å: docs/design.md), while its RDF is within 1%."""
    return max(thresholds.force_mae_mev_per_A, thresholds.force_mae_relative * teacher_scale)


PASS, FAIL, UNDECIDED = "pass", "fail", "cannot judge"
ERROR_WIDTH = 2.0     # a check decides once value ± 2 standard errors lies on one side


def _check(name: str, value, threshold, passed: bool, detail: str = "", *, error=None,
           status: str | None = None) -> dict:
    status = status or (PASS if passed else FAIL)
    return {"name": name, "value": value, "error": error, "threshold": threshold,
            "status": status, "passed": status == PASS, "detail": detail}


def _judge(name: str, value: float, error: float, threshold: float, needed_ps, *,
           detail: str = "", scale: float = 1.0) -> dict:
    """A check whose value has a standard error: pass when value + 2 errors is within the
    threshold, fail when value - 2 errors is beyond it, and otherwise "cannot judge: run too
    short", with the run length that would decide: ``needed_ps(shrink)`` for an error
    ``shrink`` times smaller, from how the error shrinks with the length. The error aimed
    at is a quarter of the threshold, or less where the value lies near the threshold: the
    distance between them over the 2 errors (a density 1.78% ± 0.32% against 2% needs an
    8.7 times longer run, not the quarter-of-the-threshold run it already was). ``scale``
    turns the error into the value's units."""
    error = error * scale
    if not (np.isfinite(value) and np.isfinite(error)):
        return _check(name, value, threshold, False, "too few samples to measure it", error=error,
                      status=UNDECIDED)
    if abs(value) - ERROR_WIDTH * error > threshold:
        return _check(name, value, threshold, False, detail, error=error)
    if abs(value) + ERROR_WIDTH * error <= threshold:
        return _check(name, value, threshold, True, detail, error=error)
    # aimed at: the error that decides at this value, at most a quarter of the threshold,
    # and at least a tenth of the error now (a value on the threshold itself never decides)
    target = max(min(threshold / 4, abs(abs(value) - threshold) / ERROR_WIDTH), error / 10)
    return _check(name, value, threshold, False,
                  f"run too short: at least {needed_ps(error / target):.3g} ps for this "
                  f"threshold (its standard error {error:.2g} is too large to tell)",
                  error=error, status=UNDECIDED)


def _needed_for_mean(analysed_ps: float, skipped_ps: float):
    """Run length at which a mean's error is ``shrink`` times smaller (error ~ 1/sqrt(t))."""
    return lambda shrink: skipped_ps + analysed_ps * shrink ** 2


def _verdict(checks: list[dict]) -> tuple[str, int]:
    statuses = {c["status"] for c in checks}
    if FAIL in statuses:
        return FAIL, 1
    return (UNDECIDED, 2) if UNDECIDED in statuses else (PASS, 0)


def _r_max(cell: np.ndarray, limit: float = 6.0) -> float:
    from .structures import cell_heights

    return float(min(limit, 0.5 * min(cell_heights(cell)) - 1e-3))


def validate(config: ValidateConfig) -> dict:
    """Run and judge ``config.input``; returns the report (also written as JSON/HTML if asked).

    The input runs in the report's own folder, ``<html or json stem>.validate`` beside the
    HTML (or JSON), with the files it reads found in its own folder: whatever it writes
    (dumps, logs, data files) lands there, never beside the user's input. Without --html or
    --json it runs in a temporary folder. An existing report is replaced only with
    ``overwrite``.
    """
    anchor = config.html or config.json
    if anchor is None:
        with tempfile.TemporaryDirectory(prefix="mlff-validate-") as scratch:
            report = _validate(config, Path(scratch))
        report["report_dir"] = None
        return report
    anchor = Path(anchor).resolve()
    report_dir = anchor.parent / f"{anchor.stem}.validate"
    existing = [p for p in (report_dir, config.html, config.json) if p and Path(p).exists()]
    if existing and not config.overwrite:
        raise ValidateError(f"'{existing[0]}' exists from an earlier report; pass --overwrite to "
                            "replace it, or name another --html/--json")
    if report_dir.exists():
        shutil.rmtree(report_dir)
    report_dir.mkdir(parents=True)
    return _validate(config, report_dir)


def _validate(config: ValidateConfig, report_dir: Path) -> dict:
    from .model import load_model

    input_path = Path(config.input).resolve()
    plan = plan_run(input_path)
    if not plan.model.is_file():
        raise ValidateError(f"model file '{plan.model}' named by `pair_style mlff` does not exist")
    model = load_model(plan.model)
    thresholds = config.thresholds

    teacher = None
    if config.teacher:
        from .teachers import load_teacher

        teacher = load_teacher(config.teacher)
    run = run_input(plan, input_path.parent, report_dir,
                    frames=dump_frames(plan, config), chunk=config.chunk,
                    progress=config.progress,
                    blowup_factor=thresholds.blowup_factor)
    has_thermo = "Step" in run.thermo and len(run.thermo["Step"]) >= 2
    if not has_thermo and run.collapse is None:
        raise ValidateError("the run produced no thermo output to judge")
    symbols = [plan.elements[t - 1] for t in run.types] if len(run.types) else []

    report: dict = {
        "input": str(input_path), "model": str(plan.model),
        "model_metadata": model.metadata.to_dict(), "ensemble": plan.ensemble,
        "target_temperature_K": plan.temperature, "target_pressure_bar": plan.pressure,
        "natoms": run.natoms, "timestep_fs": run.dt_ps * 1000, "steps_planned": plan.steps,
        "steps_done": run.steps_done, "wall_seconds": run.seconds,
        "atom_steps_per_s": run.natoms * run.steps_done / max(run.seconds, 1e-9),
        "teacher": teacher.metadata() if teacher else None, "reference": config.reference,
        "thresholds": dataclasses.asdict(thresholds), "report_dir": str(report_dir),
    }
    checks = []
    start = first_frame(symbols, run) if symbols and len(run.positions) > 1 else None
    stable = stability(run, thresholds, symbols, start)
    report["stability"] = stable
    checks.append(_check("stability", stable.get("summary", "stable"), "no collapse",
                         not stable["collapsed"], stable.get("message", "")))

    if not has_thermo:
        pass
    elif plan.ensemble == "nve":
        report["nve"] = nve = energy_metrics(run.thermo, run.natoms, run.dt_ps)
        error = nve["nve_drift_error_mev_per_atom_ps"]
        threshold = thresholds.nve_drift_mev_per_atom_ps
        # a slope's error shrinks as t^-3/2
        checks.append(_judge(
            "nve_drift_mev_per_atom_ps", nve["nve_drift_mev_per_atom_ps"], error, threshold,
            lambda shrink: nve["warmup_ps"] + nve["analysed_ps"] * shrink ** (2 / 3)))
        ratio = nve["fluctuation_ratio"]
        checks.append(_check("nve_fluctuation_ratio", ratio, thresholds.nve_fluctuation_ratio,
                             ratio <= thresholds.nve_fluctuation_ratio))
    elif plan.ensemble in ("nvt", "npt"):
        report["thermostat"] = metrics = ensemble_metrics(run.thermo, run.dt_ps)
        if plan.temperature:
            error = metrics["mean_temperature_K_error"] / plan.temperature
            checks.append(_judge(
                "temperature_relative_error",
                abs(metrics["mean_temperature_K"] - plan.temperature) / plan.temperature,
                error, thresholds.temperature_relative,
                _needed_for_mean(metrics["temperature_K_averaged_ps"],
                                 metrics["temperature_K_equilibrated_ps"]),
                detail=f"mean over the last {metrics['temperature_K_averaged_ps']:.3g} ps, "
                       f"after {metrics['temperature_K_equilibrated_ps']:.3g} ps of "
                       "equilibration"))
        if plan.ensemble == "npt" and plan.pressure is not None:
            error = metrics["mean_pressure_bar_error"]
            checks.append(_judge(
                "pressure_error_bar", abs(metrics["mean_pressure_bar"] - plan.pressure), error,
                thresholds.pressure_bar,
                _needed_for_mean(metrics["pressure_bar_averaged_ps"],
                                 metrics["pressure_bar_equilibrated_ps"]),
                detail=f"mean over the last {metrics['pressure_bar_averaged_ps']:.3g} ps"))

    usable = len(run.positions) > 1 and not stable["collapsed"]
    if usable:    # the phase the run is in, from how its atoms move (not from its temperature)
        report["phase"] = run_phase(run, symbols, start)
    method = rdf_method(plan, config) if (teacher or config.reference) else None
    labels, curves = None, {}
    if teacher and usable:
        # reweighting needs teacher energies on many frames; the fidelity check reuses them
        if method == "reweight":
            first = int(len(run.positions) * RDF_WARMUP_FRACTION)
            count = min(config.rdf_frames, len(run.positions) - first)
        else:
            first, count = len(run.positions) // 10, config.fidelity_frames
        indexes = np.unique(np.linspace(first, len(run.positions) - 1, count).astype(int))
        labels = label_frames(run, symbols, plan.model, teacher, indexes, config.progress)
        # kept, so the reweighting can be redone without the teacher
        report["teacher_labels"] = {
            "steps": run.frame_steps[labels["frames"]].tolist(),
            "teacher_energy_eV": labels["teacher_energy"].tolist(),
            "student_energy_eV": labels["student_energy"].tolist()}
    topology = None
    if usable and start is not None and start.kind in ("molecular", "molecule"):
        from ase import Atoms

        topology = molecular_topology(Atoms(symbols, positions=run.positions[0],
                                            cell=run.cells[0], pbc=True))
    if labels is not None and method == "reweight":
        reweighting = Reweighting.from_labels(labels, plan.temperature, run.natoms,
                                              thresholds.rdf_effective_fraction,
                                              thresholds.rdf_linear_response_kt)
        frames = labels["frames"]
        report["rdf"], curves = reweighted_rdfs(run, symbols, reweighting, frames,
                                                _r_max(run.cells[0]))
        if plan.ensemble in ("npt", "npt-tri"):
            report["density"] = reweighted_density(run, symbols, frames, reweighting)
        if topology is not None:
            report["geometry"] = compare_geometry(
                frame_geometry(run.positions[frames], run.cells[frames], topology),
                reweighting=reweighting)
    elif usable and (teacher or config.reference):
        report["rdf"], curves, geometry = _compare_rdfs(plan, run, symbols, teacher, config,
                                                        topology)
        if geometry is not None:
            report["geometry"] = geometry
    run_ps = run.steps_done * run.dt_ps

    def judged_over_run(name: str, value: float, error: float, threshold: float,
                        detail: str = "") -> dict:
        """_judge for a mean over the run after its warm-up (RDFs, geometry, density)."""
        return _judge(name, value, error, threshold,
                      _needed_for_mean((1 - RDF_WARMUP_FRACTION) * run_ps,
                                       RDF_WARMUP_FRACTION * run_ps),
                      detail=detail)

    for pair, entry in report.get("rdf", {}).items():
        if "standard_error_percent" in entry:
            detail = ""
            if entry.get("noise_floor_percent") is not None:
                detail = (f"{entry['raw_error_percent']:.2g}% between the curves, of which "
                          f"sampling noise alone gives about {entry['noise_floor_percent']:.2g}%"
                          " (the weights shifted in time against the frames); the value is "
                          "the rest")
            checks.append(judged_over_run(f"rdf_error_percent {pair}", entry["error_percent"],
                                          entry["standard_error_percent"],
                                          thresholds.rdf_error_percent, detail))
        else:
            checks.append(_check(f"rdf_error_percent {pair}", entry["error_percent"],
                                 thresholds.rdf_error_percent,
                                 entry["error_percent"] <= thresholds.rdf_error_percent))
        if entry.get("method", EXPONENTIAL) != EXPONENTIAL:
            value = entry["per_atom_energy_error_over_kt"]
            checks.append(_check(
                f"rdf_linear_response {pair}", value, thresholds.rdf_linear_response_kt,
                value <= thresholds.rdf_linear_response_kt,
                f"the exponential weights left {entry['exponential_effective_fraction']:.0%} "
                f"of the {entry['student_frames']} frames (energy difference spread "
                f"{entry['energy_difference_std_mev_per_atom']:.2g} meV/atom over the cell), so "
                "the teacher's average is its linear response, <A> - Cov(A, dE)/kT; it holds "
                "while each atom's energy error is small against kT (the value, in kT; beyond "
                "the threshold the exponential weights are kept and judged instead)"))
        elif "effective_fraction" in entry:
            fraction = entry["effective_fraction"]
            checks.append(_check(
                f"rdf_effective_fraction {pair}", fraction, thresholds.rdf_effective_fraction,
                fraction >= thresholds.rdf_effective_fraction,
                f"{entry['effective_frames']:.1f} of {entry['student_frames']} frames carry "
                "the teacher's average; below the threshold the student samples other states "
                "than the teacher would (energy difference spread "
                f"{entry['energy_difference_std_mev_per_atom']:.2g} meV/atom"
                + (f"; each atom's energy error, {entry['per_atom_energy_error_over_kt']:.2f} "
                   f"kT, is beyond the {thresholds.rdf_linear_response_kt:g} kT to which "
                   "linear-response weights are trusted"
                   if entry.get("per_atom_energy_error_over_kt") is not None
                   and fraction < thresholds.rdf_effective_fraction else "") + ")"))
    if "density" in report:
        density = report["density"]
        checks.append(judged_over_run(
            "density_relative_error", density["relative_error"],
            density["standard_error"] / density["teacher_g_cm3"], thresholds.density_relative,
            detail=f"student {density['student_g_cm3']:.4g} g/cm³, teacher "
                   f"{density['teacher_g_cm3']:.4g} ({density['source']})"))
    for name, entry in report.get("geometry", {}).items():
        bond = entry["kind"] == "bond"
        check = f"{'bond_length_A' if bond else 'bond_angle_deg'} {name}"
        threshold = thresholds.bond_length_A if bond else thresholds.bond_angle_deg
        detail = (f"mean {entry['student']:.4g} against the teacher's {entry['teacher']:.4g} "
                  f"{entry['unit']} (spread {entry['student_width']:.3g} against "
                  f"{entry['teacher_width']:.3g}; {entry['source']})")
        if "standard_error" in entry:
            checks.append(judged_over_run(check, entry["error"], entry["standard_error"],
                                          threshold, detail))
        else:
            checks.append(_check(check, entry["error"], threshold, entry["error"] <= threshold,
                                 detail))
    parity = None
    if labels is not None:
        fid = fidelity(labels)
        parity = fid.pop("_parity")
        report["fidelity"] = fid
        checks.append(_check("fidelity_energy_mae_mev_per_atom", fid["energy_mae_mev_per_atom"],
                             thresholds.energy_mae_mev_per_atom,
                             fid["energy_mae_mev_per_atom"] <= thresholds.energy_mae_mev_per_atom))
        scale = fid["teacher_force_mean_abs_mev_per_A"]
        limit = force_threshold(thresholds, scale)
        share = (f"{100 * fid['force_mae_mev_per_A'] / scale:.0f}% of " if scale > 0 else "")
        checks.append(_check("fidelity_force_mae_mev_per_A", fid["force_mae_mev_per_A"], limit,
                             fid["force_mae_mev_per_A"] <= limit,
                             f"{share}the teacher's mean |force component| {scale:.0f} meV/Å; "
                             f"the threshold is {thresholds.force_mae_mev_per_A:g} meV/Å or "
                             f"{100 * thresholds.force_mae_relative:g}% of that, the larger"))

    report["checks"] = checks
    report["verdict"], report["exit_code"] = _verdict(checks)
    if config.json:
        write_text(config.json, json.dumps(jsonable(report), indent=1))
    if config.html:
        from .report import write_html

        write_html(Path(config.html), report, run, curves, parity, report_dir)
    return report


def reweighted_density(run: RunResult, symbols: list[str], frames,
                       reweighting: Reweighting) -> dict:
    """The mean density (g/cm³) of an NPT run's labelled ``frames`` against the teacher's,
    the same frames reweighted (the pV term is common to both potentials)."""
    from ase.data import atomic_masses, atomic_numbers
    from ase.units import _amu

    grams = sum(atomic_masses[atomic_numbers[s]] for s in symbols) * _amu * 1000
    density = grams / (np.abs(np.linalg.det(run.cells[frames])) * 1e-24)
    mean = reweighted_mean(density, reweighting)
    return {"student_g_cm3": mean["student"], "teacher_g_cm3": mean["teacher"],
            "relative_error": abs(mean["student"] - mean["teacher"]) / mean["teacher"],
            "standard_error": mean["standard_error"], "frames": int(len(frames)),
            "source": f"teacher energies on {len(frames)} student frames, reweighted "
                      f"({reweighting.method})"}


def _compare_rdfs(plan, run, symbols, teacher, config, topology=None):
    """Student RDFs against the reference's, over matching windows after a warm-up, and, given
    the molecules' ``topology``, their bond lengths and angles (else None).

    Against teacher MD from the same start, both trajectories are cut to the
    teacher's length, so the same stretch of time (transients included) is
    compared; the first ``RDF_WARMUP_FRACTION`` of it is dropped from both.
    """
    r_max = _r_max(run.cells[0])
    positions, cells = run.positions, run.cells
    if config.reference:
        import ase.io

        frames = ase.io.read(config.reference, ":")
        ref_symbols = frames[0].get_chemical_symbols()
        ref_positions = np.array([f.positions for f in frames])
        ref_cells = np.array([f.cell.array for f in frames])
        source = f"reference {config.reference}"
    else:
        from ase import Atoms, units

        start = Atoms(symbols, positions=run.positions[0], cell=run.cells[0], pbc=True)
        if len(run.start_velocities) == len(start):   # Å/ps -> ASE's velocity unit
            start.set_velocities(run.start_velocities / (1000 * units.fs))
        ref_positions, ref_cells = teacher_trajectory(plan, start, teacher, config.teacher_steps,
                                                      run.dt_ps, config.progress)
        ref_symbols = symbols
        source = f"teacher MD, {config.teacher_steps} steps"
        window = run.frame_steps - run.frame_steps[0] <= config.teacher_steps
        positions, cells = positions[window], cells[window]
    keep_student = keep = slice(int(len(positions) * RDF_WARMUP_FRACTION), None)
    student = rdfs(positions[keep], cells[keep], symbols, r_max)
    keep = slice(int(len(ref_positions) * RDF_WARMUP_FRACTION), None)
    reference = rdfs(ref_positions[keep], ref_cells[keep], ref_symbols, r_max)
    out = {}
    for pair in student:
        if pair in reference:
            out[pair] = {"error_percent": rdf_error_percent(student[pair], reference[pair]),
                         "source": source, "r_max_A": r_max,
                         "student_frames": int(len(positions[keep]))}
    geometry = None
    if topology is not None and ref_symbols == symbols:
        geometry = compare_geometry(
            frame_geometry(positions[keep_student], cells[keep_student], topology),
            reference=frame_geometry(ref_positions[keep], ref_cells[keep], topology))
    return out, {pair: (student[pair], reference.get(pair)) for pair in student}, geometry

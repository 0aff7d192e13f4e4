"""GPU checks and benchmarks of pair_style mlff, run by benchmarks/gpu/run.sh.

Parity: `device cuda` (graph built on the GPU) against `device cpu graph host evaluator
torch` in the same LAMMPS, float64 to 1e-10 and float32 to 1e-5 relative, on orthogonal and
triclinic boxes, on 1 rank, 2 ranks sharing the GPU and 4 ranks of which two own no atoms.
With --style mlff/kk the GPU side runs under Kokkos (`-k on g 1 -sf kk -pk kokkos newton on
neigh half`), and the students also with `evaluator native` (their own kernel, one GPU
thread per atom, against torch on one core).
Speed: atom-steps/s of NVE on Si for the SW reference model and random-weight `fast` and
`accurate` students, float32 and float64, at 4k to 2M atoms (under mlff/kk the students'
native kernel first), against one CPU core; and the
seconds per epoch of `mlff-tools train` on the GPU against one CPU core; and the `fast`
students compiled for the GPU (`mlff-tools compile --device cuda`): compile time, `.pt2` ==
`.pt` in LAMMPS, and the compiled speed at 262k atoms.

    python benchmarks/gpu/checks.py --lmp LMP --plugin-dir DIR --sw Si.sw --out OUT [--dry-run]

--dry-run uses `device cpu graph device` in place of the GPU (this machine has none) and
small sizes: it proves the script, not the GPU. Prints one line per result and writes
OUT/gpu_checks.json; exits 1 if a parity check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

TOL = {"float64": 1e-10, "float32": 1e-5}    # relative to the largest value (energy per atom)
SPEED_SECONDS = 2                            # timed part of each speed run
# steps before it: TorchScript's profiling executor re-specialises the model's fused kernels
# around its 16th-19th call (two calls of 0.7-1.0 s each on an H200, 27 Nov 2026, at 4k, 262k
# and 1M atoms alike), which a 2 s window after 10 steps counted as the speed
WARM_UP = 30
PARALLEL = 6                                 # parity cases at once
# libtorch named: `evaluator auto` runs a student natively on a CPU and under mlff/kk on a
# host backend, where the dry run puts the "gpu" side
TORCH = "evaluator torch"


def export_models(folder: Path, sw_file: Path) -> dict[str, Path]:
    """SW reference (float64, float32) and random-weight students (fast/accurate, both dtypes)."""
    from compile_probe import student
    from mlff_tools.model.student import PRESETS
    from mlff_tools.model.sw import export_sw

    models = {f"sw{bits}": export_sw(sw_file, folder / f"sw{bits}.pt", dtype=f"float{bits}")
              for bits in (64, 32)}
    for preset in PRESETS:
        for bits in (64, 32):
            models[f"{preset}{bits}"] = student(folder, preset, bits)
    return models


def gpu_keywords(args) -> str:
    """The plain style's keywords for the GPU (its stand-in on the CPU in a dry run)."""
    return "device cpu graph device" if args.dry_run else "device cuda"


def lammps(args, commands: list[str], folder: Path, *, nprocs=1, kokkos=False,
           env=None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "in.lmp"
    script.write_text("\n".join(commands) + "\n")
    command = [str(args.lmp), "-nocite", "-log", "none", "-in", str(script)]
    if kokkos:    # one GPU (one OpenMP thread in a dry run)
        command += ["-k", "on", *(["t", "1"] if args.dry_run else ["g", "1"]), "-sf", "kk",
                    "-pk", "kokkos", "newton", "on", "neigh", "half"]
    if nprocs > 1:
        command = [str(Path(sys.executable).parent / "mpirun"), "-np", str(nprocs), *command]
    env = {**os.environ, "LAMMPS_PLUGIN_PATH": str(args.plugin_dir), "OMP_NUM_THREADS": "1",
           **(env or {})}
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env,
                          timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"lmp failed in {folder}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


def single_point(args, model: Path, data: Path, folder: Path, pair_extra: str, *, nprocs=1,
                 kokkos=False, before=(), env=None):
    """Energy, pressure tensor and forces (by atom id) of one structure."""
    dump = folder / "forces.dump"
    out = lammps(args, ["units metal", *before, f"read_data {data}",
                        f"pair_style mlff {model} {pair_extra}", "pair_coeff * * Si",
                        f"dump f all custom 1 {dump} id fx fy fz",
                        "dump_modify f format float %.17g sort id", "run 0",
                        'print "RESULT $(pe:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) '
                        '$(pxy:%.17g) $(pxz:%.17g) $(pyz:%.17g)"'],
                 folder, nprocs=nprocs, kokkos=kokkos, env=env)
    values = [line.split()[1:] for line in out.splitlines() if line.startswith("RESULT ")][0]
    return float(values[0]), np.array(values[1:], float), np.loadtxt(dump, skiprows=9)[:, 1:4]


def write_structures(folder: Path) -> dict[str, tuple[Path, int]]:
    from ase.build import bulk
    from ase.geometry import cellpar_to_cell

    from mlff_tools.lammps import write_data

    folder.mkdir(parents=True, exist_ok=True)
    structures = {}
    for name in ("orthogonal", "triclinic", "corner"):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((3, 3, 3))
        if name == "triclinic":
            a, b, c, alpha, beta, gamma = atoms.cell.cellpar()
            atoms.set_cell(cellpar_to_cell([a, b * 1.02, c * 0.98, alpha - 7, beta + 5,
                                            gamma - 9]), scale_atoms=True)
        if name == "corner":    # a cluster in a long box: two of four ranks own nothing
            atoms = atoms[:64]
            atoms.set_cell(np.diag([4 * 10.862, 10.862, 10.862]))
        atoms.rattle(0.1, seed=1)
        atoms.wrap()
        structures[name] = (write_data(atoms, folder / f"{name}.data", ["Si"]), len(atoms))
    return structures


def parity(args, models, folder: Path) -> list[dict]:
    gpu = gpu_keywords(args)
    kokkos = args.style == "mlff/kk"
    if kokkos:
        gpu = ""    # mlff/kk runs the model where Kokkos runs
    structures = write_structures(folder)
    cases = [(m, s, n, "", False) for m in ("sw64", "sw32", "fast64", "fast32", "accurate64")
             for s in ("orthogonal", "triclinic") for n in (1, 2)]
    cases += [("sw64", "corner", 4, "", False), ("fast64", "corner", 4, "", False)]
    if kokkos:    # the students' own kernel (evaluator native) against torch on one core
        cases += [(m, s, n, "evaluator native", False) for m in ("fast64", "fast32", "accurate64")
                  for s in ("orthogonal", "triclinic") for n in (1, 2)]
        cases += [("fast64", "corner", 4, "evaluator native", False)]
        # and with each atom's grid in its block's shared memory (MLFF_NATIVE_SHARED=1)
        cases += [(m, s, n, "evaluator native", True) for m in ("fast64", "fast32", "accurate64")
                  for s, n in (("triclinic", 1), ("orthogonal", 2))]
    def case(model, structure, nprocs, extra, shared):
        data, natoms = structures[structure]
        before = ["processors 4 1 1"] if structure == "corner" else []
        kind = ("-native" if extra else "") + ("-shared" if shared else "")
        where = folder / f"{model}-{structure}-{nprocs}{kind}"
        # the reference: libtorch on one core (a student's .pt would run natively by default)
        ref = single_point(args, models[model], data, where / "cpu",
                           "device cpu graph host evaluator torch")
        # torch named: under mlff/kk on a host backend (the dry run) auto would run native
        got = single_point(args, models[model], data, where / "gpu",
                           f"{gpu} {extra or TORCH}".strip(),
                           nprocs=nprocs, kokkos=kokkos, before=before,
                           env={"MLFF_NATIVE_SHARED": "1"} if shared else None)
        dtype = "float32" if model.endswith("32") else "float64"
        errors = {
            "energy": abs(got[0] - ref[0]) / natoms / max(abs(ref[0]) / natoms, 1.0),
            "pressure": np.abs(got[1] - ref[1]).max() / np.abs(ref[1]).max(),
            "forces": np.abs(got[2] - ref[2]).max() / np.abs(ref[2]).max(),
        }
        ok = all(v < TOL[dtype] for v in errors.values())
        label = model + (" native" if extra else "") + ("-shared" if shared else "")
        print(f"parity {'PASS' if ok else 'FAIL'} {label:18s} {structure:10s} {nprocs} rank(s): "
              + " ".join(f"{k} {v:.1e}" for k, v in errors.items()), flush=True)
        return {"model": model, "structure": structure, "ranks": nprocs, "ok": ok,
                "evaluator": "native" if extra else "torch", "shared_grid": shared,
                **{k: float(v) for k, v in errors.items()}}

    # the cases share the GPU: run several at once (parity, not speed)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = list(pool.map(lambda c: case(*c), cases))
    return results


def speed_plan(dry_run: bool, large: bool, kokkos: bool = False) -> list[tuple[str, int, str]]:
    """(model, atoms, where) in order of importance, so a run cut short by the deadline keeps
    the figures that matter: the `fast` float32 student first (the target), each model
    against one CPU core; with `large`, the 1M+ sizes (run after the profile and training).
    where: "gpu" the style under test, "gpu-noopt" the same with MLFF_JIT_OPTIMIZE=0
    (TorchScript without its profiling executor and fusion: mlff/kk at 262k atoms was as slow
    per step as at 1M), "plain" `pair_style mlff device cuda` in the same LAMMPS (the
    baseline of mlff/kk), "native" mlff/kk with `evaluator native` (the student's own kernel,
    first: the likeliest way to the target), "native-shared" the same with each atom's grid
    in its block's shared memory (MLFF_NATIVE_SHARED=1), "cpu" one core."""
    if kokkos:
        if dry_run:
            return [] if large else [("fast32", 4096, "native"),
                                     ("fast32", 4096, "native-shared")] + [
                (m, n, w) for m in ("sw32", "fast32")
                for n, w in ((512, "gpu"), (4096, "gpu"), (4096, "plain"))
            ] + [("fast32", 512, "gpu-noopt")]
        if large:
            return [("fast32", 2097152, "native"), ("fast32", 4194304, "native"),
                    ("fast32", 2097152, "gpu"), ("accurate32", 1048576, "gpu"),
                    ("fast64", 1048576, "gpu"), ("fast32", 3375000, "gpu")]
        return [("fast32", 262144, "native"), ("fast32", 262144, "native-shared")] + [
            ("fast32", n, "native") for n in (1048576, 4096, 32768)] + [
            ("accurate32", 262144, "native"), ("accurate32", 262144, "native-shared"),
            ("fast64", 262144, "native"), ("fast32", 1048576, "native-shared")] + [
            ("fast32", n, "gpu") for n in (4096, 32768, 262144, 1048576)] + [
            ("fast32", 262144, "gpu-noopt"), ("fast32", 1048576, "gpu-noopt"),
            ("fast32", 262144, "plain"), ("sw32", 262144, "gpu"), ("sw32", 1048576, "gpu"),
            ("accurate32", 262144, "gpu"), ("fast64", 262144, "gpu"), ("sw32", 262144, "plain")]
    if dry_run:
        return [] if large else [(m, n, w) for m in ("sw32", "fast32", "fast64", "accurate32")
                                 for n, w in ((512, "gpu"), (4096, "gpu"), (512, "cpu"))]
    if large:
        return [("fast32", 1048576, "gpu"), ("fast32", 2097152, "gpu")] + [
            (m, 1048576, "gpu") for m in ("sw32", "fast64", "accurate32")] + [
            ("fast32", 3375000, "gpu")]    # 4.2M ran out of an H100's 80 GB; 2.1M fit
    plan = [("fast32", n, "gpu") for n in (4096, 32768, 262144)] + [("fast32", 4096, "cpu")]
    for model in ("sw32", "fast64", "accurate32", "accurate64", "sw64"):
        plan += [(model, 4096, "gpu"), (model, 262144, "gpu"), (model, 4096, "cpu")]
    return plan


def lattice_cells(natoms: int) -> int:
    """Cubic diamond cells per edge for about natoms atoms (8 per cell)."""
    return max(1, round((natoms / 8) ** (1 / 3)))


def nve_commands(n: int, model: Path, extra: str, runs: list[str]) -> list[str]:
    """NVE of n^3 cubic cells of diamond Si at 1500 K with the model, then ``runs``."""
    return ["units metal", "lattice diamond 5.431", f"region box block 0 {n} 0 {n} 0 {n}",
            "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855",
            "velocity all create 1500 4928459 loop geom", f"pair_style mlff {model} {extra}",
            "pair_coeff * * Si", "fix nve all nve", "thermo 1000", *runs]


def timed_nve(args, n: int, model: Path, extra: str, folder: Path,
              kokkos: bool = False) -> tuple[float, int, int]:
    """atom-steps/s, atoms and steps of an NVE run stopped by LAMMPS's wall-time limit
    (`timer timeout`) after a few warm-up steps; its loop line counts the steps it made."""
    from mlff_tools.lammps import LOOP_TIME, loop_speed

    out = lammps(args, nve_commands(n, model, extra, [
        f"run {WARM_UP}", f"timer timeout {SPEED_SECONDS} every 1", "run 1000000"]), folder,
        kokkos=kokkos)
    rate, count = loop_speed(out)
    return rate, count, int(LOOP_TIME.findall(out)[-1][1])


def speed(args, models, folder: Path, saved=lambda results: None, large=False,
          results=None) -> list[dict]:
    """NVE atom-steps/s: a few warm-up steps, then a run stopped by LAMMPS's wall-time limit
    (`timer timeout`), whose loop line counts the steps it made."""
    gpu = gpu_keywords(args)
    kokkos = args.style == "mlff/kk"
    results = [] if results is None else results
    for model, natoms, where in speed_plan(args.dry_run, large, kokkos):
        if time.time() > args.deadline - 25:
            print(f"speed {model} {natoms} {where}: skipped (deadline)", flush=True)
            continue
        style = f"{'' if kokkos else gpu} {TORCH}".strip()
        extra = {"gpu": style, "gpu-noopt": style, "plain": f"{gpu} {TORCH}",
                 "cpu": "device cpu", "native": "evaluator native",
                 "native-shared": "evaluator native"}[where]
        n = lattice_cells(natoms)
        start = time.perf_counter()
        if where == "gpu-noopt":
            os.environ["MLFF_JIT_OPTIMIZE"] = "0"
        if where == "native-shared":
            os.environ["MLFF_NATIVE_SHARED"] = "1"
        try:
            rate, count, nsteps = timed_nve(args, n, models[model], extra,
                                            folder / f"{model}-{natoms}-{where}",
                                            kokkos=kokkos and where in (
                                                "gpu", "gpu-noopt", "native", "native-shared"))
        except (RuntimeError, subprocess.TimeoutExpired) as error:   # out of memory, say
            print(f"speed {model} {natoms} {where}: failed: {str(error)[-400:]}", flush=True)
            results.append({"model": model, "atoms": 8 * n**3, "where": where,
                            "failed": str(error)[-400:]})
            continue
        finally:
            os.environ.pop("MLFF_JIT_OPTIMIZE", None)
            os.environ.pop("MLFF_NATIVE_SHARED", None)
        results.append({"model": model, "atoms": count, "where": where, "steps": nsteps,
                        "atom_steps_per_s": rate, "wall_s": time.perf_counter() - start})
        print(f"speed {model:11s} {count:8d} atoms {where}: {rate:.3e} atom-steps/s "
              f"({nsteps} steps)", flush=True)
        saved(results)
    return results


def profile(args, models, folder: Path) -> list[dict]:
    """MLFF_PROFILE=1: ms per call in upload, graph, model and scatter (synchronised per
    phase, so slower than the speed runs) for the SW model and the `fast` student; the
    plain style, also in a Kokkos LAMMPS."""
    gpu = gpu_keywords(args)
    natoms = 4096 if args.dry_run else 262144
    results = []
    for model in ("sw32", "fast32"):
        if time.time() > args.deadline - 20:
            break
        n = lattice_cells(natoms)
        os.environ["MLFF_PROFILE"] = "1"
        try:
            out = lammps(args, nve_commands(n, models[model], gpu, ["run 20"]),
                         folder / f"{model}-{natoms}")
        finally:
            del os.environ["MLFF_PROFILE"]
        lines = [line for line in out.splitlines() if line.startswith("mlff profile")]
        print(f"profile {model} {8 * n**3} atoms: {lines}", flush=True)
        results.append({"model": model, "atoms": 8 * n**3, "profile": lines})
    return results


def steps(args, models, folder: Path) -> list[dict]:
    """Wall time of every step of the `fast` float32 student from the first one (thermo
    `cpu` each step), at 262k atoms (with and without TorchScript's optimiser) and at 1M:
    mlff/kk ran 262k atoms as slowly per step as 1M after 3 warm-up steps (26 Nov 2026), and
    the profile of `device cuda` at 262k averaged 141 ms per model call over 21 calls. Which
    steps are slow says whether it is a one-time cost (a TorchScript re-specialisation as the
    edge count changes, a neighbour-list rebuild) or a cost of every step. MLFF_PROFILE=1 is
    on: the style's own split of a step (mlff/kk: edges, model, tally; fenced per phase) is
    logged at the end of each run. 4096 atoms: the floor of about 25 ms per step that the
    small systems showed."""
    kokkos = args.style == "mlff/kk"
    gpu = "" if kokkos else gpu_keywords(args)
    sizes = [(4096, "1", ""), (4096, "0", "")] if args.dry_run else \
        [(262144, "1", ""), (1048576, "1", ""), (4096, "1", ""), (262144, "0", "")]
    if kokkos:    # the student's own kernel first: its split of a step (edges, model, tally)
        sizes.insert(0, (sizes[0][0], "1", "evaluator native"))
    results = []
    for natoms, optimize, extra in sizes:
        label = f"fast32{' native' if extra else ''} {natoms}"
        if time.time() > args.deadline - 30:
            print(f"steps {label}: skipped (deadline)", flush=True)
            continue
        n = lattice_cells(natoms)
        os.environ["MLFF_JIT_OPTIMIZE"] = optimize
        os.environ["MLFF_PROFILE"] = "1"
        try:
            keywords = f"{gpu} {extra or TORCH}".strip()
            out = lammps(args, nve_commands(n, models["fast32"], keywords, [
                "thermo_style custom step cpu", "thermo 1", "run 40"]),
                folder / f"fast32-{natoms}-opt{optimize}{'-native' if extra else ''}",
                kokkos=kokkos)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"steps {label}: failed: {str(error)[-400:]}", flush=True)
            continue
        finally:
            os.environ.pop("MLFF_JIT_OPTIMIZE", None)
            os.environ.pop("MLFF_PROFILE", None)
        wall = [float(line.split()[1]) for line in out.splitlines()
                if len(line.split()) == 2 and line.split()[0].isdigit()]
        ms = np.diff(wall) * 1e3
        builds = [line for line in out.splitlines() if line.startswith("Neighbor list builds")]
        split = [line for line in out.splitlines() if "profile (" in line]
        entry = {"atoms": 8 * n**3, "jit_optimize": optimize, "ms_per_step": ms.tolist(),
                 "evaluator": "native" if extra else "torch",
                 "neighbour_builds": builds[-1] if builds else None, "profile": split}
        results.append(entry)
        print(f"steps {label} atoms, MLFF_JIT_OPTIMIZE={optimize}: ms per step "
              f"{' '.join(f'{t:.0f}' for t in ms)}; median of the last 20 "
              f"{np.median(ms[-20:]):.1f} ms; {entry['neighbour_builds']}; {split}", flush=True)
    return results


COMPILED = ("fast64", "fast32")
COMPILE_WAIT_S = 150     # the most the `compiled` stage waits for the background compiles


def _text(output) -> str:
    """A stopped child's captured output as text (bytes, or None where there was none)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def packages(args, models, folder: Path) -> list[dict]:
    """`mlff-tools compile --device cuda` (cpu in a dry run) of the `fast` students into
    folder/NAME.pt2 beside a copy of NAME.pt, with the compile time in folder/NAME.json: a
    stage that needs no LAMMPS, so run.sh runs it while LAMMPS builds.

    Each compile runs in its own process with faulthandler on: under torch 2.11+cu130 it
    ended with a segmentation fault (26 Nov 2026), which must not take the other checks with
    it, and whose Python stack says where it died. A crash is retried once with one inductor
    compile thread (no subprocess pool), the first suspect. (Since 29 Nov `compile` itself
    answers a crash of the loader by packaging the code another way, up to four compiles of
    ~90 s on the GPU: a compile is stopped where it would run past the deadline.)"""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for name in COMPILED:
        shutil.copy(models[name], folder / f"{name}.pt")
        entry = {"model": name}
        for attempt, extra in enumerate(({}, {"TORCHINDUCTOR_COMPILE_THREADS": "1"})):
            started = time.perf_counter()
            try:
                run = subprocess.run(
                    [sys.executable, "-X", "faulthandler", "-m", "mlff_tools.cli", "compile",
                     str(folder / f"{name}.pt"), "-o", str(folder / f"{name}.pt2"),
                     "--device", "cpu" if args.dry_run else "cuda", "--overwrite"],
                    capture_output=True, text=True, env={**os.environ, **extra},
                    cwd=Path(__file__).resolve().parents[2],
                    timeout=max(60.0, args.deadline - time.time() - 120))
            except subprocess.TimeoutExpired as stopped:
                run = subprocess.CompletedProcess(stopped.cmd, 124, _text(stopped.stdout),
                                                  _text(stopped.stderr) + "\nstopped: deadline")
            # faulthandler's list of extension modules says nothing about where it died
            tail = "\n".join(line for line in (run.stdout + run.stderr).splitlines()
                             if not line.startswith("Extension modules:"))[-3000:]
            (folder / f"{name}-compile-{attempt}.log").write_text(run.stdout + run.stderr)
            if run.returncode == 0:
                entry.update(compile_s=time.perf_counter() - started, settings=extra)
                print(f"compiled {name}: {entry['compile_s']:.0f} s to compile"
                      f"{' with ' + str(extra) if extra else ''}", flush=True)
                break
            entry.setdefault("failures", []).append(
                {"settings": extra, "returncode": run.returncode, "output": tail})
            print(f"compiled {name}: compile failed (exit {run.returncode}"
                  f"{', ' + str(extra) if extra else ''}):\n{tail}", flush=True)
            if run.returncode >= 0:
                break         # an error, not a crash: the same settings will not change it
        if "compile_s" not in entry:
            entry["failed"] = entry["failures"][-1]["output"][-400:]
        (folder / f"{name}.json").write_text(json.dumps(entry))
        results.append(entry)
    return results


def compiled(args, models, folder: Path) -> list[dict]:
    """The `fast` students compiled for the GPU (by the `packages` stage, here or in the
    background while LAMMPS built: args.packages): `.pt2` == `.pt` in LAMMPS on the GPU
    (float64 1e-10, float32 1e-5), and the compiled float32 student's speed beside the
    TorchScript one at 262k atoms; plain style, also in a Kokkos LAMMPS."""
    extra = gpu_keywords(args)
    kokkos = args.style == "mlff/kk"
    built = args.packages or folder / "packages"
    if args.packages is None:
        packages(args, models, built)
    folder.mkdir(parents=True, exist_ok=True)
    structures = write_structures(folder)
    results = []
    waiting_since = time.time()
    for name in COMPILED:
        # the background compile may still be at work: wait for it, but not past a few
        # minutes, so that a compile that hangs leaves time for the stages after this one
        give_up = min(args.deadline - 60, waiting_since + COMPILE_WAIT_S)
        while not (built / f"{name}.json").exists() and time.time() < give_up:
            time.sleep(2)
        if not (built / f"{name}.json").exists():
            print(f"compiled {name}: no package after waiting {COMPILE_WAIT_S} s; skipped",
                  flush=True)
            results.append({"model": name, "failed": "the compile did not finish in time"})
            break
        made = json.loads((built / f"{name}.json").read_text())
        if "failed" in made:
            results.append(made)
            continue
        seconds, package = made["compile_s"], built / f"{name}.pt2"
        models = {**models, name: built / f"{name}.pt"}
        data, natoms = structures["triclinic"]
        ref = single_point(args, models[name], data, folder / f"{name}-pt", extra)
        dtype = "float32" if name.endswith("32") else "float64"
        entry = {"model": name, "compile_s": seconds, "ok": True,
                 "packaging": made.get("packaging", "default")}
        # the package in the plain style, and under mlff/kk (its inputs Kokkos views)
        for style, keywords in (("", extra), *((("kk_", ""),) if kokkos else ())):
            got = single_point(args, package, data, folder / f"{name}-{style}pt2", keywords,
                               kokkos=bool(style))
            errors = {"energy": abs(got[0] - ref[0]) / natoms / max(abs(ref[0]) / natoms, 1.0),
                      "pressure": float(np.abs(got[1] - ref[1]).max() / np.abs(ref[1]).max()),
                      "forces": float(np.abs(got[2] - ref[2]).max() / np.abs(ref[2]).max())}
            ok = all(v < TOL[dtype] for v in errors.values())
            entry["ok"] = entry["ok"] and ok
            entry.update({f"{style}{k}": v for k, v in errors.items()})
            print(f"compiled {name}: {seconds:.0f} s to compile"
                  + (f" ({entry['packaging']} packaging)" if entry["packaging"] != "default"
                     else "") + "; "
                  f"{'mlff/kk' if style else 'mlff ' + extra} .pt2 == .pt "
                  f"{'PASS' if ok else 'FAIL'} "
                  + " ".join(f"{k} {v:.1e}" for k, v in errors.items()), flush=True)
        if name == "fast32":
            # the plain style; under mlff/kk also the target's sizes (1e7 atom-steps/s at
            # >= 256k atoms: TorchScript's per-operator cost is what a package removes)
            runs = [("", 4096 if args.dry_run else 262144)]
            if kokkos:
                runs += [("kk-", n) for n in ((512, 4096) if args.dry_run
                                              else (4096, 262144, 1048576))]
            for where, natoms in runs:
                if time.time() > args.deadline - 30:
                    break
                n = lattice_cells(natoms)
                for label, path in (("pt", models[name]), ("pt2", package)):
                    rate, count, _ = timed_nve(args, n, path, "" if where else extra,
                                               folder / f"speed-{where}{label}-{natoms}",
                                               kokkos=bool(where))
                    entry[f"atom_steps_per_s_{where}{label}_{count}"] = rate
                print(f"compiled fast32, {'mlff/kk' if where else 'mlff ' + extra}, {count} "
                      f"atoms: .pt {entry[f'atom_steps_per_s_{where}pt_{count}']:.3e}, .pt2 "
                      f"{entry[f'atom_steps_per_s_{where}pt2_{count}']:.3e} atom-steps/s",
                      flush=True)
        results.append(entry)
    return results


def kernels(args, models, folder: Path) -> dict:
    """Where the student's time goes on the GPU: compile_probe.kernels (Python, no LAMMPS)."""
    import compile_probe

    return compile_probe.kernels(folder, "cpu" if args.dry_run else "cuda")


def probe(args, models, folder: Path) -> dict:
    """Why CUDA packages crash (compile_probe.probe): a trivial package and the `fast`
    float32 student compiled, each loaded in a fresh process, gdb's backtrace of a crash. A
    student package that loads is left where the `packages` stage leaves its packages, for
    the `compiled` stage."""
    import compile_probe

    return compile_probe.probe(folder, "cpu" if args.dry_run else "cuda",
                               packages=args.work / "packages", deadline=args.deadline)


def training(args, models, folder: Path) -> list[dict]:
    """Seconds per epoch of `mlff-tools train` (fast preset, 96 frames of 64 Si atoms labelled
    by the SW model, batch 4) on the CPU and on the GPU."""
    import ase.io
    import torch
    from ase.build import bulk

    from mlff_tools.calculator import MLFFCalculator
    from mlff_tools.train import TrainConfig, train

    folder.mkdir(parents=True, exist_ok=True)
    calc = MLFFCalculator(models["sw64"])
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(96):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
        atoms.rattle(rng.uniform(0.03, 0.15), seed=int(rng.integers(1 << 30)))
        atoms.calc = calc
        atoms.get_potential_energy()
        frames.append(atoms)
    ase.io.write(folder / "train.extxyz", frames[:80])
    ase.io.write(folder / "val.extxyz", frames[80:])
    results = []
    devices = ["cpu"] + ([] if args.dry_run or not torch.cuda.is_available() else ["cuda"])
    for device in devices:
        torch.set_num_threads(1)
        result = train(TrainConfig(train=str(folder / "train.extxyz"),
                                   val=str(folder / "val.extxyz"),
                                   output=str(folder / f"student-{device}.pt"), max_epochs=4,
                                   device=device, quiet=True, overwrite=True))
        per_epoch = result.seconds / result.epochs
        results.append({"device": device, "seconds_per_epoch": per_epoch,
                        "epochs": result.epochs})
        print(f"train fast preset, 80 frames x 64 atoms, {device}: {per_epoch:.2f} s/epoch",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmp", type=Path, help="lmp with the plugin's LAMMPS (LAMMPS stages)")
    parser.add_argument("--plugin-dir", type=Path)
    parser.add_argument("--sw", type=Path, required=True, help="Si.sw")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlff-gpu-checks"))
    parser.add_argument("--style", choices=("mlff", "mlff/kk"), default="mlff")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, run in this order: {','.join(STAGES)}")
    parser.add_argument("--packages", type=Path,
                        help="folder where a `packages` stage (in the background) compiles")
    parser.add_argument("--tag", default="", help="suffix of the JSON file's name")
    parser.add_argument("--deadline", type=float, default=time.time() + 1e6,
                        help="seconds since the epoch after which no new speed run starts")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    import torch

    device = "dry run on CPU" if args.dry_run else torch.cuda.get_device_name(0)
    print(f"device: {device}; torch {torch.__version__}; style {args.style}", flush=True)
    stages = args.stages.split(",")
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; known: {','.join(STAGES)}")
    if set(stages) & LAMMPS_STAGES and not (args.lmp and args.plugin_dir):
        parser.error(f"stages {sorted(set(stages) & LAMMPS_STAGES)} need --lmp and --plugin-dir")
    models = export_models(args.work, args.sw)
    kind = "_kk" if args.style == "mlff/kk" else ""
    name = f"gpu_checks{kind}{args.tag}.json"
    report = {"device": device, "style": args.style}

    def save(key, value):    # after each stage: a run cut short keeps what it measured
        report[key] = value
        (args.out / name).write_text(json.dumps(report, indent=1))

    speeds = []
    for stage in stages:
        if stage in ("speed", "large"):
            speed(args, models, args.work / "speed", lambda r: save("speed", r),
                  large=stage == "large", results=speeds)
        elif stage == "training" and time.time() > args.deadline - 40:
            print("training: skipped (deadline)", flush=True)
        else:
            save(stage, STAGES[stage](args, models, args.work / stage))
    failed = [r for r in report.get("parity", []) if not r["ok"]]
    if "parity" in report:
        print(f"parity: {len(report['parity']) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


STAGES = {"parity": parity, "speed": speed, "profile": profile, "steps": steps,
          "packages": packages, "compiled": compiled, "training": training, "large": speed,
          "kernels": kernels, "probe": probe}
LAMMPS_STAGES = {"parity", "speed", "profile", "steps", "compiled", "large"}


if __name__ == "__main__":
    main()

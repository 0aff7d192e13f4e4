"""Probes of the student on the GPU machine in Python only (no LAMMPS): where its time goes,
and why its compiled CUDA packages crash.

Kernels: the random-weight `fast` float32 student (TorchScript, as LAMMPS runs it) on graphs
of rattled diamond Si (4096 atoms, copied side by side to 262k and 1M atoms): ms per call
with and without TorchScript's optimisation, and torch.profiler's table of the kernels that
take the time (the model is about 90% of an `mlff/kk` step, H200, 27 Nov 2026).

Packages: on 26 and 27 Nov 2026 (torch 2.11.0+cu130, H100 and H200) `mlff-tools compile
--device cuda` compiled, and loading the package then ended with a segmentation fault in
`torch._inductor.aoti_load_package`, in a fresh process too. This compiles (1) trivial
models: a linear layer alone (is any CUDA package loadable here?) and with each kind of
constant that the student's package has and a linear layer lacks (a 0-dim float, an int64
index), and (2) the student without `compile`'s own check, as `compile` now exports it (its
0-dim buffers held as one element since 28 Nov, the first suspect), and prints the student's
constants. It loads each package in a fresh process with faulthandler, compares the student
with TorchScript (1e-5 relative) and times it; where a load crashes and gdb is installed,
gdb prints the native backtrace of that load.

Where the student's load crashes, the probe also tries what torch offers besides its
default: the same package loaded onto an explicit device index (no recompile), then other
packagings (PACKAGINGS: the kernel binaries inside the shared library, the weights mapped
from it, the weights in a file beside it). Where the trivial package crashed too, it packages
that one each way first, and the student only in the ways that loaded it; where only the
student crashed, the student in each way; a student compile is started only while the
deadline leaves time for it. A student package that loads and equals TorchScript goes on to
checks.py's `compiled` stage; the report names its packaging, the one to make
`mlff-tools compile --device cuda` use. MLFF_PROBE_PACKAGINGS=1 tries them all even where
nothing crashed (a dry run of that code on a CPU).

    python benchmarks/gpu/compile_probe.py [--device cpu]     # writes $OUT/probe.json

benchmarks/gpu/checks.py runs the same as its stages `kernels` and `probe`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from mlff_tools.model import compiled as _compiled  # noqa: E402
TOL32 = 1e-5


def student(folder: Path, preset: str = "fast", bits: int = 32) -> Path:
    """A random-weight Si student (cutoff 5 A) of ``preset`` in float``bits``, written to
    folder/PRESETBITS.pt: the model every GPU check times (checks.export_models too)."""
    import torch

    from mlff_tools.model import EdgeGradient, ModelMetadata, save_model
    from mlff_tools.model.student import PRESETS, StudentEnergy

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    energy = StudentEnergy(("Si",), 5.0, dtype=getattr(torch, f"float{bits}"), **PRESETS[preset])
    with torch.no_grad():
        for p in energy.parameters():
            p.normal_(0.0, 0.3)
        energy.inv_avg_neighbours.fill_(1 / 30)
    return save_model(EdgeGradient(energy).eval(),
                      ModelMetadata(species=("Si",), cutoff=5.0, dtype=f"float{bits}",
                                    model={"arch": "density-expansion", "preset": preset,
                                           **PRESETS[preset]}),
                      folder / f"{preset}{bits}.pt")


def graph(copies: int, device: str):
    """4096 atoms of rattled diamond Si (minimum image, cubic box of 8 cells), its edges
    below 5 A, and ``copies`` copies of that graph side by side."""
    import torch

    torch.manual_seed(3)
    a, n = 5.431, 8
    basis = torch.tensor([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.25, .25, .25],
                          [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]], dtype=torch.float64)
    cells = torch.stack(torch.meshgrid(*[torch.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    x = ((cells[:, None, :] + basis[None]) * a).reshape(-1, 3)
    x = x + 0.15 * torch.randn_like(x)
    box = n * a
    d = x[None, :, :] - x[:, None, :]
    d -= box * torch.round(d / box)
    r2 = (d * d).sum(-1)
    i, j = torch.nonzero((r2 < 25.0) & (r2 > 0), as_tuple=True)
    vec = d[i, j]
    natoms = x.shape[0]
    offsets = torch.arange(copies).repeat_interleave(i.shape[0]) * natoms
    edge_index = torch.stack([i.repeat(copies) + offsets, j.repeat(copies) + offsets])
    return (torch.zeros(natoms * copies, dtype=torch.int64, device=device),
            edge_index.to(device), vec.repeat(copies, 1).to(device, torch.float32))


def timed(call, inputs, device: str, repeats: int) -> float:
    """Seconds per call."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        call(*inputs)
    sync()
    return (time.perf_counter() - start) / repeats


def kernels(folder: Path, device: str) -> dict:
    """ms per call of the TorchScript student with and without optimisation at 4k, 262k and
    1M atoms, and the profiler's top kernels at 262k (4k on a CPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    pt = student(folder)
    result = {"timings": []}
    optimised = torch.jit.load(str(pt), map_location=device)
    with torch.jit.optimized_execution(False):
        plain = torch.jit.load(str(pt), map_location=device)
    for copies in ((1, 64, 256) if device == "cuda" else (1,)):
        inputs = graph(copies, device)
        entry = {"atoms": inputs[0].shape[0], "edges": inputs[1].shape[1]}
        for _ in range(25):     # past TorchScript's re-specialising calls (16th-19th)
            optimised(*inputs)
        entry["torchscript_ms"] = 1e3 * timed(optimised, inputs, device, 10)
        with torch.jit.optimized_execution(False):
            timed(plain, inputs, device, 3)
            entry["torchscript_noopt_ms"] = 1e3 * timed(plain, inputs, device, 10)
            if copies == (64 if device == "cuda" else 1):
                activities = [ProfilerActivity.CPU] + (
                    [ProfilerActivity.CUDA] if device == "cuda" else [])
                with profile(activities=activities) as prof:
                    for _ in range(5):
                        plain(*inputs)
                    if device == "cuda":
                        torch.cuda.synchronize()
                key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
                table = prof.key_averages().table(sort_by=key, row_limit=20, max_name_column_width=60)
                entry["top_kernels"] = table
                print(f"kernels of 5 calls at {entry['atoms']} atoms "
                      f"(TorchScript without optimisation):\n{table}", flush=True)
        result["timings"].append(entry)
        print(f"kernels: {entry['atoms']} atoms, {entry['edges']} edges: TorchScript "
              f"{entry['torchscript_ms']:.2f} ms per call, without optimisation "
              f"{entry['torchscript_noopt_ms']:.2f}", flush=True)
        del inputs
    return result


def _with_buffer(kind: str):
    """A linear layer and one buffer of a kind the student's package holds as a constant."""
    import torch

    class WithBuffer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 4)
            if kind == "0-dim float":
                self.register_buffer("extra", torch.tensor(0.5))
            elif kind == "int64 index":
                self.register_buffer("extra", torch.tensor([3, 1, 2, 0]))

        def forward(self, x):
            y = self.linear(x)
            if kind == "0-dim float":
                return y * self.extra
            if kind == "int64 index":
                return y[:, self.extra]
            return y

    return WithBuffer()


# the trivial packages: a linear layer alone, and with each kind of constant the student's
# package has and a linear layer lacks (the student's constants are printed by the probe)
TRIVIAL_KINDS = ("none", "0-dim float", "int64 index")

# AOTInductor packagings besides the default, in the order tried: those `mlff-tools compile`
# falls back on where the loader crashes (mlff_tools.model.compiled.PACKAGINGS)
PACKAGINGS = _compiled.PACKAGINGS[1:]
STUDENT_COMPILE_S = 150     # what a student compile for CUDA may take (93 s on the H200)


def _trivial_package(folder: Path, device: str, kind: str = "none",
                     packaging: tuple[str, dict] | None = None) -> Path:
    """A linear layer (with a buffer of ``kind``) and a dynamic batch as an AOTInductor
    package (the default packaging, or ``packaging``: one of PACKAGINGS)."""
    import torch

    model = _with_buffer(kind).to(device)
    example = (torch.randn(16, 8, device=device),)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    name = "trivial-" + kind.replace(" ", "-") + (
        "-" + packaging[0].replace(" ", "-") if packaging else "") + ".pt2"
    return Path(torch._inductor.aoti_compile_and_package(
        program, package_path=str(folder / name),
        inductor_configs=dict(packaging[1]) if packaging else None))


def _constants(pt: Path, device: str) -> list[str]:
    """The student's exported program's parameters and constants: name, shape, dtype, device
    (what its package's loader has to place on the GPU)."""
    from mlff_tools.model.contract import load_model

    program = _compiled.export_program(load_model(pt, device="cpu"), device)
    return [f"{name} {tuple(t.shape)} {t.dtype} {t.device}"
            for name, t in [*program.state_dict.items(), *program.constants.items()]]


def _load_in_child(pt: Path | None, pt2: Path, device: str,
                   device_index: int = -1) -> tuple[int, str]:
    """Load (and with pt: check and time) a package in a fresh process (onto device index
    ``device_index``: -1, torch's default, is the current device)."""
    command = [sys.executable, "-X", "faulthandler", __file__, "--device", device,
               "--load", str(pt2), "--device-index", str(device_index)] + (
                   ["--against", str(pt)] if pt else [])
    run = subprocess.run(command, capture_output=True, text=True)
    output = "\n".join(line for line in (run.stdout + run.stderr).splitlines()
                       if not line.startswith("Extension modules:"))
    return run.returncode, output


def _native_backtrace(pt2: Path) -> str:
    """gdb's backtrace of the crashing load, or why there is none."""
    if shutil.which("gdb") is None:
        return "no gdb on this machine"
    run = subprocess.run(["gdb", "-batch", "-ex", "run", "-ex", "bt 40", "--args", sys.executable,
                          "-c", f"import torch; torch._inductor.aoti_load_package({str(pt2)!r})"],
                         capture_output=True, text=True, timeout=300)
    lines = (run.stdout + run.stderr).splitlines()
    start = next((i for i, line in enumerate(lines) if "SIGSEGV" in line or "signal" in line),
                 max(0, len(lines) - 60))
    return "\n".join(lines[start:start + 60])


def _compile_student(pt: Path, pt2: Path, device: str,
                     packaging: tuple[str, dict] | None = None) -> float:
    """Seconds to compile the student as `mlff-tools compile` does, in the default packaging
    or ``packaging`` only, without its check in a child process (which would go on to the
    next packaging where the load crashes: the probe loads each package itself)."""
    check, packagings = _compiled._check_parity, _compiled.PACKAGINGS
    _compiled._check_parity = lambda *args, **kwargs: None
    _compiled.PACKAGINGS = (packaging or packagings[0],)
    started = time.perf_counter()
    try:
        _compiled.compile_model(pt, pt2, device=device)
    finally:
        _compiled._check_parity, _compiled.PACKAGINGS = check, packagings
    return time.perf_counter() - started


def _other_packagings(folder: Path, device: str, result: dict, pt: Path,
                      deadline: float) -> tuple[Path, float, str] | None:
    """Where the student's default package crashed on load (or MLFF_PROBE_PACKAGINGS=1):
    the same package loaded onto an explicit device index, then the trivial package in each
    of PACKAGINGS where the trivial one crashed too, and the student in each packaging worth
    a try (all, where only the student crashed) while the deadline allows. Returns the first
    student package that loads and matches TorchScript: (path, compile seconds, packaging)."""
    found = None
    if device == "cuda":          # (a CPU package takes no device index)
        code, output = _load_in_child(pt, folder / "fast32.pt2", device, device_index=0)
        result["student_device_index_0"] = {"load_returncode": code, "output": output[-1500:]}
        print(f"probe: the student's package loaded with device_index 0: exit {code}\n"
              f"{output[-1500:]}", flush=True)
        if code == 0 and "PASS" in output:
            found = (folder / "fast32.pt2", result["student"]["compile_s"],
                     "default, device_index 0")
    trivial_crashed = result["trivial"]["none"].get("load_returncode") != 0
    worth = []
    for name, configs in PACKAGINGS:
        entry = {}
        if trivial_crashed or os.environ.get("MLFF_PROBE_PACKAGINGS") == "1":
            try:
                trivial = _trivial_package(folder, device, packaging=(name, configs))
                code, output = _load_in_child(None, trivial, device)
                entry = {"load_returncode": code, "output": output[-1000:]}
            except Exception as error:  # noqa: BLE001 - a probe reports what failed
                code, entry = None, {"failed": f"{type(error).__name__}: {error}"[-1000:]}
            print(f"probe: the trivial package, {name}: "
                  f"{'loads' if code == 0 else 'load exit ' + str(code)}; {entry}"[:1500],
                  flush=True)
        result["trivial_packagings"][name] = entry
        if not trivial_crashed or entry.get("load_returncode") == 0:
            worth.append((name, configs))
    for name, configs in worth:
        if found and os.environ.get("MLFF_PROBE_PACKAGINGS") != "1":
            break
        if time.time() + STUDENT_COMPILE_S > deadline:
            print(f"probe: the student, {name}: not tried (deadline)", flush=True)
            continue
        pt2 = folder / ("fast32-" + name.replace(" ", "-").replace(".", "") + ".pt2")
        try:
            seconds = _compile_student(pt, pt2, device, (name, configs))
            code, output = _load_in_child(pt, pt2, device)
            entry = {"compile_s": seconds, "load_returncode": code, "output": output[-2000:]}
        except Exception as error:  # noqa: BLE001
            code, entry = None, {"failed": f"{type(error).__name__}: {error}"[-1000:]}
        result["student_packagings"][name] = entry
        print(f"probe: the student, {name}: "
              f"{'loads' if code == 0 else 'load exit ' + str(code)}\n{entry}"[:3000],
              flush=True)
        if code == 0 and "PASS" in entry["output"] and not found:
            found = (pt2, entry["compile_s"], name)
    return found


def probe(folder: Path, device: str, packages: Path | None = None,
          deadline: float = float("inf")) -> dict:
    """Compile a trivial model and the student for ``device`` and load each in a fresh
    process; where a load crashes, the other ways to load and package them (see the module
    docstring) while ``deadline`` (time.time()) allows. With ``packages``, the student's
    package (if one loads) and its compile time go there as checks.py's `packages` stage
    leaves them, for its `compiled` stage."""
    folder.mkdir(parents=True, exist_ok=True)
    if packages is not None:     # at once: the `compiled` stage waits for each model's file
        packages.mkdir(parents=True, exist_ok=True)
        (packages / "fast64.json").write_text(json.dumps(
            {"model": "fast64", "failed": "not compiled (the probe compiles fast32 only)"}))
    result = {"trivial": {}, "trivial_packagings": {}, "student_packagings": {}}
    for kind in TRIVIAL_KINDS:
        started = time.perf_counter()
        try:
            trivial = _trivial_package(folder, device, kind)
            code, output = _load_in_child(None, trivial, device)
            entry = {"compile_s": time.perf_counter() - started, "load_returncode": code,
                     "output": output[-2000:]}
        except Exception as error:  # noqa: BLE001 - a probe reports what failed and goes on
            code, entry = None, {"failed": f"{type(error).__name__}: {error}"[-2000:]}
        result["trivial"][kind] = entry
        print(f"probe: a trivial package (a linear layer; buffer: {kind}) for {device}: "
              f"{'loads' if code == 0 else 'load exit ' + str(code)}; {entry}"[:2500],
              flush=True)

    pt = student(folder)
    try:
        result["student_constants"] = _constants(pt, device)
    except Exception as error:  # noqa: BLE001
        result["student_constants"] = [f"{type(error).__name__}: {error}"[-500:]]
    print("probe: the student's exported parameters and constants (0-dim ones are held as "
          "one element since 28 Nov):\n  " + "\n  ".join(result["student_constants"]),
          flush=True)
    seconds = _compile_student(pt, folder / "fast32.pt2", device)
    code, output = _load_in_child(pt, folder / "fast32.pt2", device)
    entry = {"compile_s": seconds, "load_returncode": code, "output": output[-3000:]}
    print(f"probe: the student compiled for {device} in {seconds:.0f} s; loaded in a fresh "
          f"process: exit {code}\n{output[-3000:]}", flush=True)
    if code < 0:
        entry["native_backtrace"] = _native_backtrace(folder / "fast32.pt2")
        print(f"probe: native backtrace of the load:\n{entry['native_backtrace']}", flush=True)
    result["student"] = entry
    package, packaging = folder / "fast32.pt2", "default"
    if code != 0 or os.environ.get("MLFF_PROBE_PACKAGINGS") == "1":
        found = _other_packagings(folder, device, result, pt, deadline)
        if found and code != 0:
            (package, seconds, packaging), code = found, 0
    result["packaging"] = packaging if code == 0 else None
    print(f"probe: the student's package that loads: {result['packaging'] or 'none'}",
          flush=True)
    if packages is not None:
        made = {"model": "fast32"}
        if code == 0:
            shutil.copy(pt, packages / "fast32.pt")
            shutil.copy(package, packages / "fast32.pt2")
            made.update(compile_s=seconds, packaging=packaging)
        else:
            made["failed"] = f"the package's load ended with exit {code} (probe)"
        (packages / "fast32.json").write_text(json.dumps(made))
    return result


def _child(pt2: Path, pt: Path | None, device: str, device_index: int = -1) -> None:
    """In the fresh process: load the package; with pt, compare and time it."""
    import torch

    from mlff_tools.model.compiled import PackageModule

    started = time.perf_counter()
    package = torch._inductor.aoti_load_package(str(pt2), device_index=device_index)
    print(f"package loaded in {time.perf_counter() - started:.1f} s", flush=True)
    if pt is None:
        return
    package = PackageModule(package)
    with torch.jit.optimized_execution(False):
        reference = torch.jit.load(str(pt), map_location=device)
        small = graph(1, device)
        errors = [float((g - r).abs().max() / r.abs().max())
                  for g, r in zip(package(*small), reference(*small))]
        verdict = "PASS" if max(errors) < TOL32 else "FAIL"
        print(f"package == TorchScript at 4096 atoms: {verdict}, atom energy {errors[0]:.1e}, "
              f"edge gradient {errors[1]:.1e} (tolerance {TOL32})", flush=True)
        for copies in ((1, 64, 256) if device == "cuda" else (1,)):
            inputs = graph(copies, device)
            timed(package, inputs, device, 3)
            package_ms = 1e3 * timed(package, inputs, device, 10)
            timed(reference, inputs, device, 3)
            plain_ms = 1e3 * timed(reference, inputs, device, 10)
            print(f"{inputs[0].shape[0]} atoms: package {package_ms:.2f} ms per call, "
                  f"TorchScript without optimisation {plain_ms:.2f}", flush=True)
            del inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--load", type=Path, help="(internal) the fresh process: load PT2")
    parser.add_argument("--against", type=Path, help="(internal) and compare with this .pt")
    parser.add_argument("--device-index", type=int, default=-1,
                        help="(internal) the device index to load onto")
    args = parser.parse_args()
    if args.load:
        _child(args.load, args.against, args.device, args.device_index)
        return
    import torch

    out = Path(os.environ.get("OUT", "/tmp/mlff-gpu-out"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/mlff-compile-probe")
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"torch {torch.__version__}; {name}", flush=True)
    report = {"kernels": kernels(work, args.device), "probe": probe(work, args.device)}
    (out / "probe.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

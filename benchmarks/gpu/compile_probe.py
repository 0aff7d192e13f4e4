"""Probes of the student on the GPU machine in Python only (no LAMMPS): where its time goes,
and why its compiled CUDA packages crash.

Kernels: the random-weight `fast` float32 student (TorchScript, as LAMMPS runs it) on graphs
of rattled diamond Si (4096 atoms, copied side by side to 262k and 1M atoms): ms per call
with and without TorchScript's optimisation, and torch.profiler's table of the kernels that
take the time (the model is about 90% of an `mlff/kk` step, H200, 27 Nov 2026).

Packages: on 26 and 27 Nov 2026 (torch 2.11.0+cu130, H100 and H200) `mlff-tools compile
--device cuda` compiled, and loading the package then ended with a segmentation fault in
`torch._inductor.aoti_load_package`, in a fresh process too. This compiles (1) a trivial
model (one linear layer: is any CUDA package loadable here?) and (2) the student without
`compile`'s own check, loads each in a fresh process with faulthandler, compares the student
with TorchScript (1e-5 relative) and times it; where a load crashes and gdb is installed,
gdb prints the native backtrace of that load.

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


def _trivial_package(folder: Path, device: str) -> Path:
    """A linear layer with a dynamic batch as an AOTInductor package."""
    import torch

    model = torch.nn.Linear(8, 4).to(device)
    example = (torch.randn(16, 8, device=device),)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    return Path(torch._inductor.aoti_compile_and_package(
        program, package_path=str(folder / "trivial.pt2")))


def _load_in_child(pt: Path | None, pt2: Path, device: str) -> tuple[int, str]:
    """Load (and with pt: check and time) a package in a fresh process."""
    command = [sys.executable, "-X", "faulthandler", __file__, "--device", device,
               "--load", str(pt2)] + (["--against", str(pt)] if pt else [])
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


def probe(folder: Path, device: str, packages: Path | None = None) -> dict:
    """Compile a trivial model and the student for ``device`` and load each in a fresh
    process. With ``packages``, the student's package (if it loads) and its compile time go
    there as checks.py's `packages` stage leaves them, for its `compiled` stage."""
    from mlff_tools.model import compiled

    folder.mkdir(parents=True, exist_ok=True)
    result = {}
    started = time.perf_counter()
    try:
        trivial = _trivial_package(folder, device)
        code, output = _load_in_child(None, trivial, device)
        result["trivial"] = {"compile_s": time.perf_counter() - started, "load_returncode": code,
                             "output": output[-2000:]}
    except Exception as error:  # noqa: BLE001 - a probe reports what failed and goes on
        code, result["trivial"] = None, {"failed": f"{type(error).__name__}: {error}"[-2000:]}
    print(f"probe: a trivial package (one linear layer) for {device}: "
          f"{'loads' if code == 0 else 'load exit ' + str(code)}; {result['trivial']}"[:2500],
          flush=True)

    pt = student(folder)
    check = compiled._check_parity
    compiled._check_parity = lambda *args, **kwargs: None    # the step that crashed
    started = time.perf_counter()
    try:
        compiled.compile_model(pt, folder / "fast32.pt2", device=device)
    finally:
        compiled._check_parity = check
    seconds = time.perf_counter() - started
    code, output = _load_in_child(pt, folder / "fast32.pt2", device)
    entry = {"compile_s": seconds, "load_returncode": code, "output": output[-3000:]}
    print(f"probe: the student compiled for {device} in {seconds:.0f} s; loaded in a fresh "
          f"process: exit {code}\n{output[-3000:]}", flush=True)
    if code < 0:
        entry["native_backtrace"] = _native_backtrace(folder / "fast32.pt2")
        print(f"probe: native backtrace of the load:\n{entry['native_backtrace']}", flush=True)
    result["student"] = entry
    if packages is not None:
        packages.mkdir(parents=True, exist_ok=True)
        (packages / "fast64.json").write_text(json.dumps(
            {"model": "fast64", "failed": "not compiled (the probe compiles fast32 only)"}))
        made = {"model": "fast32"}
        if code == 0:
            shutil.copy(pt, packages / "fast32.pt")
            shutil.copy(folder / "fast32.pt2", packages / "fast32.pt2")
            made["compile_s"] = seconds
        else:
            made["failed"] = f"the package's load ended with exit {code} (probe)"
        (packages / "fast32.json").write_text(json.dumps(made))
    return result


def _child(pt2: Path, pt: Path | None, device: str) -> None:
    """In the fresh process: load the package; with pt, compare and time it."""
    import torch

    from mlff_tools.model.compiled import PackageModule

    started = time.perf_counter()
    package = torch._inductor.aoti_load_package(str(pt2))
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
    args = parser.parse_args()
    if args.load:
        _child(args.load, args.against, args.device)
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

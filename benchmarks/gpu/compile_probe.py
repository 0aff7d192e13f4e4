"""Probe of `mlff-tools compile --device cuda` on the GPU machine, in Python only (no LAMMPS).

On 26 and 27 Nov 2026 (torch 2.11.0+cu130, H100 and H200) the compile ended with a
segmentation fault in `torch._inductor.aoti_load_package`, called by the compiling process
to check the new package against the model. This probe separates the two: it compiles the
random-weight `fast` float32 student with that in-process check left out, then, in a fresh
process with faulthandler, loads the package, compares it with the TorchScript model
(float32, 1e-5 relative) and times both on graphs of diamond Si at 1500 K-like disorder
(4096 atoms, copied side by side to 262k and 1M atoms): package, TorchScript with its
graph executor's optimisation (profiling and fusion) and without it.

    python benchmarks/gpu/compile_probe.py [--device cpu]     # writes $OUT/probe.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def student(folder: Path) -> Path:
    import torch

    from mlff_tools.model import EdgeGradient, ModelMetadata, save_model
    from mlff_tools.model.student import PRESETS, StudentEnergy

    torch.manual_seed(7)
    energy = StudentEnergy(("Si",), 5.0, dtype=torch.float32, **PRESETS["fast"])
    with torch.no_grad():
        for p in energy.parameters():
            p.normal_(0.0, 0.3)
        energy.inv_avg_neighbours.fill_(1 / 30)
    return save_model(EdgeGradient(energy).eval(),
                      ModelMetadata(species=("Si",), cutoff=5.0, dtype="float32",
                                    model={"arch": "density-expansion", "preset": "fast",
                                           **PRESETS["fast"]}),
                      folder / "fast32.pt")


def compile_without_check(pt: Path, pt2: Path, device: str) -> float:
    from mlff_tools.model import compiled

    compiled._check_parity = lambda *args, **kwargs: None    # the step that crashed
    start = time.perf_counter()
    compiled.compile_model(pt, pt2, device=device)
    return time.perf_counter() - start


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
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        call(*inputs)
    sync()
    return (time.perf_counter() - start) / repeats


def load_and_time(pt: Path, pt2: Path, device: str) -> dict:
    import torch

    from mlff_tools.model.compiled import PackageModule

    started = time.perf_counter()
    package = PackageModule(torch._inductor.aoti_load_package(str(pt2)))
    print(f"package loaded in a fresh process in {time.perf_counter() - started:.1f} s",
          flush=True)
    result = {"loaded": True}
    with torch.jit.optimized_execution(False):
        plain = torch.jit.load(str(pt), map_location=device)
        small = graph(1, device)
        ref = plain(*small)
        got = package(*small)
        errors = [float((g - r).abs().max() / r.abs().max()) for g, r in zip(got, ref)]
    result["relative_error"] = {"atom_energy": errors[0], "edge_grad": errors[1]}
    print(f"package == TorchScript (4096 atoms): atom energy {errors[0]:.1e}, edge gradient "
          f"{errors[1]:.1e} (tolerance 1e-5)", flush=True)
    optimised = torch.jit.load(str(pt), map_location=device)
    sizes = (1, 64, 256) if device == "cuda" else (1,)
    for copies in sizes:
        inputs = graph(copies, device)
        natoms, nedges = inputs[0].shape[0], inputs[1].shape[1]
        entry = {"atoms": natoms, "edges": nedges}
        for name, call in (("package", package), ("torchscript", optimised)):
            for _ in range(25):            # past TorchScript's re-specialisations (~16-19 calls)
                call(*inputs)
            entry[f"{name}_ms"] = 1e3 * timed(call, inputs, device, 10)
        with torch.jit.optimized_execution(False):
            timed(plain, inputs, device, 3)
            entry["torchscript_noopt_ms"] = 1e3 * timed(plain, inputs, device, 10)
        result.setdefault("timings", []).append(entry)
        print(f"{natoms} atoms, {nedges} edges, ms per call: package {entry['package_ms']:.2f}, "
              f"TorchScript {entry['torchscript_ms']:.2f}, TorchScript without optimisation "
              f"{entry['torchscript_noopt_ms']:.2f}; model-only atom-steps/s of the package "
              f"{natoms / entry['package_ms'] * 1e3:.3e}", flush=True)
        del inputs
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--load", nargs=2, type=Path, metavar=("PT", "PT2"),
                        help="(internal) the fresh process: load, compare, time")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT", "/tmp/mlff-gpu-out"))
    out.mkdir(parents=True, exist_ok=True)
    if args.load:
        json.dump(load_and_time(*args.load, args.device), open(out / "probe_load.json", "w"),
                  indent=1)
        return
    import torch

    work = Path("/tmp/mlff-compile-probe")
    work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}; {torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu'}",
          flush=True)
    pt = student(work)
    seconds = compile_without_check(pt, work / "fast32.pt2", args.device)
    print(f"compiled fast32 for {args.device} in {seconds:.0f} s (without the in-process check)",
          flush=True)
    run = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--device", args.device,
                          "--load", str(pt), str(work / "fast32.pt2")],
                         capture_output=True, text=True)
    print(run.stdout, run.stderr[-2500:] if run.returncode else "", flush=True)
    report = {"compile_s": seconds, "load_returncode": run.returncode}
    if run.returncode == 0:
        report.update(json.loads((out / "probe_load.json").read_text()))
    (out / "probe.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

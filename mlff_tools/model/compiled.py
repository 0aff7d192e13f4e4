"""Compiled models (contract version 2): a student as an AOTInductor package.

`mlff-tools compile model.pt -o model.pt2` turns the portable TorchScript file into code
compiled for the machine that runs it: the student's forward and its edge gradient are traced
with symbolic sizes (``make_fx``, which writes the backward out as ordinary operations,
since ``torch.export`` cannot export ``torch.autograd.grad`` itself), exported with a dynamic
number of atoms and edges, and compiled by AOTInductor. The package keeps the same forward
contract and ``mlff.json``, with ``version`` 2 and a ``target``: the device, the CPU
instruction set (or GPU), and the torch it was compiled with. A package is checked against
the running machine before it is loaded: code for another instruction set would be an
illegal instruction, not an error message.

The exported form is the model itself (``StudentEnergy`` is written to trace with symbolic
sizes), rebuilt from the file's metadata and weights: there is no second copy of the student.

    compile_model("model.pt", "model.pt2")            # about a minute
    loaded = load_model("model.pt2")                  # checked against this machine
    atom_energy, edge_grad = loaded.module(species, edge_index, edge_vec)
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..files import replacing
from .contract import TORCH_DTYPES, EdgeGradient, LoadedModel, load_model
from .metadata import ModelFileError, ModelMetadata

PACKAGE_SUFFIX = ".pt2"
METADATA_ENTRY = "extra/mlff.json"     # inside the package's archive folder
# x86 instruction sets torch dispatches to, weakest first: a package runs where the machine
# has at least the set it was compiled for
CPU_ISA_ORDER = ("DEFAULT", "AVX2", "AVX512")
PARITY = {"float64": 1e-10, "float32": 1e-5}     # compiled vs TorchScript, relative
# a float32 package may differ from the float64 truth by this many times the float32 model's
# own error, where that exceeds PARITY: both round differently (fused kernels, another
# reduction order) and neither is the exact answer (see _check_parity)
ROUNDOFF_SLACK = 4.0
# Inductor's CPU code generator leaves a loop scalar where it reads many strided columns
# (per-edge rows of 3 or 6 numbers): the student's radial gradient, which reads 129, ran
# unvectorized at twice the time. Vectorized, a `fast` call at 4096 atoms is ~7% faster
# (`accurate` ~6%) and no kernel slower (benchmarks/compiled_speed.py)
# Inductor also recomputes a value inside every kernel that reads it unless more than
# realize_reads_threshold (default 4) kernels do: the edges' lengths and directions were
# recomputed in each of the six radial functions' loops. Realized once read twice, a `fast`
# call at 4096 atoms took 27% less time and an `accurate` one 2-6% more (at 1: `fast` 19%
# less, `accurate` 11% more); `fast` is the production default
INDUCTOR_CONFIGS = {"cpp.enable_tiling_heuristics": False, "realize_reads_threshold": 2}
# The ways AOTInductor can package the same code, tried in this order where torch's own
# loader crashes on a package (torch 2.11+cu130 did on CUDA packages, on an H100 and an H200,
# in the default packaging; benchmarks/gpu/compile_probe.py tries the same on the GPU machine):
# the default; the kernels' binaries inside the shared library (no cubin files for the
# loader to find); the weights appended to it and mapped at load; the weights in one file of
# the package beside it. Each one loads and equals the model here (CPU, torch 2.13).
# (package_constants_in_so False alone stores no weights at all, for a caller to supply.)
PACKAGINGS = (
    ("default", {}),
    ("kernel binaries in the .so", {"aot_inductor.embed_kernel_binary": True}),
    ("weights mapped", {"aot_inductor.force_mmap_weights": True}),
    ("weights outside the .so", {"aot_inductor.package_constants_in_so": False,
                                 "aot_inductor.package_constants_on_disk_format":
                                     "binary_blob"}),
)


class LoaderCrash(ModelFileError):
    """torch's loader crashed on a package it compiled (in the child that checks it)."""


class _NotCompiled(Exception):
    """A fallback packaging that this torch could not compile (compile_model goes on)."""


def cpu_isa() -> str:
    """The instruction set torch uses on this CPU ("AVX512", "AVX2", "DEFAULT", ...)."""
    return torch.backends.cpu.get_cpu_capability()


def target_here(device: str) -> dict:
    """What a package compiled here for ``device`` needs to run."""
    target = {"device": torch.device(device).type, "cpu_isa": cpu_isa(),
              "torch": torch.__version__}
    if target["device"] == "cuda":
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        target["gpu_arch"] = f"sm_{major}{minor}"
    return target


def is_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an AOTInductor package (a zip holding compiled model code)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/data/aotinductor/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def check_target(target: dict, path: Path, device: str = "cpu") -> None:
    """ModelFileError unless a package compiled for ``target`` can run here on ``device``."""
    def refuse(why: str):
        raise ModelFileError(f"compiled model '{path}' cannot run here: {why}; recompile it "
                             f"here with `mlff-tools compile` (or run the portable .pt)")

    if target.get("torch") != torch.__version__:
        refuse(f"it was compiled with torch {target.get('torch')}, this is torch "
               f"{torch.__version__}")
    wanted = torch.device(device).type
    if target.get("device") != wanted:
        refuse(f"it was compiled for {target.get('device')}, asked to run on {wanted}")
    if wanted == "cuda":
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        if target.get("gpu_arch") != f"sm_{major}{minor}":
            refuse(f"it was compiled for GPU {target.get('gpu_arch')}, this GPU is "
                   f"sm_{major}{minor}")
        return
    have, need = cpu_isa(), target.get("cpu_isa")
    if need != have and not (need in CPU_ISA_ORDER and have in CPU_ISA_ORDER
                             and CPU_ISA_ORDER.index(need) <= CPU_ISA_ORDER.index(have)):
        refuse(f"it was compiled for {need} instructions and this CPU has {have}")


def eager_module(loaded: LoadedModel) -> EdgeGradient:
    """The Python module behind a TorchScript model file: built from its metadata, loaded
    with its weights."""
    from ..train import SIZE_KNOBS
    from .student import StudentEnergy

    meta = loaded.metadata
    arch = meta.model.get("arch")
    if arch == "stillinger-weber":
        from .sw import StillingerWeberEnergy

        state = {name.removeprefix("energy."): value
                 for name, value in loaded.module.state_dict().items()}
        return EdgeGradient(StillingerWeberEnergy.from_state(state)).eval()
    if arch != "density-expansion":
        raise ModelFileError(
            f"model '{loaded.path}' is a {arch or 'unknown'} model; `mlff-tools compile` "
            "compiles students (arch density-expansion) and the Stillinger-Weber reference "
            "model: run this one as the TorchScript file it is")
    sizes = {k: meta.model[k] for k in SIZE_KNOBS if k in meta.model}
    energy = StudentEnergy(tuple(meta.species), meta.cutoff, dtype=TORCH_DTYPES[meta.dtype],
                           **sizes)
    module = EdgeGradient(energy)
    constants = {name for name, _ in module.named_buffers()} - set(module.state_dict())
    module.load_state_dict({k: v for k, v in loaded.module.state_dict().items()
                            if k not in constants})
    return module.eval()


def example_graph(metadata: ModelMetadata, device: str, seed: int = 0):
    """A small random graph (12 atoms in a box, all pairs inside the cutoff, every species)
    to trace with: sizes above 1 so that none is specialised."""
    rng = np.random.default_rng(seed)
    n = 12
    positions = rng.uniform(0.0, 0.45 * metadata.cutoff, (n, 3))
    centre, neighbour = np.nonzero(~np.eye(n, dtype=bool))
    vectors = positions[neighbour] - positions[centre]
    keep = np.linalg.norm(vectors, axis=1) < metadata.cutoff
    dtype = TORCH_DTYPES[metadata.dtype]
    return (torch.arange(n, device=device) % len(metadata.species),
            torch.tensor(np.stack([centre[keep], neighbour[keep]]), device=device),
            torch.tensor(vectors[keep], dtype=dtype, device=device))


def parity_graph(metadata: ModelMetadata, device: str, seed: int = 1):
    """A graph to check a package on, unlike the one it was traced on: 27 atoms on a cubic
    lattice of spacing cutoff / 2, each moved by up to a tenth of it, every pair inside the
    cutoff an edge, the species in turn. Spaced as atoms are, not crowded: in the traced
    graph's crowd (distances of a fraction of an Å, forces of hundreds of eV/Å) the
    gradient of a trained float32 student cancels so much that round-off alone, summed in
    another order, put a correct package 1.5e-5 from the float64 answer (measured on a
    `make demo` student whose package and TorchScript model agree to 1e-6 on its own frames
    and on three other crowded graphs)."""
    rng = np.random.default_rng(seed)
    spacing = metadata.cutoff / 2
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    positions = spacing * (grid + rng.uniform(-0.1, 0.1, grid.shape))
    n = len(positions)
    centre, neighbour = np.nonzero(~np.eye(n, dtype=bool))
    vectors = positions[neighbour] - positions[centre]
    keep = np.linalg.norm(vectors, axis=1) < metadata.cutoff
    dtype = TORCH_DTYPES[metadata.dtype]
    return (torch.arange(n, device=device) % len(metadata.species),
            torch.tensor(np.stack([centre[keep], neighbour[keep]]), device=device),
            torch.tensor(vectors[keep], dtype=dtype, device=device))


def export_program(loaded: LoadedModel, device: str):
    """The model's forward and edge gradient as a torch.export program with a dynamic number
    of atoms and edges, its constants on ``device``."""
    from torch.export import Dim, export
    from torch.fx.experimental.proxy_tensor import make_fx

    module = _without_scalar_buffers(eager_module(loaded)).to(device)
    for sub in module.modules():         # traced as the package runs it (no sorting)
        if hasattr(sub, "export_form"):
            sub.export_form = True
    example = example_graph(loaded.metadata, device)

    def forward(species, edge_index, edge_vec):
        with torch.enable_grad():
            return module(species, edge_index, edge_vec)

    with _quiet_export():
        traced = make_fx(forward, tracing_mode="symbolic",
                         _allow_non_fake_inputs=True)(*example)
        atoms, edges = Dim("n_atoms", min=1, max=1 << 30), Dim("n_edges", min=0, max=1 << 34)
        return export(traced, example, dynamic_shapes=({0: atoms}, {1: edges}, {0: edges}),
                      strict=False)


def _without_scalar_buffers(module: torch.nn.Module) -> torch.nn.Module:
    """The module with each 0-dim buffer (the student's energy scale and 1 / average
    neighbours) held as one element, which broadcasts alike: the same numbers. 0-dim
    constants are a suspect in the crash of torch 2.11's loader on the student's CUDA
    package (an AOTInductor crash on a CUDA model with a 0-dim buffer is reported as
    pytorch#172739); benchmarks/gpu/compile_probe.py tells which kind of constant crashes."""
    for sub in module.modules():
        for name, buffer in list(sub.named_buffers(recurse=False)):
            if buffer.dim() == 0:
                setattr(sub, name, buffer.reshape(1))
    return module


def compile_model(model_path: str | os.PathLike, output: str | os.PathLike, *,
                  device: str = "cpu", threads: int = 1) -> Path:
    """Compile the TorchScript model file ``model_path`` into ``output`` (.pt2) for this
    machine's ``device``, its CPU code for ``threads`` threads per process (LAMMPS's usual
    one per MPI rank); checks the package against the model before writing it.

    Inductor writes CPU kernels for the thread count it compiles with: compiled with 2 and
    run with 1, as distill's runs did under OMP_NUM_THREADS=2, a `fast` student took 5.65
    ms per call at 512 atoms (6 Å) instead of 4.6 (OpenMP regions, per-thread partial
    sums). The count is fixed here, not taken from the environment."""
    if threads < 1:
        raise ModelFileError(f"threads must be at least 1, got {threads}")
    output = Path(output)
    loaded = load_model(model_path, device="cpu")
    program = export_program(loaded, device)
    output.parent.mkdir(parents=True, exist_ok=True)
    meta = loaded.metadata.to_dict()
    meta.update(version=2, target={**target_here(device), "threads": threads})
    meta["model"] = {**meta["model"], "compiled_from": str(Path(model_path).name)}
    crashes = []
    for packaging, configs in PACKAGINGS:
        meta["target"]["packaging"] = packaging
        text = json.dumps(meta, indent=1, sort_keys=True)
        ModelMetadata.from_json(text)            # a valid version 2 file, or say why not
        try:
            with replacing(output, suffix=PACKAGE_SUFFIX) as tmp:
                Path(tmp).unlink()              # the packager writes a new file, not into one
                try:
                    with _quiet_export():
                        torch._inductor.aoti_compile_and_package(
                            program, package_path=tmp,
                            inductor_configs={"aot_inductor.metadata": {"mlff.json": text},
                                              "cpp.threads": threads, **INDUCTOR_CONFIGS,
                                              **configs})
                except Exception as err:  # noqa: BLE001 - a fallback this torch may lack
                    if not crashes:
                        raise
                    raise _NotCompiled(_first_line(err)) from err
                with zipfile.ZipFile(tmp) as archive:
                    root = archive.namelist()[0].split("/")[0]
                with zipfile.ZipFile(tmp, "a") as archive:
                    archive.writestr(f"{root}/{METADATA_ENTRY}", text)
                _check_parity(tmp, model_path, loaded.metadata, device)
            return output
        except LoaderCrash as crash:
            crashes.append(f"{packaging} ({crash.signal})")
        except _NotCompiled as err:
            crashes.append(f"{packaging} (not compiled: {err})")
        except OSError as err:
            raise ModelFileError(f"cannot write compiled model '{output}': {err}") from err
    raise ModelFileError(
        f"torch {torch.__version__} crashed loading the package it compiled for {device}, "
        f"in each way it could package it: {', '.join(crashes)}. A defect of its AOTInductor "
        f"loader on this machine, not of the model. Not written; run the TorchScript model "
        f"'{model_path}' here (it needs no compiling), or compile with another torch version")


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


@contextlib.contextmanager
def _quiet_export():
    """torch.export's and Inductor's own pytree deprecation notices, not the user's business."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        yield


def _check_parity(package: str, model_path, metadata: ModelMetadata, device: str) -> None:
    """The package must compute what the model computes, on a graph it was not traced on.

    Checked in a child process: loading a package runs its compiled code, and torch's own
    loader can crash there (torch 2.11+cu130 loading CUDA packages on an H100 and an H200
    ended with a segmentation fault, in a fresh process too). A crash raises LoaderCrash,
    instead of taking the caller down with it: compile_model then packages the code another
    way (PACKAGINGS), and writes nothing where every way crashes."""
    run = subprocess.run(_parity_command(package, str(model_path), device),
                         capture_output=True, text=True, env=_child_environment())
    if run.returncode < 0:
        try:
            why = signal.Signals(-run.returncode).name
        except ValueError:
            why = f"signal {-run.returncode}"
        crash = LoaderCrash(f"torch {torch.__version__} crashed ({why}) loading the package "
                            f"it compiled for {device}")
        crash.signal = why
        raise crash
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        detail = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelFileError(f"the compiled package could not be checked against the model "
                             f"({detail}); not written")
    errors = json.loads(lines[-1])
    for name, (error, own) in errors.items():
        if not error < max(PARITY[metadata.dtype], ROUNDOFF_SLACK * own):
            own_text = (f"; the float32 model itself is within {own:.2e} of it"
                        if metadata.dtype == "float32" else "")
            raise ModelFileError(f"the compiled model's {name} differs from the model's "
                                 f"(float64) by {error:.2e} (relative{own_text}); not written")


def _parity_command(package: str, model_path: str, device: str) -> list[str]:
    """The child process of _check_parity (a function, so that tests can replace it)."""
    return [sys.executable, "-c", "from mlff_tools.model.compiled import _parity_child; "
            "_parity_child()", package, model_path, device]


def _child_environment() -> dict:
    """This environment, with this copy of mlff_tools importable first."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def _parity_child() -> None:
    """In the child: load the package and the model, print as JSON, per output, the
    package's relative error against the model computed in float64, and the model's own
    error in its dtype against the same (0 for a float64 model).

    A float32 package is not compared with the float32 model alone: each rounds on its own
    way, and on a trained student driven far from its data by the random check graph (atoms
    a fraction of an Å apart, descriptors thousands of standard deviations out) both can be
    1e-5 off the float64 answer, the package often the closer (measured: 3.8e-6 against the
    float32 model's 1.4e-5, which put the two 1.0e-5 apart)."""
    package, model_path, device = sys.argv[1:4]
    torch.set_num_threads(1)
    loaded = load_model(model_path, device="cpu")
    module, metadata = eager_module(loaded).to(device), loaded.metadata
    with _quiet_export():
        compiled = torch._inductor.aoti_load_package(package)
    graph = parity_graph(metadata, device)
    with torch.enable_grad():
        own = module(*graph)
        exact = (own if metadata.dtype == "float64" else
                 copy.deepcopy(module).double()(graph[0], graph[1], graph[2].double()))
    got = compiled(*graph)

    def relative(a, b):
        a, b = a.double(), b.double()
        return float((a - b).abs().max() / b.abs().max().clamp_min(1.0))

    print(json.dumps({name: [relative(a, b), relative(m, b)]
                      for name, a, m, b in zip(("atom energy", "edge gradient"), got, own,
                                               exact)}))


class PackageModule:
    """A loaded package, called as the contract's forward: (species, edge_index, edge_vec)
    -> (atom_energy, edge_grad). Gradients are part of the compiled code."""

    def __init__(self, compiled):
        self.compiled = compiled

    def __call__(self, species, edge_index, edge_vec):
        centre = edge_index[0]
        if bool((centre[1:] < centre[:-1]).any()):
            # the package needs each centre's edges together (it does not sort: see
            # StudentEnergy.export_form); the gradient goes back in the caller's order
            order = torch.sort(centre, stable=True)[1]
            atom_energy, grad = self(species, edge_index[:, order], edge_vec[order])
            return atom_energy, torch.empty_like(grad).index_copy_(0, order, grad)
        atom_energy, edge_grad = self.compiled(species, edge_index, edge_vec.detach())
        return atom_energy, edge_grad

    def eval(self):
        return self

    def state_dict(self):
        raise ModelFileError("a compiled model (.pt2) holds compiled code, not weights: start "
                             "training from the TorchScript .pt it was compiled from")


def package_metadata(path: Path, *, device: str = "cpu") -> ModelMetadata:
    """A compiled model's metadata, after checking that its target can run here; its code
    is not loaded."""
    try:
        with zipfile.ZipFile(path) as archive:
            entry = next((n for n in archive.namelist() if n.endswith("/" + METADATA_ENTRY)),
                         None)
            text = archive.read(entry).decode() if entry else ""
    except (zipfile.BadZipFile, OSError, KeyError) as err:
        raise ModelFileError(f"compiled model '{path}' cannot be read ({err}); recompile it "
                             "with `mlff-tools compile`") from err
    if not text:
        raise ModelFileError(f"'{path}' is a compiled package without mlff metadata: not "
                             "written by `mlff-tools compile`")
    metadata = ModelMetadata.from_json(text, source=f"compiled model '{path}'")
    check_target(metadata.target, path, device)
    return metadata


def load_package(path: Path, *, device: str = "cpu") -> LoadedModel:
    """Load a compiled model after checking it can run here."""
    metadata = package_metadata(path, device=device)
    try:
        compiled = torch._inductor.aoti_load_package(str(path))
    except Exception as err:  # noqa: BLE001 - a truncated or damaged package
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"compiled model '{path}' cannot be loaded ({first}); recompile "
                             "it with `mlff-tools compile`") from err
    return LoadedModel(module=PackageModule(compiled), metadata=metadata, path=path)

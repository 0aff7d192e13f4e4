"""The model-file contract in Python: save, load, validate, and `mlff-tools info`."""

import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from mlff_tools.cli import main
from mlff_tools.model import EdgeGradient, ModelFileError, ModelMetadata, load_model, save_model
from mlff_tools.model.contract import METADATA_FILE
from mlff_tools.model.sw import export_sw, read_sw_file, stillinger_weber_model


def test_round_trip_keeps_metadata_and_results(models, tmp_path):
    """A saved model loads with identical metadata and identical outputs (float64)."""
    params = read_sw_file("Si.sw")
    module = stillinger_weber_model(params, "float64")
    metadata = ModelMetadata(species=("Si",), cutoff=params.cutoff, dtype="float64",
                             training={"frames": 3})
    path = save_model(module, metadata, tmp_path / "m.pt")
    loaded = load_model(path)
    assert loaded.metadata == metadata
    species = torch.zeros(3, dtype=torch.int64)
    edge_index = torch.tensor([[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]])
    pos = torch.tensor([[0.0, 0, 0], [2.3, 0.1, 0], [0.2, 2.4, 0.3]], dtype=torch.float64)
    edge_vec = pos[edge_index[1]] - pos[edge_index[0]]
    e_mem, g_mem = module(species, edge_index, edge_vec)
    e_file, g_file = loaded.module(species, edge_index, edge_vec)
    assert torch.equal(e_mem, e_file) and torch.equal(g_mem, g_file)


@pytest.mark.parametrize("field, value, message", [
    ("species", ["Si", "Xx"], r"`species` holds 'Xx', which is not an element symbol"),
    ("species", [], r"`species` must be a non-empty list"),
    ("species", ["Si", "Si"], r"`species` lists an element twice"),
    ("cutoff", -1.0, r"`cutoff` must be a positive number in Å, got -1.0"),
    ("dtype", "float16", r"`dtype` must be one of \('float32', 'float64'\), got 'float16'"),
    ("units", "real", r"`units` must be 'metal', got 'real'"),
    ("version", 3, r"unknown `version` 3; this mlff-tools reads versions 1, 2"),
    ("version", 2, r"a version 2 \(compiled\) model needs `target`"),
    ("format", "nequip", r"`format` is 'nequip', expected 'mlff-model'"),
])
def test_invalid_metadata_is_refused(field, value, message):
    """Each contract field is checked and named in the error."""
    fields = {"species": ("Si",), "cutoff": 3.0, "dtype": "float64", "units": "metal",
              "version": 1, "format": "mlff-model"}
    fields[field] = value
    with pytest.raises(ModelFileError, match=message):
        ModelMetadata(**fields)


def test_dtype_mismatch_is_refused(tmp_path):
    """Metadata that says float32 for a float64 module is caught before anything is written."""
    module = stillinger_weber_model(read_sw_file("Si.sw"), "float64")
    metadata = ModelMetadata(species=("Si",), cutoff=3.77, dtype="float32")
    with pytest.raises(ModelFileError, match="fails on a three-atom graph with float32 inputs .*does the metadata `dtype` match"):
        save_model(module, metadata, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == [], "a failed save left files behind"


def test_module_breaking_the_contract_is_refused(tmp_path):
    """A module whose forward returns the wrong shapes is refused at save time."""
    class Wrong(torch.nn.Module):
        def forward(self, species: torch.Tensor, edge_index: torch.Tensor,
                    edge_vec: torch.Tensor) -> torch.Tensor:
            return edge_vec.sum(dim=1)

    with pytest.raises(ModelFileError, match=r"forward\(\) must return"):
        save_model(EdgeGradient(Wrong()), ModelMetadata(species=("Si",), cutoff=3.0),
                   tmp_path / "m.pt")


@pytest.mark.parametrize("case, message", [
    ("missing", r"model file '.*missing.pt' does not exist"),
    ("corrupt", r"model file '.*corrupt.pt' is not a TorchScript archive"),
    ("no_metadata", r"has no mlff.json metadata"),
    ("bad_json", r"mlff.json is not valid JSON"),
    ("version3", r"unknown `version` 3"),
    ("version2", r"says version 2 \(a compiled package\) but is TorchScript"),
    ("missing_key", r"lacks the key `cutoff`"),
])
def test_load_errors(models, tmp_path, case, message):
    """load_model names what is wrong with a file."""
    path = tmp_path / f"{case}.pt"
    module = torch.jit.script(torch.nn.Identity())
    good = json.loads(load_model(models["si64"]).metadata.to_json())
    if case == "corrupt":
        path.write_bytes(b"garbage" * 50)
    elif case == "no_metadata":
        torch.jit.save(module, str(path))
    elif case == "bad_json":
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: "{not json"})
    elif case == "version3":
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: json.dumps(
            {**good, "version": 3})})
    elif case == "version2":
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: json.dumps(
            {**good, "version": 2, "target": {"device": "cpu", "cpu_isa": "AVX2",
                                              "torch": torch.__version__}})})
    elif case == "missing_key":
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: json.dumps(
            {k: v for k, v in good.items() if k != "cutoff"})})
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_info_prints_metadata(models, capsys):
    """`mlff-tools info` shows species, cutoff, dtype and the LAMMPS lines to use."""
    assert main(["info", str(models["gan64"])]) == 0
    out = capsys.readouterr().out
    assert "species    Ga N" in out
    assert "dtype      float64" in out
    assert "pair_coeff * * Ga N" in out
    cutoff = read_sw_file("GaN.sw").cutoff
    assert f"cutoff     {cutoff:g} Å" in out


def test_info_on_bad_file_exits_2(tmp_path, capsys):
    path = tmp_path / "x.pt"
    path.write_text("hello")
    assert main(["info", str(path)]) == 2
    assert "is not a TorchScript archive" in capsys.readouterr().err


def test_export_sw_command(tmp_path):
    """`mlff-tools export-sw` writes a float32 model from the wheel's Si.sw, as the console script."""
    out = tmp_path / "sw32.pt"
    exe = [sys.executable, "-m", "mlff_tools.cli"]
    proc = subprocess.run(exe + ["export-sw", "Si.sw", "--dtype", "float32", "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert load_model(out).metadata.dtype == "float32"
    assert load_model(out).metadata.species == ("Si",)


def test_export_sw_missing_file(tmp_path, capsys):
    assert main(["export-sw", "Nope.sw", "-o", str(tmp_path / "x.pt")]) == 2
    assert "potential file 'Nope.sw' not found" in capsys.readouterr().err


def test_export_is_atomic(tmp_path):
    """Saving over an existing file replaces it whole; no temporary files remain."""
    path = tmp_path / "sw.pt"
    export_sw("Si.sw", path, dtype="float64")
    export_sw("Si.sw", path, dtype="float32")
    assert load_model(path).metadata.dtype == "float32"
    assert [p.name for p in tmp_path.iterdir()] == ["sw.pt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_model_files_follow_the_umask(tmp_path, umask):
    """Model files and training checkpoints get 0666 less the umask, as files written by any
    other tool in a shared cluster folder do (not mkstemp's 0600)."""
    from mlff_tools.train import _atomic_torch_save

    previous = os.umask(umask)
    try:
        model = export_sw("Si.sw", tmp_path / "sw.pt")
        checkpoint = tmp_path / "run.ckpt"
        _atomic_torch_save({"epoch": 1, "weights": torch.zeros(2)}, checkpoint)
    finally:
        os.umask(previous)
    for path in (model, checkpoint):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o666 & ~umask, f"{path.name}: mode {mode:o} with umask {umask:03o}"


def test_model_refuses_to_run_without_gradients(tmp_path):
    """Under torch.no_grad() a model could not differentiate its energy and would return zero
    forces; it raises instead and says how to call it."""
    model = torch.jit.load(str(export_sw("Si.sw", tmp_path / "sw.pt")))
    inputs = (torch.zeros(2, dtype=torch.int64), torch.tensor([[0, 1], [1, 0]]),
              torch.tensor([[0.0, 0.0, 2.3], [0.0, 0.0, -2.3]], dtype=torch.float64))
    assert model(*inputs)[1].abs().max() > 0.1, "the pair should feel a force"
    with torch.no_grad(), pytest.raises(torch.jit.Error, match="call it with gradients enabled"):
        model(*inputs)

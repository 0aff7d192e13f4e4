"""`mlff-tools test`: a model's errors on labelled data; label names from other tools;
what `train` says about early stopping."""

import json

import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from mlff_tools.cli import main
from mlff_tools.evaluation import errors_of, evaluate_file

# meV (per atom, per Å): extxyz keeps 8 decimals of positions and forces, so the SW model
# on its own labels is off by ~5e-5 meV/Å; measured values are compared to this
ROUNDING = 1e-3


def shifted(frames, force_shift=0.0, energy_shift_per_atom=0.0):
    """Copies whose labels are off by known amounts: forces by ``force_shift`` eV/Å on x,
    energies by ``energy_shift_per_atom`` eV per atom."""
    out = []
    for atoms in frames:
        copy = atoms.copy()
        forces = atoms.get_forces().copy()
        forces[:, 0] += force_shift
        copy.calc = SinglePointCalculator(
            copy, energy=atoms.get_potential_energy() + energy_shift_per_atom * len(atoms),
            forces=forces, stress=atoms.get_stress())
        out.append(copy)
    return out


def test_errors_are_the_known_ones(models, sw_data, tmp_path, capsys):
    """On its own labels the SW model is exact; on labels shifted by 10 meV/Å (x) and
    1 meV/atom, the force MAE is 10/3 meV/Å, its RMSE sqrt(100/3), the energy errors 1
    meV/atom, overall, per species and per frame; the JSON and parity plot are written and
    not overwritten without --overwrite."""
    frames = ase.io.read(sw_data["val"], ":")
    exact = evaluate_file(models["si64"], sw_data["val"])["overall"]
    assert exact["force_mae_mev_per_A"] < ROUNDING, exact
    assert exact["energy_mae_mev_per_atom"] < ROUNDING, exact
    assert exact["stress_mae_gpa"] < 1e-6 and exact["frames"] == len(frames), exact

    data = tmp_path / "shifted.extxyz"
    ase.io.write(data, shifted(frames, force_shift=-0.010, energy_shift_per_atom=-0.001))
    out_json, out_png = tmp_path / "r.json", tmp_path / "parity.png"
    assert main(["test", str(models["si64"]), str(data), "--json", str(out_json),
                 "--plot", str(out_png), "--batch-size", "5"]) == 0
    report = json.loads(out_json.read_text())
    overall = report["overall"]
    assert overall["force_mae_mev_per_A"] == pytest.approx(10 / 3, abs=ROUNDING)
    assert overall["force_rmse_mev_per_A"] == pytest.approx(np.sqrt(100 / 3), abs=ROUNDING)
    assert overall["energy_mae_mev_per_atom"] == pytest.approx(1.0, abs=ROUNDING)
    assert overall["energy_rmse_mev_per_atom"] == pytest.approx(1.0, abs=ROUNDING)
    assert report["per_species"]["Si"]["force_mae_mev_per_A"] == pytest.approx(10 / 3, abs=ROUNDING)
    assert len(report["per_frame"]) == len(frames)
    subset = errors_of(report)     # from the per-frame errors: the same overall MAE
    assert subset["force_mae_mev_per_A"] == pytest.approx(overall["force_mae_mev_per_A"])
    assert subset["energy_mae_mev_per_atom"] == pytest.approx(overall["energy_mae_mev_per_atom"])
    assert errors_of(report, source="no such source") is None
    for frame in report["per_frame"]:
        assert frame["energy_error_mev_per_atom"] == pytest.approx(1.0, abs=ROUNDING)
        assert frame["force_max_error_mev_per_A"] == pytest.approx(10.0, abs=ROUNDING)
    printed = capsys.readouterr().out
    assert "forces" in printed and "3.33" in printed and "worst frames" in printed
    assert out_png.stat().st_size > 1000
    assert main(["test", str(models["si64"]), str(data), "--json", str(out_json)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_labels_named_by_another_tool(models, sw_data, tmp_path, capsys):
    """A file that keeps its labels as REF_energy (header) and REF_forces (column): without
    the keys the error names what the frame has and the flag to pass; with them, `train` and
    `test` read it."""
    frames = []
    for atoms in ase.io.read(sw_data["train"], ":")[:12]:
        copy = atoms.copy()
        copy.info["REF_energy"] = atoms.get_potential_energy()
        copy.arrays["REF_forces"] = atoms.get_forces()
        frames.append(copy)
    data = tmp_path / "other_tool.extxyz"
    ase.io.write(data, frames)
    assert main(["test", str(models["si64"]), str(data)]) == 2
    err = capsys.readouterr().err
    assert "has no energy (looked for 'energy'); the frame has: REF_energy, REF_forces" in err
    assert "pass --energy-key NAME" in err
    keys = ["--energy-key", "REF_energy", "--forces-key", "REF_forces"]
    assert main(["test", str(models["si64"]), str(data), *keys]) == 0
    assert "forces" in capsys.readouterr().out
    model = tmp_path / "student.pt"
    assert main(["train", str(data), "-o", str(model), "--cutoff", "4.0", "--max-epochs", "2",
                 "--quiet", *keys]) == 0
    assert model.is_file()
    # `train` also writes the model compiled for this machine, unless --no-compile
    from mlff_tools.model import load_model

    assert "compiled for this machine" in capsys.readouterr().out
    assert load_model(model.with_suffix(".pt2")).metadata.version == 2


def test_train_says_it_stopped_early(sw_data, tmp_path, capsys):
    """With --patience 1 training stops at the first epoch without improvement and says which
    epoch it kept; a run that uses all its epochs says that."""
    common = [str(sw_data["train"]), "--val", str(sw_data["val"]), "--cutoff", "4.0",
              "--quiet", "--n-channels", "4", "--lr", "0.05", "--no-compile"]
    assert main(["train", *common, "-o", str(tmp_path / "a.pt"), "--max-epochs", "40",
                 "--patience", "1"]) == 0
    printed = capsys.readouterr().out
    assert "stopped early after epoch" in printed, printed
    stopped = int(printed.split("stopped early after epoch ")[1].split()[0])
    kept = int(printed.split("kept epoch ")[1].split(",")[0])
    assert stopped < 40 and kept == stopped - 1, printed
    assert main(["train", *common, "-o", str(tmp_path / "b.pt"), "--max-epochs", "2"]) == 0
    assert "ran all 2 epochs; kept epoch" in capsys.readouterr().out

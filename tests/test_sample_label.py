"""`mlff-tools sample` and `mlff-tools label`: counts, temperatures, distances, resumption."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from mlff_tools.cli import main
from mlff_tools.errors import StructureError
from mlff_tools.label import LabelError, label_file
from mlff_tools.sample import SampleConfig, frame_counts, sample

TESTS = Path(__file__).parent
TEMPERATURE_TOL = 0.3   # relative: mean kinetic temperature of 32-atom MD frames vs target


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    config = SampleConfig(output=str(tmp_path_factory.mktemp("sample") / "cu.extxyz"),
                          teacher="emt", structure="Cu", supercell=(2, 2, 2),
                          temperatures=(300.0, 900.0), frames=40, md_interval=20,
                          md_equilibration=100, min_distance=2.0, progress=False)
    return config, sample(config)


def test_requested_counts_and_split(sampled):
    config, paths = sampled
    frames = ase.io.read(paths["all"], ":")
    assert len(frames) == config.frames
    sources = [f.info["source"] for f in frames]
    assert {s: sources.count(s) for s in set(sources)} == frame_counts(config)
    parts = {k: len(ase.io.read(paths[k], ":")) for k in ("train", "val", "test")}
    assert parts == {"train": 32, "val": 4, "test": 4}


def test_md_temperatures(sampled):
    """MD frames' kinetic temperatures average near their targets."""
    _, paths = sampled
    frames = [f for f in ase.io.read(paths["all"], ":") if f.info["source"] == "md"]
    for target in (300.0, 900.0):
        temperatures = [f.info["temperature"] for f in frames
                        if f.info["target_temperature"] == target]
        assert len(temperatures) == 14
        mean = np.mean(temperatures)
        assert abs(mean - target) / target < TEMPERATURE_TOL, f"{mean:.0f} K for {target} K"


def test_minimum_distance_and_labels(sampled):
    """No frame has atoms closer than the minimum distance; every frame carries labels."""
    config, paths = sampled
    for frame in ase.io.read(paths["all"], ":"):
        assert neighbor_list("d", frame, config.min_distance).size == 0
        assert frame.get_forces().shape == (len(frame), 3)
        assert frame.info["teacher"] == "emt"
        assert frame.get_stress().shape == (6,)


def test_npt_pressures_are_in_bar(tmp_path):
    """`sample --pressures` is in bar, as LAMMPS metal: EMT copper at 50,000 bar (5 GPa)
    samples a smaller volume than at 0 bar, by about P/B (bulk modulus ~140 GPa: ~3%)."""
    out = tmp_path / "cu.extxyz"
    assert main(["sample", "--teacher", "emt", "--structure", "Cu", "--supercell", "2x2x2",
                 "--temperatures", "300", "--pressures", "0,50000", "--frames", "20",
                 "--md", "1.0", "--rattle-fraction", "0", "--strain-fraction", "0",
                 "--vacancy-fraction", "0", "--md-interval", "20", "--quiet",
                 "-o", str(out)]) == 0
    frames = ase.io.read(out, ":")
    volume = {p: np.mean([f.get_volume() for f in frames
                          if f.info["target_pressure_bar"] == p]) for p in (0.0, 50000.0)}
    shrink = 1 - volume[50000.0] / volume[0.0]
    assert 0.01 < shrink < 0.08, f"volume shrinks by {shrink:.3f} at 5 GPa"


def test_sample_rejects_unknown_structure(tmp_path):
    with pytest.raises(StructureError, match="`Xyzzy` is neither a structure file nor a crystal"):
        sample(SampleConfig(output=str(tmp_path / "x.extxyz"), teacher="emt",
                            structure="Xyzzy", progress=False))


def structures(path, n=30):
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        frames.append(atoms)
    ase.io.write(path, frames)
    return path


def label_command(source, output):
    return [sys.executable, "-m", "mlff_tools.cli", "label", str(source), "--teacher",
            "ase:slow_teacher:SlowEMT", "-o", str(output), "--quiet"]


def run_env():
    return {**os.environ, "PYTHONPATH": str(TESTS)}


def test_label_killed_half_way_resumes_to_the_same_file(tmp_path):
    source = structures(tmp_path / "in.extxyz")
    reference = tmp_path / "reference.extxyz"
    subprocess.run(label_command(source, reference), env=run_env(), check=True)

    output = tmp_path / "out.extxyz"
    proc = subprocess.Popen(label_command(source, output), env=run_env())
    deadline = time.time() + 120
    while time.time() < deadline:
        if output.exists() and output.read_text().count("label_run") >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = output.read_text().count("label_run")
    assert 10 <= done < 30, f"the run was killed after {done} of 30 frames"
    subprocess.run(label_command(source, output), env=run_env(), check=True)
    assert output.read_bytes() == reference.read_bytes()


def test_torn_last_frame_is_relabelled(tmp_path):
    """A frame cut off mid-write is dropped and labelled again."""
    source = structures(tmp_path / "in.extxyz", n=6)
    reference = tmp_path / "reference.extxyz"
    label_file(source, reference, teacher="emt", progress=False)
    output = tmp_path / "out.extxyz"
    text = reference.read_bytes()
    output.write_bytes(text[: int(len(text) * 0.6)])
    relabelled = label_file(source, output, teacher="emt", progress=False)
    assert output.read_bytes() == text
    assert 2 <= relabelled <= 4


def test_label_with_workers(tmp_path):
    source = structures(tmp_path / "in.extxyz", n=8)
    serial, parallel = tmp_path / "serial.extxyz", tmp_path / "parallel.extxyz"
    label_file(source, serial, teacher="emt", progress=False)
    label_file(source, parallel, teacher="emt", workers=2, progress=False)
    assert serial.read_bytes() == parallel.read_bytes()


def test_foreign_output_is_refused(tmp_path):
    source = structures(tmp_path / "in.extxyz", n=3)
    output = tmp_path / "out.extxyz"
    label_file(source, output, teacher="emt", progress=False)
    with pytest.raises(LabelError, match="exists and is not a previous run of this command"):
        label_file(source, output, teacher="ase:ase.calculators.emt:EMT", progress=False)
    before = output.read_bytes()
    assert label_file(source, output, teacher="emt", progress=False) == 0
    assert output.read_bytes() == before
    assert label_file(source, output, teacher="ase:ase.calculators.emt:EMT", overwrite=True,
                      progress=False) == 3


@pytest.mark.parametrize("args, message", [
    (["label", "missing.extxyz", "--teacher", "emt", "-o", "x.extxyz"],
     "structure file 'missing.extxyz' does not exist"),
    (["label", "SI_FILE", "--teacher", "emt", "-o", "x.extxyz"],
     r"teacher emt cannot handle element\(s\) Si"),
    (["label", "BAD_FILE", "--teacher", "emt", "-o", "x.extxyz"], "cannot read structures"),
    (["label", "SI_FILE", "--teacher", "sevenn:7net-omni", "-o", "x.extxyz"],
     "does not ship inside the sevenn wheel"),
])
def test_label_command_errors(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    ase.io.write(tmp_path / "si.extxyz", bulk("Si"))
    (tmp_path / "bad.extxyz").write_text("this is not\na structure file\n")
    args = [a.replace("SI_FILE", "si.extxyz").replace("BAD_FILE", "bad.extxyz") for a in args]
    assert main(args) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x.extxyz").exists()


@pytest.mark.parametrize("fmt, name", [("cif", "si.cif"), ("vasp", "POSCAR"),
                                       ("extxyz", "si.extxyz"), ("lammps-data", "si.data")])
def test_structure_files_of_every_kind(tmp_path, fmt, name):
    """`--structure` reads CIF, POSCAR, extxyz and LAMMPS data files (elements from masses)."""
    from mlff_tools.structures import load_structure

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    path = tmp_path / name
    if fmt == "lammps-data":
        from mlff_tools.lammps import write_data

        write_data(atoms, path, ["Si"])
    else:
        ase.io.write(path, atoms, format=fmt)
    loaded = load_structure(str(path), (2, 1, 1))
    assert loaded.get_chemical_formula() == "Si16"
    assert np.allclose(loaded.cell.lengths(), [10.86, 5.43, 5.43])

"""Ctrl-C (SIGINT) in a long command: no traceback; it says what was kept and how to continue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def interrupt_when(command, ready, *, timeout=120.0):
    """Start ``command``, send SIGINT once ``ready()`` is true; return (returncode, stderr)."""
    # SIGINT as a terminal gives it: a shell starts background jobs (`make test &`, nohup)
    # with SIGINT ignored, and Python keeps an ignored SIGINT ignored
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None, f"the command ended before it could be interrupted:\n" \
                                f"{proc.communicate()[1][-2000:]}"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr


def test_train_interrupted_says_resume(sw_data, tmp_path):
    """train: the checkpoint of the last finished epoch is named, with --resume."""
    output = tmp_path / "model.pt"
    command = [sys.executable, "-m", "mlff_tools.cli", "train", str(sw_data["train"]), "--val",
               str(sw_data["val"]), "-o", str(output), "--max-epochs", "1000", "--quiet"]
    code, stderr = interrupt_when(command, output.with_suffix(".ckpt").exists)
    assert code == 130, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert (f"mlff-tools train: interrupted; the last finished epoch is kept in "
            f"{output.with_suffix('.ckpt')}; continue with the same command with --resume"
            in stderr), stderr[-2000:]


def test_label_interrupted_says_rerun(tmp_path):
    """label: the frames labelled so far are kept; the same command labels the rest."""
    import ase.io
    import numpy as np
    from ase.build import bulk

    rng = np.random.default_rng(3)
    frames = []
    for _ in range(60):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        frames.append(atoms)
    source, output = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    ase.io.write(source, frames)
    command = [sys.executable, "-m", "mlff_tools.cli", "label", str(source), "--teacher",
               "ase:slow_teacher:SlowEMT", "-o", str(output), "--quiet"]
    code, stderr = interrupt_when(
        command, lambda: output.exists() and output.read_text().count("label_run") >= 5)
    assert code == 130, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert (f"mlff-tools label: interrupted; every frame labelled so far is kept in {output}; "
            "run the same command again to label the rest" in stderr), stderr[-2000:]
    assert 5 <= output.read_text().count("label_run") < 60

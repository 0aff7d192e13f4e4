"""Batch evaluation in Python: structures/s and atoms/s of MLFFCalculator.calculate_batch at
several batch sizes against the calculator one structure at a time (ASE's get_forces), for a
random-weight `fast` student (float32 and float64) on rattled 64-atom diamond Si cells.

    python benchmarks/batch_eval.py [--frames 256] [--device cpu|cuda] [--threads 1]

Prints one table; no asserts (tests/test_batch.py checks the numbers are the same).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from ase.build import bulk

from mlff_tools.calculator import MLFFCalculator
from mlff_tools.model import EdgeGradient, ModelMetadata, save_model
from mlff_tools.model.student import PRESETS, StudentEnergy


def student(folder: Path, dtype: str) -> Path:
    torch.manual_seed(0)
    energy = StudentEnergy(("Si",), 5.0, dtype=getattr(torch, dtype), **PRESETS["fast"])
    return save_model(EdgeGradient(energy).eval(), ModelMetadata(
        species=("Si",), cutoff=5.0, dtype=dtype,
        model={"arch": "density-expansion", "preset": "fast", **PRESETS["fast"]}),
        folder / f"fast_{dtype}.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = []
    for seed in range(args.frames):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
        atoms.rattle(0.1, seed=seed)
        frames.append(atoms)
    atoms_total = sum(len(a) for a in frames)
    print(f"{args.frames} frames of 64 Si atoms, `fast` student (cutoff 5 Å), {args.device}, "
          f"{args.threads} thread(s)")
    print(f"{'dtype':8s} {'how':14s} {'structures/s':>13s} {'atoms/s':>10s} {'vs one by one':>14s}")
    with tempfile.TemporaryDirectory() as folder:
        for dtype in ("float32", "float64"):
            calc = MLFFCalculator(student(Path(folder), dtype), device=args.device)
            started = time.perf_counter()
            for atoms in frames:
                atoms = atoms.copy()
                atoms.calc = calc
                atoms.get_forces()
            single = args.frames / (time.perf_counter() - started)
            print(f"{dtype:8s} {'one by one':14s} {single:13.1f} {single * 64:10.3g} {1:14.2f}")
            for batch_size in (8, 32, 128):
                calc.calculate_batch(frames[:batch_size], batch_size=batch_size)   # warm-up
                started = time.perf_counter()
                calc.calculate_batch(frames, batch_size=batch_size)
                rate = args.frames / (time.perf_counter() - started)
                print(f"{dtype:8s} {f'batch {batch_size}':14s} {rate:13.1f} "
                      f"{rate * atoms_total / args.frames:10.3g} {rate / single:14.2f}")


if __name__ == "__main__":
    main()

"""Accuracy and cost of the student's two species treatments, with 2, 3 and 5 elements.

    python benchmarks/species_accuracy.py [--out /tmp/species] [--epochs 150] [--banks 0,2,4]

The teacher is ASE's EMT on random fcc alloys of Cu, Ag, Au, Ni and Pd (the first 2, 3 or 5):
`mlff_tools.sample` labels 32-atom cells (MD at 300 and 900 K, rattles, strains, vacancies),
the same frames train a `fast` student (cutoff 5 Å) with each species treatment, and the
held-out test frames give its errors. ``--banks 0`` is one radial weight block per species
pair (n_species^2 blocks); ``M`` > 0 is M shared radial banks mixed per species pair by
learned weights (cost flat in the species). The cost is the model's time per call on a
4096-atom alloy (energy and edge gradients, TorchScript, one thread).
"""

from __future__ import annotations

import argparse
import json
import timeit
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk
from ase.io import write

from mlff_tools.evaluation import evaluate_file
from mlff_tools.model import load_model
from mlff_tools.model.contract import TORCH_DTYPES
from mlff_tools.model.graph import atoms_graph
from mlff_tools.sample import SampleConfig, sample, split_paths
from mlff_tools.train import TrainConfig, train

ELEMENTS = ("Cu", "Ag", "Au", "Ni", "Pd")
CUTOFF = 5.0


def alloy(species, repeat: int, seed: int):
    atoms = bulk("Cu", "fcc", a=3.9, cubic=True).repeat((repeat,) * 3)
    rng = np.random.default_rng(seed)
    atoms.set_chemical_symbols(list(rng.choice(species, len(atoms))))
    return atoms


def cost_ms(model_path: Path, species) -> float:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    atoms = alloy(species, 10, seed=7)
    loaded = load_model(model_path)
    module = loaded.module
    index, edge_index, edge_vec = atoms_graph(atoms, tuple(species), CUTOFF)
    inputs = (torch.from_numpy(index), torch.from_numpy(edge_index),
              torch.from_numpy(edge_vec).to(TORCH_DTYPES[loaded.metadata.dtype]))
    for _ in range(2):
        module(*inputs)
    seconds = min(timeit.repeat(lambda: module(*inputs), number=2, repeat=3)) / 2
    torch.set_num_threads(threads)
    return 1000 * seconds * 4096 / len(atoms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/species")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--counts", default="2,3,5")
    parser.add_argument("--banks", default="0,2,4")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'species':>7s} {'banks':>5s} {'params':>7s} {'force MAE':>10s} {'energy MAE':>11s} "
          f"{'ms/call':>8s}   (meV/Å, meV/atom, 4096 atoms)", flush=True)
    for count in (int(c) for c in args.counts.split(",")):
        species = ELEMENTS[:count]
        folder = out / f"{count}species"
        folder.mkdir(exist_ok=True)
        data = folder / "data.extxyz"
        paths = split_paths(data)
        if not paths["test"].is_file():
            write(folder / "alloy.extxyz", alloy(species, 2, seed=count))
            sample(SampleConfig(output=str(data), teacher="emt",
                                structure=str(folder / "alloy.extxyz"),
                                temperatures=(300.0, 900.0), frames=args.frames,
                                cutoff=CUTOFF, progress=False), log=lambda *_: None)
        for banks in (int(b) for b in args.banks.split(",")):
            model = folder / f"banks{banks}.pt"
            if not model.is_file():
                train(TrainConfig(train=str(paths["train"]), val=str(paths["val"]),
                                  output=str(model), cutoff=CUTOFF, radial_banks=banks,
                                  max_epochs=args.epochs, quiet=True,
                                  resume=model.with_suffix(".ckpt").is_file()))
            errors = evaluate_file(model, paths["test"])["overall"]
            row = {"species": count, "banks": banks,
                   "params": load_model(model).metadata.model["n_params"],
                   "force_mae": errors["force_mae_mev_per_A"],
                   "energy_mae": errors["energy_mae_mev_per_atom"],
                   "ms_per_call": cost_ms(model, species)}
            rows.append(row)
            print(f"{count:7d} {banks:5d} {row['params']:7d} {row['force_mae']:10.1f} "
                  f"{row['energy_mae']:11.2f} {row['ms_per_call']:8.1f}", flush=True)
    (out / "species_accuracy.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

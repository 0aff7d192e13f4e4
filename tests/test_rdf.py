"""The per-frame RDF (one MDAnalysis AnalysisBase pass) equals MDAnalysis's InterRDF."""

import numpy as np
from MDAnalysis.analysis.rdf import InterRDF

from helpers.structures import gallium_nitride, silicon
from mlff_tools.analysis.rdf import _universe, frame_rdf

EXACT = 1e-12


def test_equals_interrdf_for_every_pair():
    """Si (one element) and GaN (two): every pair's curve and bins equal InterRDF's, frame by
    frame, and the weighted average is the weights times the per-frame curves."""
    for atoms, repeat in ((silicon((2, 2, 2), rattle=0.1), 3), (gallium_nitride((3, 3, 2)), 2)):
        frames = [atoms.copy() for _ in range(repeat)]
        for k, frame in enumerate(frames):
            frame.rattle(0.05, seed=k)
        positions = np.array([f.positions for f in frames])
        cells = np.array([f.cell.array for f in frames])
        symbols = atoms.get_chemical_symbols()
        weights = np.linspace(1.0, 2.0, repeat) / np.linspace(1.0, 2.0, repeat).sum()
        ours = frame_rdf(positions, cells, symbols, 4.5, weights=weights)
        universe = _universe(positions, cells, symbols)
        for pair, curves in ours.frames.items():
            a, b = pair.split("-")
            for k in range(repeat):
                reference = InterRDF(universe.select_atoms(f"type {a}"),
                                     universe.select_atoms(f"type {b}"), nbins=len(ours.bins),
                                     range=(0.0, 4.5),
                                     exclusion_block=(1, 1) if a == b else None
                                     ).run(start=k, stop=k + 1).results
                error = np.abs(reference.rdf - curves[k]).max()
                assert error < EXACT, f"{pair} frame {k}: {error:.2e}"
                assert np.abs(reference.bins - ours.bins).max() < EXACT
            assert np.abs(ours.weighted_rdf[pair] - weights @ curves).max() < EXACT
            assert np.abs(ours.rdf[pair] - curves.mean(axis=0)).max() < EXACT


def test_expected_effective_sample_from_the_energy_scatter():
    """The effective sample a reweighted RDF can expect, predicted from a few small frames'
    energy errors, is the Kish fraction of the weights exp(-dE / kT) of many frames of the
    larger cell, when each atom's energy error is independent (a local model's)."""
    from ase import units

    from mlff_tools.analysis.rdf import predicted_effective_fraction

    rng = np.random.default_rng(7)
    temperature, per_atom = 1600.0, 0.005            # K; eV of error per atom
    small, large = 64, 512
    small_frames = rng.normal(0.0, per_atom, (400, small)).sum(axis=1)
    predicted = predicted_effective_fraction(small_frames, small, large, temperature)
    large_frames = rng.normal(0.0, per_atom, (20000, large)).sum(axis=1)
    weights = np.exp(-(large_frames - large_frames.min()) / (units.kB * temperature))
    kish = 1.0 / np.sum((weights / weights.sum()) ** 2) / len(weights)
    assert 0.2 < kish < 0.8, f"the case should be neither trivial nor hopeless: {kish:.2f}"
    assert abs(predicted - kish) < 0.08, f"predicted {predicted:.3f}, Kish {kish:.3f}"
    assert predicted_effective_fraction(small_frames[:2], small, large, temperature) is None

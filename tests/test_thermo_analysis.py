"""Statistics behind validate's verdicts: errors that mean what they say on correlated data."""

import numpy as np

from mlff_tools.analysis.thermo import equilibrated_mean, slope_with_error

COVERAGE = (0.88, 0.99)     # of value ± 2 standard errors over many runs (ideal: 0.95)
RUNS = 300


def ar1(rng, n, phi=0.9, sigma=1.0):
    """Correlated noise like MD thermo samples (autocorrelation phi per sample)."""
    noise = rng.normal(0.0, sigma * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def test_equilibrated_mean_drops_the_transient_and_its_error_is_calibrated():
    """A thermostat relaxing from 10 sigma above its target (time constant 50 samples) plus
    correlated noise: the mean starts after the transient, and the target lies within two
    standard errors of it in about 95% of runs."""
    rng = np.random.default_rng(11)
    steps = np.arange(2000)
    hits, starts = 0, []
    for _ in range(RUNS):
        series = 300.0 + 10.0 * np.exp(-steps / 50.0) + ar1(rng, len(steps))
        mean = equilibrated_mean(series)
        hits += abs(mean.value - 300.0) <= 2 * mean.error
        starts.append(mean.start)
    coverage = hits / RUNS
    assert COVERAGE[0] <= coverage <= COVERAGE[1], f"coverage {coverage:.3f}"
    assert np.median(starts) >= 100, f"median start {np.median(starts)} (transient: 50 samples)"
    assert np.median(starts) <= 600, f"median start {np.median(starts)}: too much thrown away"


def test_plain_mean_of_the_same_runs_is_biased():
    """Without equilibration detection the transient biases the mean beyond its error: the
    reason validate detects it (the failure the SW model hit in 0.5 ps of NVT)."""
    rng = np.random.default_rng(12)
    steps = np.arange(400)
    hits = 0
    for _ in range(RUNS):
        series = 300.0 + 10.0 * np.exp(-steps / 50.0) + ar1(rng, len(steps))
        naive_error = series.std(ddof=1) / np.sqrt(len(series))
        hits += abs(series.mean() - 300.0) <= 2 * naive_error
    assert hits / RUNS < 0.5, f"coverage of the plain mean {hits / RUNS:.3f}"


def test_slope_error_is_calibrated_on_correlated_residuals():
    """A drift of 0.01 per sample under correlated noise: the true slope lies within two
    standard errors of the fitted one in about 95% of runs."""
    rng = np.random.default_rng(13)
    x = np.arange(1000, dtype=float)
    hits = 0
    for _ in range(RUNS):
        slope, error = slope_with_error(x, 0.01 * x + ar1(rng, len(x)))
        hits += abs(slope - 0.01) <= 2 * error
    coverage = hits / RUNS
    assert COVERAGE[0] <= coverage <= COVERAGE[1], f"coverage {coverage:.3f}"


ERROR_RATIO = (0.9, 1.25)    # mean stated error over the slopes' true scatter


def test_slope_error_sees_a_slow_component_under_fast_noise():
    """NVE total energy: fast integrator noise (correlation 0.5 per sample) over a weak slow
    part (40 samples, 0.4 of the fast amplitude), as in a water student's 20 ps run. The
    stated error matches the slopes' scatter over many runs; the autocorrelation summed to
    its first non-positive lag, stopped by the fast noise, gave 0.86 of it."""
    rng = np.random.default_rng(14)
    x = np.arange(3000, dtype=float)
    fits = np.array([slope_with_error(x, 0.01 * x + ar1(rng, len(x), phi=0.5)
                                      + ar1(rng, len(x), phi=1 - 1 / 40, sigma=0.4))
                     for _ in range(RUNS)])
    ratio = fits[:, 1].mean() / fits[:, 0].std()
    assert ERROR_RATIO[0] <= ratio <= ERROR_RATIO[1], f"stated error / true scatter {ratio:.2f}"
    coverage = np.mean(np.abs(fits[:, 0] - 0.01) <= 2 * fits[:, 1])
    assert COVERAGE[0] <= coverage <= COVERAGE[1], f"coverage {coverage:.3f}"


MEAN_UNDER_SLOW_RATIO = 0.8    # the start chosen from the data still costs some of it


def test_mean_error_sees_a_slow_component_under_fast_noise():
    """A liquid's density in NPT or temperature under a thermostat: fast noise over a weak
    slow part (as in the drift test). The error of the equilibrated mean takes the blocked
    g too: over many runs its ±2 errors cover the true value about as often as they should;
    the summed autocorrelation alone covered it in 84% of runs with errors 0.70-0.76 of the
    means' true scatter (choosing the start from the same data still costs part of it)."""
    rng = np.random.default_rng(14)
    means = [equilibrated_mean(ar1(rng, 3000, phi=0.5) + ar1(rng, 3000, phi=1 - 1 / 40,
                                                              sigma=0.4))
             for _ in range(RUNS)]
    values = np.array([m.value for m in means])
    errors = np.array([m.error for m in means])
    ratio = errors.mean() / values.std()
    assert MEAN_UNDER_SLOW_RATIO <= ratio <= ERROR_RATIO[1], f"stated error / scatter {ratio:.2f}"
    coverage = np.mean(np.abs(values) <= 2 * errors)
    assert COVERAGE[0] <= coverage <= COVERAGE[1], f"coverage {coverage:.3f}"


def test_too_few_samples_give_no_number():
    mean = equilibrated_mean(np.array([1.0, 2.0, 3.0]))
    assert np.isnan(mean.value) and np.isnan(mean.error)
    assert all(np.isnan(v) for v in slope_with_error(np.arange(3.0), np.arange(3.0)))

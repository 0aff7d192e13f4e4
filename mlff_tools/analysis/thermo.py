"""Thermodynamics of an MD run, each number with its standard error.

Samples of MD are correlated, so every error here is widened by the statistical
inefficiency g (the number of samples that carry one independent one): the
naive error times sqrt(g). Means are taken after equilibration, detected as the
start that leaves the most effective samples, n / g (Chodera, J. Chem. Theory
Comput. 12, 1799 (2016)): a thermostat that has not settled is not averaged in.

    drift = energy_metrics(thermo, natoms, dt_ps)["nve_drift_mev_per_atom_ps"]
    mean = equilibrated_mean(thermo["Temp"]); mean.value, mean.error, mean.start
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WARMUP_FRACTION = 0.1      # NVE: the start dropped before the drift is fitted
MIN_BLOCKS = 8             # blocking: the fewest blocks a variance of block means is taken on


def statistical_inefficiency(values: np.ndarray) -> float:
    """g = 1 + 2 sum of the autocorrelation, summed up to its first non-positive lag."""
    centred = np.asarray(values, float) - np.mean(values)
    denominator = float(np.dot(centred, centred))
    g = 1.0
    if denominator > 0:
        for lag in range(1, len(centred) // 2):
            rho = float(np.dot(centred[:-lag], centred[lag:])) / denominator
            if rho <= 0:
                break
            g += 2 * rho * (1 - lag / len(centred))
    return g


def blocked_inefficiency(residual: np.ndarray, min_blocks: int = MIN_BLOCKS,
                         fitted: int = 2) -> float:
    """g of a fit's residuals by blocking (Flyvbjerg and Petersen, J. Chem. Phys. 91, 461
    (1989)): block sizes doubling while at least ``min_blocks`` blocks remain, g(b) =
    b var(block means) / var, the largest taken. Each block variance counts the degrees of
    freedom the fit took, ``fitted`` (2 for a line, 1 for a mean): (k - 1) / (k - 1 - fitted)
    for k blocks.

    Unlike the autocorrelation summed to its first non-positive lag, this sees a weak slow
    component under fast noise: the NVE total energy of velocity Verlet fluctuates fast (the
    integrator's error, ~0.1 ps) over a slow part that follows the structure (ps), and the
    summed autocorrelation, stopped by the fast part's noise, missed the slow part and gave
    drift errors 2-3x too small on water (10 ps halves of one run 4.6 errors apart)."""
    residual = np.asarray(residual, float)
    n, variance = len(residual), float(np.var(residual, ddof=1))
    if variance <= 0:
        return 1.0
    g, size = 1.0, 2
    while n // size >= min_blocks:
        blocks = n // size
        means = residual[: blocks * size].reshape(blocks, size).mean(axis=1)
        g = max(g, size * float(np.var(means, ddof=1)) / variance
                * (blocks - 1) / max(blocks - 1 - fitted, 1))
        size *= 2
    return g


def slope_with_error(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error, widened for correlated residuals (their
    statistical inefficiency by blocking, `blocked_inefficiency`)."""
    if len(x) < 4:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    naive = np.sqrt(np.sum(residual ** 2) / (len(x) - 2) / np.sum((x - x.mean()) ** 2))
    return float(slope), float(naive * np.sqrt(blocked_inefficiency(residual)))


@dataclass(frozen=True)
class Mean:
    value: float
    error: float                 # standard error of the mean
    start: int                   # first sample averaged (equilibration ends there)
    effective_samples: float     # independent samples in the average


def equilibrated_mean(values: np.ndarray, latest_start: float = 0.75) -> Mean:
    """Mean after equilibration: the start (up to ``latest_start`` of the run) that leaves
    the most effective samples (by the summed autocorrelation, which is smooth in the
    start). Its error takes the larger g of that and of blocking the rest of the run: a
    slow fluctuation under fast noise (a liquid's density in NPT, its temperature under a
    thermostat) stops the summed autocorrelation early, as it did the NVE drift's."""
    values = np.asarray(values, float)
    if len(values) < 4:
        return Mean(float("nan"), float("nan"), 0, 0.0)
    best = (0, -1.0, 1.0)
    for start in range(0, int(len(values) * latest_start), max(1, len(values) // 50)):
        g = statistical_inefficiency(values[start:])
        effective = (len(values) - start) / g
        if effective > best[1]:
            best = (start, effective, g)
    start, _, g = best
    tail = values[start:]
    g = max(g, blocked_inefficiency(tail - tail.mean(), fitted=1))
    return Mean(float(tail.mean()), float(tail.std(ddof=1) * np.sqrt(g / len(tail))), start,
                float(len(tail) / g))


def after_warmup(values: np.ndarray) -> slice:
    return slice(int(len(values) * WARMUP_FRACTION), None)


def energy_metrics(thermo: dict, natoms: int, dt_ps: float) -> dict:
    """Total-energy drift (meV/atom/ps) with its error, and fluctuations, after the warm-up."""
    time_ps = thermo["Step"] * dt_ps
    keep = after_warmup(time_ps)
    etotal = thermo["TotEng"][keep] / natoms * 1000
    kinetic = thermo["KinEng"][keep] / natoms * 1000
    slope, slope_error = slope_with_error(time_ps[keep], etotal)
    duration = float(time_ps[keep][-1] - time_ps[keep][0]) if len(time_ps[keep]) else 0.0
    ke_fluctuation = float(np.std(kinetic)) if len(kinetic) else float("nan")
    return {
        "nve_drift_mev_per_atom_ps": slope,
        "nve_drift_mev_per_atom_ns": slope * 1000,
        "nve_drift_error_mev_per_atom_ps": slope_error,
        "etotal_fluctuation_mev_per_atom": float(np.std(etotal)) if len(etotal) else float("nan"),
        "ke_fluctuation_mev_per_atom": ke_fluctuation,
        "drift_over_ke_fluctuation": abs(slope) * duration / ke_fluctuation
        if ke_fluctuation > 0 else float("nan"),
        "fluctuation_ratio": float(np.std(etotal)) / ke_fluctuation
        if ke_fluctuation > 0 else float("nan"),
        "analysed_ps": duration,
        "warmup_ps": float(time_ps[keep][0] - time_ps[0]) if len(time_ps[keep]) else 0.0,
    }


def ensemble_metrics(thermo: dict, dt_ps: float) -> dict:
    """Equilibrated means of temperature, pressure, density and volume with their standard
    errors, where each equilibrates and how long is averaged; volume and density drift."""
    time_ps = thermo["Step"] * dt_ps
    out = {}
    for key, name in (("Temp", "temperature_K"), ("Press", "pressure_bar"),
                      ("Density", "density_g_cm3"), ("Volume", "volume_A3")):
        mean = equilibrated_mean(thermo[key])
        out[f"mean_{name}"] = mean.value
        out[f"mean_{name}_error"] = mean.error
        out[f"std_{name}"] = float(np.std(thermo[key][mean.start:]))
        out[f"{name}_equilibrated_ps"] = float(time_ps[mean.start] - time_ps[0])
        out[f"{name}_averaged_ps"] = float(time_ps[-1] - time_ps[mean.start])
    keep = after_warmup(time_ps)
    for key, name in (("Volume", "volume_drift_A3_per_ps"), ("Density", "density_drift_g_cm3_per_ps")):
        out[name] = (float(np.polyfit(time_ps[keep], thermo[key][keep], 1)[0])
                     if len(time_ps[keep]) >= 3 else float("nan"))
    return out

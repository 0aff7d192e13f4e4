"""NVE molecular dynamics with pair_style mlff conserves energy (the SW reference model)."""

import numpy as np
import pytest

from mlff_tools.lammps import run_lammps

pytestmark = pytest.mark.slow

DRIFT_LIMIT = 0.005         # meV/atom/ps (5 meV/atom/ns); native SW here: 0.0007
FLUCTUATION_LIMIT = 0.05    # meV/atom, std of the total energy; native SW here: 0.012
TRAJECTORY_TOL = 1e-7       # eV/atom, mlff vs native SW over the first 200 steps


def nve_run(pair_lines, steps, *, dtype_note=""):
    thermo = run_lammps([
        "units metal", "lattice diamond 5.431", "region box block 0 4 0 4 0 4",
        "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855",
        "velocity all create 2000 4928459 loop geom", *pair_lines,
        "timestep 0.001", "fix nve all nve",
        "thermo 10", "thermo_style custom step time pe ke etotal temp",
        "thermo_modify format float %.15g",
        f"run {steps}",
    ])
    return thermo[-1]


def drift_and_fluctuation(thermo, natoms):
    """Least-squares slope (meV/atom/ps) and std (meV/atom) of etotal after a 10% warm-up."""
    start = len(thermo["Time"]) // 10
    time, etotal = thermo["Time"][start:], thermo["TotEng"][start:] / natoms * 1000
    slope = np.polyfit(time, etotal, 1)[0]
    return slope, etotal.std()


@pytest.mark.parametrize("model", ["si64", "si32"])
def test_nve_conserves_energy(models, model):
    """2 ps of NVE at about 1000 K with a 1 fs step: no drift beyond the stated limit."""
    thermo = nve_run([f"pair_style mlff {models[model]}", "pair_coeff * * Si"], 2000)
    slope, fluctuation = drift_and_fluctuation(thermo, 512)
    assert abs(slope) < DRIFT_LIMIT, f"drift {slope:.4f} meV/atom/ps"
    assert fluctuation < FLUCTUATION_LIMIT, f"fluctuation {fluctuation:.4f} meV/atom"
    assert thermo["Temp"][-1] > 500, "the crystal did not heat up: dynamics did not happen"


def test_nve_trajectory_follows_native_sw(models, potentials):
    """The float64 model follows native SW's trajectory step by step (before chaos sets in)."""
    mlff = nve_run([f"pair_style mlff {models['si64']}", "pair_coeff * * Si"], 200)
    native = nve_run(["pair_style sw", f"pair_coeff * * {potentials / 'Si.sw'} Si"], 200)
    err = np.abs(mlff["PotEng"] - native["PotEng"]).max() / 512
    assert err < TRAJECTORY_TOL, f"potential energy differs by up to {err:.2e} eV/atom"

"""The phase of a run from its atoms' motion: real MD of copper (ASE's EMT), solid and liquid."""

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from mlff_tools.analysis.structure import mean_squared_displacement, measured_phase


def copper_md(temperature, picoseconds, seed=3, every=20, rattle=0.0):
    """Wrapped positions, cells and times (ps) of Langevin MD of 108 Cu atoms, 2 fs steps."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    atoms.rattle(rattle, seed=seed)
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature, rng=np.random.default_rng(seed))
    dynamics = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False,
                        rng=np.random.default_rng(seed))
    positions, cells, times = [], [], []
    for frame in range(int(picoseconds * 1000 / 2 / every) + 1):
        if frame:
            dynamics.run(every)
        atoms.wrap()
        positions.append(atoms.positions.copy())
        cells.append(atoms.cell.array.copy())
        times.append(frame * every * 2e-3)
    return np.array(positions), np.array(cells), np.array(times)


def test_hot_crystal_is_solid():
    """Cu at 800 K (below its melting point) vibrates: solid, though hot."""
    phase = measured_phase(*copper_md(800.0, 2.0))
    assert phase["phase"] == "solid" and phase["msd_A2"] < 0.5, phase


def test_melt_is_liquid():
    """Cu at 3000 K from a disordered start (a perfect periodic crystal superheats) diffuses:
    liquid."""
    phase = measured_phase(*copper_md(3000.0, 2.0, rattle=0.5))
    assert phase["phase"] == "liquid" and phase["diffusion_A2_per_ps"] > 0.1, phase


def test_msd_sees_through_periodic_wrapping():
    """An atom walking steadily through the boundary of a 10 Å box: its MSD grows as t^2,
    although its wrapped position jumps back (centre of mass held still by a partner)."""
    cell = np.diag([10.0, 10.0, 10.0])
    steps = np.arange(50)
    walker = np.stack([(9.0 + 0.5 * steps) % 10.0, np.full(50, 5.0), np.full(50, 5.0)], 1)
    partner = np.stack([(5.0 - 0.5 * steps) % 10.0, np.full(50, 1.0), np.full(50, 1.0)], 1)
    positions = np.stack([walker, partner], axis=1)
    msd = mean_squared_displacement(positions, np.repeat(cell[None], 50, axis=0))
    assert msd[-1] == pytest.approx((0.5 * 49) ** 2, rel=1e-12)

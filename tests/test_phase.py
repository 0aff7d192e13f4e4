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


def silicon_sw_md(schedule: list[str], frames: int = 50, every: int = 100):
    """Positions, cells and times (ps) of 64 Si atoms under native `pair_style sw` (1 fs),
    sampled after the LAMMPS commands of ``schedule`` (Langevin fixes and runs)."""
    from helpers.lammps import frame
    from mlff_tools.lammps import make_lammps, potentials_dir

    lmp = make_lammps()
    lmp.commands_list([
        "units metal", "atom_style atomic", "atom_modify map yes", "lattice diamond 5.431",
        "region box block 0 2 0 2 0 2", "create_box 1 box", "create_atoms 1 box",
        "mass 1 28.0855", "pair_style sw", f"pair_coeff * * {potentials_dir() / 'Si.sw'} Si",
        "timestep 0.001", "velocity all create 1200 5 mom yes rot yes", "fix nve all nve",
        *schedule])
    positions, cells = [], []
    for _ in range(frames):
        lmp.command(f"run {every}")
        xyz, cell = frame(lmp)
        positions.append(xyz)
        cells.append(cell)
    lmp.close()
    return np.array(positions), np.array(cells), np.arange(frames) * every * 1e-3


def test_a_solid_is_crystalline_or_amorphous():
    """Both runs are solid by their motion; their mean positions tell them apart. Diamond Si
    at 1200 K scatters into a Bragg peak of |<exp(i k.r)>|^2 ~ 1 (measured 0.999); Si melted
    at 4000 K and quenched to 300 K in 10 ps (SW makes amorphous Si so) peaks at 0.13, the
    level of disordered sites in 64 atoms."""
    from mlff_tools.analysis.structure import phase_text

    crystal = measured_phase(*silicon_sw_md(["fix heat all langevin 1200 1200 0.1 5",
                                             "run 1000"]), ["Si"] * 64)
    glass = measured_phase(*silicon_sw_md([
        "fix heat all langevin 4000 4000 0.1 5", "run 5000", "unfix heat",
        "fix heat all langevin 4000 300 0.1 5", "run 10000", "unfix heat",
        "fix heat all langevin 300 300 0.1 5", "run 2000"]), ["Si"] * 64)
    assert crystal["phase"] == glass["phase"] == "solid", (crystal, glass)
    assert crystal["order"] == "crystalline" and crystal["bragg_peak"] > 0.9, crystal
    assert glass["order"] == "amorphous" and glass["bragg_peak"] < 0.2, glass
    assert phase_text(glass).startswith("solid, amorphous (a glass; mean-squared"), glass
    assert phase_text(crystal).startswith("solid, crystalline (mean-squared"), crystal


def test_order_needs_enough_atoms_of_an_element():
    """Eight atoms cannot tell order from chance: the order is not named."""
    from mlff_tools.analysis.structure import bragg_peak

    positions, cells, times = silicon_sw_md(["fix heat all langevin 300 300 0.1 5",
                                             "run 100"], frames=5)
    assert bragg_peak(positions[:, :8], cells) is None
    assert measured_phase(positions[:, :8], cells, times)["order"] is None

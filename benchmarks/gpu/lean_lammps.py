"""Trim a LAMMPS source tree to the styles the GPU checks use, so that its Kokkos CUDA build
(every file through nvcc) fits in the GPU machine's minutes.

    python benchmarks/gpu/lean_lammps.py path/to/lammps/src

Removes the pair, fix, compute, dump, atom, minimize and molecular-topology styles (X.cpp and
X.h, and their X_kokkos twins) that are not in KEEP, except those another kept file includes
or whose class another kept file names (atom.cpp casts to AtomVecHybrid, known through the
generated style headers); repeated until nothing more is needed. Commands, regions, neighbour, reader and
integrator styles and all non-style files stay. Prints what it removed.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

# what benchmarks/gpu/checks.py and the LAMMPS inputs of mlff-tools use, and the Kokkos
# sources that LAMMPS's cmake/Modules/Packages/KOKKOS.cmake names one by one
KEEP = {
    "pair_sw", "pair_zero", "pair_hybrid", "pair_hybrid_overlay",
    "fix_nve", "fix_nh", "fix_nvt", "fix_npt", "fix_nph", "fix_nh_sphere", "fix_langevin",
    "fix_momentum", "fix_property_atom", "fix_minimize", "fix_store_atom", "fix_store_global",
    "fix_dummy", "fix_neigh_history", "fix_ave_time", "fix_print",
    "compute_pe", "compute_pe_atom", "compute_ke", "compute_ke_atom", "compute_temp",
    "compute_pressure", "compute_stress_atom", "compute_centroid_stress_atom",
    "compute_property_atom", "compute_reduce", "compute_msd", "compute_rdf",
    "dump_atom", "dump_custom", "dump_xyz",
    "atom_vec_atomic", "atom_vec_charge",
    "min_cg", "min_sd", "min_linesearch", "min_fire",
}
PRUNED_KINDS = {"PAIR", "FIX", "COMPUTE", "DUMP", "ATOM", "MINIMIZE", "BOND", "ANGLE",
                "DIHEDRAL", "IMPROPER", "NTOPO"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([\w./]+)\.h"', re.M)
STYLE = re.compile(r"^#ifdef (\w+)_CLASS", re.M)
CLASS = re.compile(r"^\s*class (\w+)\s*:", re.M)
WORD = re.compile(r"\w+")


def cmake_named(src: Path) -> set[str]:
    text = (src.parent / "cmake/Modules/Packages/KOKKOS.cmake").read_text()
    return set(re.findall(r"KOKKOS_PKG_SOURCES_DIR\}/(\w+)\.cpp", text))


def main(src: Path) -> None:
    folders = [src, *(p for p in src.iterdir() if p.is_dir())]
    files = {f: f.read_text(errors="replace") for d in folders for f in d.glob("*.[ch]*")
             if f.suffix in (".cpp", ".h")}
    stems: dict[str, list[Path]] = {}
    for f in files:
        stems.setdefault(f.stem, []).append(f)
    keep = KEEP | cmake_named(src)
    removable = set()
    for stem, paths in stems.items():
        header = next((p for p in paths if p.suffix == ".h"), None)
        kind = STYLE.findall(files[header]) if header else []
        base = stem.removesuffix("_kokkos")
        if kind and kind[0] in PRUNED_KINDS and stem not in keep and base not in keep:
            removable.add(stem)
    words = {f: set(WORD.findall(text)) for f, text in files.items()}
    classes = {stem: {c for p in stems[stem] if p.suffix == ".h" for c in CLASS.findall(files[p])}
               for stem in removable}
    while True:     # keep whatever a kept file includes or names
        kept = [f for f in files if f.stem not in removable]
        needed = {name.rsplit("/", 1)[-1] for f in kept for name in INCLUDE.findall(files[f])}
        named = set().union(*(words[f] for f in kept))
        back = {stem for stem in removable if stem in needed or classes[stem] & named}
        if not back:
            break
        removable -= back
    for stem in sorted(removable):
        for path in stems[stem]:
            path.unlink()
    print(f"lean LAMMPS: removed {len(removable)} styles "
          f"({sum(len(stems[s]) for s in removable)} files) from {src}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

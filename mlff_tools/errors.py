"""One root for every error a user can fix.

Each module's error (``ModelFileError``, ``DatasetError``, ``TeacherError``, ...) derives
from :class:`MLFFError` (and, for code that caught them before, from ``ValueError`` or
``RuntimeError``). ``mlff-tools`` prints an ``MLFFError`` or an ``OSError`` (a missing file,
a full disk) as one line and exits with status 2; anything else is a bug in mlff and shows
its traceback.
"""


class MLFFError(Exception):
    """A problem with the user's input, files or settings; the message names it and the fix."""


class ConfigError(MLFFError, ValueError):
    """A setting out of its range or inconsistent with another."""


class StructureError(MLFFError, ValueError):
    """A structure that cannot be used: non-finite positions, unknown elements, bad cell."""


class EvaluationError(MLFFError, ValueError):
    """A model gave non-finite energies or forces on a structure."""


class MissingFileError(MLFFError, FileNotFoundError):
    """A file mlff needs is not there (an input, or part of the installation)."""

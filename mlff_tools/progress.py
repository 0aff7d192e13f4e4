"""Progress bars for long work (sampling, labelling, training, MD).

On a terminal a tqdm bar redraws ten times a second. A batch job's log (stderr a file, as
under Slurm) keeps every redraw, so there the same bar redraws at most once a minute: a day
of training adds about 1,500 redraws to the log instead of nearly a million, and the log's
last state is never more than a minute old.
"""
import sys

LOG_INTERVAL = 60.0      # s between redraws where the bar's stream is not a terminal


def progress_bar(*, enabled: bool = True, file=None, **kwargs):
    """A tqdm bar (``tqdm.auto``: a widget in a notebook) on ``file`` (default stderr);
    ``enabled=False`` draws nothing. Other keywords go to tqdm (total, unit, desc, ...)."""
    from tqdm.auto import tqdm

    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    terminal = bool(isatty and isatty())
    return tqdm(file=stream, disable=not enabled, dynamic_ncols=True,
                mininterval=0.1 if terminal else LOG_INTERVAL, **kwargs)

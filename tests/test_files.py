"""Every file mlff writes appears whole or not at all (mlff_tools.files.replacing)."""

import errno
import os
import stat
from pathlib import Path

import pytest

from mlff_tools.files import replacing, write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    """A writer that fails halfway (here a full disk) leaves the previous file as it was."""
    path = tmp_path / "model.pt"
    path.write_text("the old model")
    with pytest.raises(OSError, match="No space left"):
        with replacing(path) as tmp:
            with open(tmp, "w") as handle:
                handle.write("half of a new mo")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert path.read_text() == "the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    """Ctrl-C during a write is not an error to translate, but the file is still kept."""
    path = tmp_path / "state.json"
    path.write_text("{}")
    with pytest.raises(KeyboardInterrupt):
        with replacing(path) as tmp:
            open(tmp, "w").write('{"round"')
            raise KeyboardInterrupt
    assert path.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_written_file_replaces_the_old_one_with_the_usual_permissions(tmp_path, umask):
    path = tmp_path / "train.extxyz"
    path.write_text("old")
    previous = os.umask(umask)
    try:
        with replacing(path, suffix=".extxyz") as tmp:
            assert tmp.endswith(".extxyz") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "w").write("new")
    finally:
        os.umask(previous)
    assert path.read_text() == "new"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~umask, f"mode {mode:o} with umask {umask:03o}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.extxyz"]


def test_a_report_cut_off_by_a_full_disk_keeps_the_old_report(tmp_path, monkeypatch):
    """write_text (reports, LAMMPS inputs, JSON summaries): the disk fills after half the
    text is out; the previous report is what a reader finds, and no temporary file stays."""
    path = tmp_path / "report.json"
    path.write_text('{"verdict": "pass"}')
    plain = Path.write_text

    def half_then_full(self, text, *args, **kwargs):
        plain(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_text(path, '{"verdict": "fail", "checks": []}')
    monkeypatch.undo()
    assert path.read_text() == '{"verdict": "pass"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    write_text(path, '{"verdict": "fail"}')
    assert path.read_text() == '{"verdict": "fail"}'


def test_a_plot_cut_off_by_a_full_disk_keeps_the_old_plot(tmp_path, monkeypatch):
    """save_figure (the reports' PNGs): the disk fills halfway through the new image; the old
    image stays, nothing else is left, and the figure is closed either way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from mlff_tools.files import save_figure

    path = tmp_path / "rdf.png"
    path.write_bytes(b"the old plot")
    plain = Figure.savefig

    def half_then_full(self, target, *args, **kwargs):
        plain(self, target, *args, **kwargs)
        data = Path(target).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    monkeypatch.setattr(Figure, "savefig", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        save_figure(fig, path, dpi=50)
    monkeypatch.undo()
    assert path.read_bytes() == b"the old plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rdf.png"]
    assert fig.number not in plt.get_fignums(), "the failed figure was left open"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the new plot is not a PNG"
    assert fig.number not in plt.get_fignums()

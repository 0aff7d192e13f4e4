"""The HTML page of `mlff-tools validate`: tables of every check and PNG plots (matplotlib)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np


def _plot_thermo(run, report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thermo = run.thermo
    time_ps = thermo["Step"] * run.dt_ps
    panels = [("TotEng", "total energy (eV/atom)", run.natoms), ("PotEng", "potential energy "
              "(eV/atom)", run.natoms), ("Temp", "temperature (K)", 1), ("Press", "pressure (bar)",
              1), ("Volume", "volume (Å³)", 1), ("Density", "density (g/cm³)", 1)]
    fig, axes = plt.subplots(3, 2, figsize=(10, 8), sharex=True)
    for ax, (key, label, scale) in zip(axes.flat, panels):
        if key in thermo:
            ax.plot(time_ps, thermo[key] / scale, lw=1)
        ax.set_ylabel(label)
    for ax in axes[-1]:
        ax.set_xlabel("time (ps)")
    collapse = report["stability"]
    if collapse.get("collapsed"):
        for ax in axes.flat:
            ax.axvline(collapse["step"] * run.dt_ps, color="red", ls="--")
    fig.suptitle(f"{report['ensemble'].upper()}, {run.natoms} atoms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_rdfs(curves, path: Path, sources: dict) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
    for ax, (pair, (student, teacher)) in zip(axes[0], curves.items()):
        ax.plot(*student, label="student (LAMMPS)")
        if teacher is not None:
            reweighted = "reweighted" in sources.get(pair, {}).get("source", "")
            ax.plot(*teacher, label="teacher (reweighted)" if reweighted else "teacher",
                    ls="--")
        ax.set_title(pair)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_parity(parity, path: Path) -> None:
    import matplotlib.pyplot as plt

    teacher, student = parity
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(teacher, student, s=3, alpha=0.5)
    low, high = float(min(teacher.min(), student.min())), float(max(teacher.max(),
                                                                   student.max()))
    ax.plot([low, high], [low, high], color="black", lw=1)
    ax.set_xlabel("teacher force (eV/Å)")
    ax.set_ylabel("student force (eV/Å)")
    ax.set_title("forces on the student's own frames")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_html(path: Path, report: dict, run, curves, parity, report_dir: Path) -> None:
    """Write the page and its PNGs (in ``report_dir``)."""
    import os

    images = []
    if len(run.thermo.get("Step", [])) >= 2:
        _plot_thermo(run, report, report_dir / "thermo.png")
        images.append(("Thermodynamics", report_dir / "thermo.png"))
    if curves:
        _plot_rdfs(curves, report_dir / "rdf.png", report.get("rdf", {}))
        images.append(("Radial distribution functions", report_dir / "rdf.png"))
    if parity is not None:
        _plot_parity(parity, report_dir / "parity.png")
        images.append(("Force parity", report_dir / "parity.png"))

    figures = "".join(
        f"<h2>{html.escape(title)}</h2><img src='{html.escape(os.path.relpath(image, path.parent))}'>"
        for title, image in images)
    summary = (f"{report['natoms']} atoms, {report['ensemble'].upper()}, {report['steps_done']} "
               f"of {report['steps_planned']} steps of {report['timestep_fs']:g} fs, "
               f"{report['atom_steps_per_s']:.3g} atom-steps/s")
    if report.get("phase", {}).get("phase") in ("solid", "liquid"):
        phase = report["phase"]
        summary += (f"; measured phase: {phase['phase']} (mean-squared displacement "
                    f"{phase['msd_A2']:.2g} Å² over {phase['over_ps']:.3g} ps)")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mlff validate: {html.escape(report['input'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px}}
{CHECK_STYLES}img{{max-width:100%}}</style></head>
<body><h1>Verdict: {report['verdict'].upper()}</h1>
<p>{html.escape(report['input'])}<br>model {html.escape(report['model'])}<br>{summary}</p>
{checks_table(report["checks"])}
{figures}
<h2>Every number</h2><pre>{html.escape(json.dumps(jsonable(report), indent=1))}</pre>
</body></html>
"""
    path.write_text(page)


CHECK_STYLES = ".pass{background:#e8f6e8}.fail{background:#fbe3e3}.cannot-judge{background:#fdf3d8}"


def checks_table(checks: list[dict]) -> str:
    """The verdict table of validate and distill: value ± error, threshold, status, detail."""
    rows = "".join(
        f"<tr class='{c['status'].replace(' ', '-')}'><td>{html.escape(c['name'])}</td>"
        f"<td>{html.escape(value_text(c))}</td><td>{html.escape(_fmt(c['threshold']))}</td>"
        f"<td>{html.escape(status_text(c))}</td><td>{html.escape(c.get('detail', ''))}</td></tr>"
        for c in checks)
    return ("<table><tr><th>check</th><th>value ± standard error</th><th>threshold</th>"
            f"<th></th><th></th></tr>{rows}</table>")


def value_text(check: dict) -> str:
    """"0.008785 ± 0.04" (a check with a standard error) or the plain value."""
    error = check.get("error")
    if error is not None and isinstance(error, float) and np.isfinite(error):
        return f"{_fmt(check['value'])} ± {error:.2g}"
    return _fmt(check["value"])


def status_text(check: dict) -> str:
    return {"pass": "pass", "fail": "FAIL"}.get(check["status"], check["status"])


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if np.isfinite(value) else "n/a"
    return str(value)


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value

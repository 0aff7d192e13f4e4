"""The HTML page of `mlff-tools validate`: tables of every check and PNG plots (matplotlib)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from .files import save_figure, write_text


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
    save_figure(fig, path, dpi=90)


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
    save_figure(fig, path, dpi=90)


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
    save_figure(fig, path, dpi=90)


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
        from .analysis.structure import phase_text

        summary += f"; measured phase: {phase_text(phase)}"
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
    write_text(path, page)


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


# ---------------------------------------------------------------------- distill


def distill_headline(config, state: dict, final: dict) -> dict:
    md = final["held_out"].get("md", final["held_out"].get("all", {}))

    def worst_pair(run: str) -> dict:
        pairs = final[run]["rdf"].values()
        return max(pairs, key=lambda v: v["error_percent"], default={})

    collapsed = [t for t, s in final["stability"].items() if s.get("collapsed")]
    out = {
        "speedup_over_teacher": final["speedup"],
        "student_atom_steps_per_s": final["student_speed"]["atom_steps_per_s"],
        "student_atom_steps_per_s_pt": final.get(
            "student_speed_pt", final["student_speed"])["atom_steps_per_s"],
        "student_pt_evaluator": final.get("student_speed_pt", {}).get("evaluator", "torch"),
        "compiled_model": final.get("compiled_model"),
        "teacher_atom_steps_per_s": final["teacher_speed"]["atom_steps_per_s"],
        "force_mae_mev_per_A": md.get("force_mae_mev_per_A"),
        "energy_mae_mev_per_atom": md.get("energy_mae_mev_per_atom"),
        "nve_drift_mev_per_atom_ns": final["nve"].get("nve_drift_mev_per_atom_ns"),
        "nve_drift_error_mev_per_atom_ns": 1000 * final["nve"].get(
            "nve_drift_error_mev_per_atom_ps", float("nan")),
        "nve_verdict": final["nve"].get("verdict"),
        "rdf_method": config.rdf_method,
        "rdf_hot_failed": final["rdf_hot"].get("failed"),
        "rdf_hot_skipped": final["rdf_hot"].get("skipped"),
        "collapsed_at_K": collapsed,
        "density_g_cm3": final.get("density", {}).get("student_g_cm3"),
        "density_teacher_g_cm3": final.get("density", {}).get("teacher_g_cm3"),
        "rounds": len(state["rounds"]),
        "verdict": final.get("verdict"),
    }
    for run in ("cold", "hot"):
        worst = worst_pair(f"rdf_{run}")
        out[f"temperature_K_{run}"] = final[f"rdf_{run}"]["temperature_K"]
        out[f"phase_{run}"] = final[f"rdf_{run}"].get("phase", {}).get("phase")
        out[f"order_{run}"] = final[f"rdf_{run}"].get("phase", {}).get("order")
        out[f"rdf_error_percent_{run}"] = worst.get("error_percent")
        out[f"rdf_standard_error_percent_{run}"] = worst.get("standard_error_percent")
        out[f"rdf_raw_error_percent_{run}"] = worst.get("raw_error_percent")
        out[f"rdf_noise_floor_percent_{run}"] = worst.get("noise_floor_percent")
        out[f"rdf_effective_fraction_{run}"] = worst.get("effective_fraction")
        out[f"rdf_weights_{run}"] = worst.get("method")
        out[f"rdf_per_atom_energy_error_kt_{run}"] = worst.get("per_atom_energy_error_over_kt")
    return out


def print_distill_headline(report: dict, out: Path) -> None:
    h, final = report["headline"], report["final"]
    config = report["config"]
    temps = ", ".join(final["stability"])

    def fmt(value, spec):
        return format(value, spec) if value is not None else "n/a"

    print()
    print(f"mlff distill: {report['teacher']['name']} -> {final['model']}"
          + (f" and {final['compiled_model']} (compiled for this machine)"
             if final.get("compiled_model") else ""))
    # model.pt (as `pair_style mlff model.pt` runs it) and model.pt2, the faster first: the
    # headline's (reports written before the native evaluator name model.pt's "torchscript")
    pt = final.get("student_speed_pt", final.get("student_speed_torchscript", {}))
    files = [(Path(final["model"]).name + (" (native evaluator)"
                                           if pt.get("evaluator") == "native" else ""),
              pt.get("atom_steps_per_s"))]
    compiled = final.get("compiled_model")
    if compiled:
        files.append((Path(compiled).name, final.get("student_speed_compiled",
                                                     final["student_speed"])["atom_steps_per_s"]))
    shown = [f"{name} {speed:.3g}" for name, speed in
             sorted((f for f in files if f[1]), key=lambda f: -f[1])]
    print(f"speed-up     {h['speedup_over_teacher']:.0f}x  (student {shown[0]} atom-steps/s "
          f"in LAMMPS at {final['student_speed']['atoms']} atoms"
          + "".join(f", {other}" for other in shown[1:])
          + f"; teacher {h['teacher_atom_steps_per_s']:.3g} at {final['teacher_speed']['atoms']} "
          "atoms through ASE; one core each)")
    print(f"accuracy     force MAE {fmt(h['force_mae_mev_per_A'], '.1f')} meV/Å, energy MAE "
          f"{fmt(h['energy_mae_mev_per_atom'], '.2f')} meV/atom on held-out teacher MD frames")
    drift_error = h.get("nve_drift_error_mev_per_atom_ns")
    print(f"NVE drift    {fmt(h['nve_drift_mev_per_atom_ns'], '.2f')}"
          + (f" ± {drift_error:.2g}" if drift_error is not None and np.isfinite(drift_error)
             else "")
          + f" meV/atom/ns ({config['nve_ps']:g} ps, {config['timestep']:g} fs"
          + (f"; {h['nve_verdict']}" if h.get("nve_verdict") else "") + ")")
    def rdf(run: str) -> str:
        from .validate import Thresholds

        phase = h.get(f"phase_{run}") or "phase unknown"
        if h.get(f"order_{run}"):
            phase += f", {h[f'order_{run}']}"
        text = (f"{h[f'temperature_K_{run}']:g} K ({phase}) "
                f"{fmt(h[f'rdf_error_percent_{run}'], '.1f')}%")
        fraction = h.get(f"rdf_effective_fraction_{run}")
        if fraction is not None:
            text += (f" ± {h[f'rdf_standard_error_percent_{run}']:.1f} (effective sample "
                     f"{100 * fraction:.0f}%")
            floor = h.get(f"rdf_noise_floor_percent_{run}")
            if floor is not None:
                text += (f"; {h[f'rdf_raw_error_percent_{run}']:.1f}% between the curves, "
                         f"where noise alone gives {floor:.1f}%")
            local = h.get(f"rdf_per_atom_energy_error_kt_{run}")
            if h.get(f"rdf_weights_{run}") == "linear response":
                text += f"; linear-response weights, per-atom energy error {local:.2f} kT"
            elif fraction < Thresholds().rdf_effective_fraction:
                text += (": too small to trust, the student's states differ from the teacher's"
                         + (f" (per-atom energy error {local:.2f} kT)" if local is not None
                            else ""))
            text += ")"
        return text

    how = ("teacher energies on the student's frames, reweighted"
           if h.get("rdf_method") == "reweight" else "against teacher MD")
    hot = (rdf("hot") if not h.get("rdf_hot_failed")
           else f"{h['temperature_K_hot']:g} K not measured: {h['rdf_hot_failed']}")
    print(f"RDF error    {rdf('cold')}; " + (f"{hot}; " if not h.get("rdf_hot_skipped") else "")
          + how)
    density = final.get("density")
    if density:
        print(f"density      {density['student_g_cm3']:.4g} g/cm³ in NPT at "
              f"{density['temperature_K']:g} K and {density['pressure_bar']:g} bar; the "
              f"teacher's {density['teacher_g_cm3']:.4g} (reweighted)")
    geometry = final["rdf_cold"].get("geometry")
    if geometry:      # molecules: the worst bond length and angle against the teacher's
        shown = []
        for kind, unit in (("bond", "Å"), ("angle", "°")):
            rows = {k: v for k, v in geometry.items() if v["kind"] == kind}
            if rows:
                name = max(rows, key=lambda k: rows[k]["error"])
                row = rows[name]
                shown.append(f"{name} {row['student']:.4g} against {row['teacher']:.4g} {unit}")
        print(f"geometry     {h['temperature_K_cold']:g} K, the worst of each kind: "
              + "; ".join(shown))
    print(f"stability    {config['stability_ps']:g} ps NVT at {temps} K "
          f"(the last: {final['stability_factor']:g} x the highest target): "
          + ("no collapse" if not h["collapsed_at_K"] else
             f"COLLAPSED at {', '.join(h['collapsed_at_K'])} K"))
    if h.get("verdict"):
        print(f"verdict      {h['verdict']} (every check: {out / 'report.html'})")
    for label, line in verdict_reasons(report):
        print(f"{label:<13}{line}")
    print(f"report       {out / 'report.html'}")


LEVELLED_OFF = 0.9   # an error that fell by less than 10% in the last active-learning round


def verdict_reasons(report: dict) -> list[tuple[str, str]]:
    """The checks a distilled student failed, each with its value and threshold, and, when
    active learning had stopped on its limits (rounds, minutes, teacher calls) before the
    student met its target on its own frames, how the same command goes on from there."""
    failed = [c for c in report["final"].get("checks", []) if c.get("status") == "fail"]
    lines = [("failed", f"{c['name']} {_shown(c['value'])} (threshold "
                        f"{_shown(c['threshold'])})") for c in failed]
    rounds, config = report["rounds"], report["config"]
    hot = _hot_only(failed, config["temperatures"])
    if hot:
        lines.append(("go on", hot))
    explored = [r for r in rounds if r.get("exploration")]
    limit = rounds[-1].get("stopped") if rounds else None
    if not failed or limit not in ("rounds", "budget") or not explored:
        return lines
    last = explored[-1]
    runs = {t: v["force_mae_mev_per_A"] for t, v in last["exploration"].items()
            if v.get("force_mae_mev_per_A") is not None}
    worst = max(runs, key=runs.get, default=None)
    if worst is None or runs[worst] <= config["al_force_mae_target"]:
        return lines
    number, _, rest = worst.partition(" ")       # "1500", "85 NPT", "2000 from melt"
    where = f"{number} K" + (f" {rest}" if rest else "")
    trend = [r["exploration"][worst]["force_mae_mev_per_A"] for r in explored
             if (r["exploration"].get(worst) or {}).get("force_mae_mev_per_A") is not None]
    said = (f"while the student's force MAE on its own {where} frames was {runs[worst]:.1f} "
            f"meV/Å (--al-force-mae-target {config['al_force_mae_target']:g})")
    n = config["rounds"]
    stopped = (f"active learning stopped at its limit of {n} round{'s' if n != 1 else ''}"
               if limit == "rounds" else "active learning stopped at its budget")
    if len(trend) >= 2 and trend[-1] > LEVELLED_OFF * trend[-2]:
        # the last round bought less than a tenth: more of them will not reach the target
        larger = ("; a larger student (--preset accurate, in a new -o folder) may fit better"
                  if config.get("preset") == "fast" else "")
        how = (f"{stopped} {said}, and that error has levelled off ("
               + ", ".join(f"{v:.1f}" for v in trend) + f" meV/Å in rounds "
               f"{explored[0]['round']}-{last['round']}): more rounds of this student add "
               f"little{larger}")
    elif limit == "rounds":
        how = f"{stopped} {said}: the same command with --rounds {n + 2} resumes this job there"
    else:
        how = (f"{stopped} {said}: the same command with a larger --max-minutes or "
               "--max-teacher-calls resumes this job there")
    lines.append(("go on", how))
    return lines


def _hot_only(failed: list[dict], temperatures: list[float]) -> str | None:
    """Advice where every failed check is at the highest target temperature or above it
    (the beyond-range stability run, the hot RDF run from the melt): the range may overshoot
    the system, as silicon's default range (to 2000 K) does for NaCl (melting at 1074 K)."""
    import re

    from .system import CRYSTAL_TEMPERATURES

    hottest = max(temperatures)
    found = [re.match(r"(?:stability|RDF) (\d+(?:\.\d+)?) K", c["name"]) for c in failed]
    if not failed or not all(m and float(m.group(1)) >= hottest for m in found):
        return None
    default = (" (the default range, silicon's)"
               if tuple(temperatures) == CRYSTAL_TEMPERATURES else "")
    return (f"every failed check is at the highest temperature, {hottest:g} K{default}, or "
            "above it: where that is far above your system's melting point, give "
            "--temperatures for its range (a new -o folder); the checks above it test the "
            "student beyond its training")


def _shown(value) -> str:
    """A headline value as a reader wants it: no None, nan or []."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_distill_html(path: Path, report: dict) -> None:
    import html as html_lib


    rows = []
    for entry in report["rounds"]:
        val = entry.get("validation", {})
        cells = (entry["round"], val.get("force_mae_mev_per_A"),
                 val.get("energy_mae_mev_per_atom"),
                 entry.get("student_frame_force_mae_mev_per_A"), entry.get("stable"),
                 entry.get("added_frames", 0), entry.get("stopped"))
        rows.append("<tr>" + "".join(f"<td>{html_lib.escape(_shown(v))}</td>" for v in cells)
                    + "</tr>")
    links = "".join(f"<li><a href='validation/{name}.html'>{name}</a></li>" for name in
                    ["nve", "rdf_cold", "npt_density", "rdf_hot",
                     *[f"nvt_{t}K" for t in report["final"]["stability"]]]
                    if (path.parent / "validation" / f"{name}.html").exists())
    headline = "".join(f"<tr><td>{html_lib.escape(k)}</td><td>{html_lib.escape(_shown(v))}"
                       f"</td></tr>" for k, v in report["headline"].items())
    verdict = report["final"].get("verdict") or "n/a"
    write_text(path, f"""<!doctype html><html><head><meta charset="utf-8">
<title>mlff distill</title><style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
td,th{{border:1px solid #ccc;padding:4px 10px}}table{{border-collapse:collapse}}
{CHECK_STYLES}</style></head>
<body><h1>Distillation of {html_lib.escape(report['teacher']['name'])}: {verdict.upper()}</h1>
<h2>Checks</h2>{checks_table(report['final'].get('checks', []))}
<h2>Headline</h2><table>{headline}</table>
<h2>Rounds</h2><p>Validation: the sampled frames plus every fifth frame active learning kept
in earlier rounds, so it grows from round to round.</p>
<table><tr><th>round</th><th>val force MAE meV/Å</th>
<th>val energy MAE meV/atom</th><th>force MAE on student frames meV/Å</th><th>stable</th>
<th>frames added</th><th>stopped</th></tr>{''.join(rows)}</table>
<h2>Validation runs</h2><ul>{links}</ul>
<h2>Every number</h2><pre>{html_lib.escape(json.dumps(report, indent=1, default=float))}</pre>
</body></html>""")

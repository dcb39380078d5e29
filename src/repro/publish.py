"""Publish finished reports: reports/<spec>.html for each spec of a plan, and reports/index.html.

`publish(plan)` copies each spec's report job output (report.html) to `paths.reports_root()/<spec>.html`
when the job is done, and writes an index listing every experiment of the plan (title, status, headline,
claims matching, link), plus the DVC metrics and plots that dvc.yaml's publish stage declares:
reports/metrics.json (per spec: claims checked/matching, final accuracy by condition and benchmark, final
training loss by condition) and
reports/curves.csv (spec, condition, benchmark, role, step, accuracy), and the plot data of dvc.yaml's
`plots:`: one file per spec, benchmark and condition, `reports/plots/<spec>/<benchmark>/<condition>.csv`
(step, accuracy), so `dvc plots show` draws one line per condition on each spec's benchmark. Every write is
atomic (temporary file + os.replace). The index is self-contained and deterministic apart from its
generated-at line. metrics.json and the plot files are committed to git (the main job refreshes them), so
`dvc metrics diff` and `dvc plots diff` compare commits; the HTML pages are DVC-cached outputs.

    repro publish experiments/mini_a.yaml    # or: repro report (runs the report jobs first)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from repro import paths

log = logging.getLogger(__name__)

CURVE_COLUMNS = ("spec", "condition", "benchmark", "role", "step", "accuracy")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _summary(outdir: Path) -> dict[str, Any]:
    try:
        return json.loads((outdir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def index_html(entries: list[dict[str, Any]]) -> str:
    """The index page: one row per experiment, in plan order."""
    from repro.report.html import esc, page, section

    rows = []
    for e in entries:
        link = f"<a href='{esc(e['file'])}'>{esc(e['title'])}</a>" if e["done"] else esc(e["title"])
        badge = "done" if e["done"] else "not-run"
        state = e.get("status") if e["done"] else "not run"
        claims = e.get("claims") or []
        findings = [c for c in claims if not c.get("design")]
        cl = f"{sum(c.get('verdict') == 'reproduced' for c in findings)} / {len(findings)}" if findings else "–"
        rows.append(f"<tr><td>{link}<br><code class='muted'>{esc(e['spec'])}</code></td>"
                    f"<td><span class='badge {badge}'>{esc(state)}</span></td>"
                    f"<td class='num'>{esc(e.get('n_conditions', '–'))}</td><td class='num'>{esc(cl)}</td>"
                    f"<td>{esc(e.get('headline') or 'The report job has not run yet.')}</td>"
                    f"<td><code class='muted'>{esc(e['source'])}</code></td></tr>")
    table = ("<div class='scroll'><table><thead><tr><th scope='col'>experiment</th><th scope='col'>status</th>"
             "<th scope='col'>conditions</th><th scope='col'>findings reproduced (95%)</th><th scope='col'>headline</th>"
             "<th scope='col'>spec file</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    n_done = sum(e["done"] for e in entries)
    header = ("<h1>Experiment reports</h1>"
              f"<p class='lead'>{n_done} of {len(entries)} experiments have a report.</p>")
    how = ("<p>Run everything with <code>snakemake --cores all</code> (or <code>dvc repro</code>); "
           "re-render and publish with <code>repro report</code>.</p>")
    return page("Experiment reports — repro", header, [section("experiments", "Experiments", table + how)], toc=False)


def metrics(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """DVC metrics: per spec, claims checked/matching, conditions, final accuracy per condition/benchmark and
    final training loss per condition."""
    out: dict[str, Any] = {}
    for e in entries:
        if not e["done"]:
            continue
        findings = [c for c in e.get("claims") or [] if not c.get("design")]
        out[e["spec"]] = {"n_conditions": e.get("n_conditions", 0), "findings": len(findings),
                          "findings_reproduced": sum(c.get("verdict") == "reproduced" for c in findings),
                          "final_accuracy": e.get("final_accuracy", {})}
        if e.get("final_train_loss"):
            out[e["spec"]]["final_train_loss"] = e["final_train_loss"]
    return out


def final_train_loss(plan: Any, report_id: str) -> dict[str, float]:
    """Per condition of a report, the training loss logged at the condition's last step (train_log.jsonl
    of its training run, which may run longer when conditions of several lengths share it)."""
    out = {}
    for row in plan.jobs[report_id].config["conditions"]:
        job = plan.jobs.get(row.get("train") or "")
        loss = None
        try:
            with open(job.outdir / "train_log.jsonl", encoding="utf-8") if job else io.StringIO() as fh:
                for line in fh:
                    r = json.loads(line)
                    if r.get("step", 0) <= row["steps"] and r.get("loss") is not None:
                        loss = r["loss"]
        except (OSError, ValueError):
            loss = None
        if loss is not None:
            out[row["name"]] = round(float(loss), 6)
    return out


def curves_csv(plan: Any) -> str:
    """DVC plots: spec, condition, benchmark, role, step, accuracy of every finished report's evals.csv."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CURVE_COLUMNS)
    for sp in plan.specs:
        job = plan.jobs[sp.report_id]
        f = job.outdir / "evals.csv"
        if not (job.done() and f.is_file()):
            continue
        with open(f, encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                w.writerow([sp.spec.name, *(r.get(c, "") for c in CURVE_COLUMNS[1:])])
    return buf.getvalue()


PLOT_COLUMNS = ("step", "accuracy")


def plot_series(plan: Any) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """From the plan: per spec, per benchmark, the (condition, file) of each line the plots draw, in plan
    order: the conditions evaluated on that benchmark, one file each."""
    root = paths.reports_root() / "plots"
    out: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for sp in plan.specs:
        per: dict[str, list[tuple[str, str]]] = {}
        for row in plan.jobs[sp.report_id].config.get("conditions", []):
            for bench in dict.fromkeys(e["benchmark"] for e in row["evals"]):
                per.setdefault(bench, []).append((row["name"], str(root / file_part(sp.spec.name) / file_part(bench)
                                                                     / f"{file_part(row['name'])}.csv")))
        if per:
            out[sp.spec.name] = per
    return out


def file_part(name: str) -> str:
    """A spec, benchmark or condition name as one safe path component."""
    import re

    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name).lstrip(".") or "_"


def write_plots(plan: Any) -> int:
    """Write every plot file of `plot_series(plan)` from the finished reports' evals.csv (a header only
    for a report not run yet); remove other files under each spec's plot folder. Returns files written."""
    series = plot_series(plan)
    n = 0
    for sp in plan.specs:
        job = plan.jobs[sp.report_id]
        rows: dict[tuple[str, str], list[tuple[int, str]]] = {}
        f = job.outdir / "evals.csv"
        if job.done() and f.is_file():
            with open(f, encoding="utf-8", newline="") as fh:
                for r in csv.DictReader(fh):
                    rows.setdefault((r["condition"], r["benchmark"]), []).append((int(float(r["step"])), r["accuracy"]))
        want = set()
        for bench, lines in series.get(sp.spec.name, {}).items():
            for cond, path in lines:
                buf = io.StringIO()
                w = csv.writer(buf, lineterminator="\n")
                w.writerow(PLOT_COLUMNS)
                for step, acc in sorted(rows.get((cond, bench), [])):
                    w.writerow([step, acc])
                _atomic_write(Path(path), buf.getvalue())
                want.add(Path(path))
                n += 1
        spec_dir = paths.reports_root() / "plots" / file_part(sp.spec.name)
        for old in spec_dir.rglob("*.csv") if spec_dir.is_dir() else []:
            if old not in want:
                old.unlink()
    return n


def publish(plan: Any) -> str:
    """Copy finished reports into reports/ and write reports/index.html; return a short text summary."""
    root = paths.reports_root()
    entries, lines = [], []
    for sp in plan.specs:
        job = plan.jobs[sp.report_id]
        name = sp.spec.name
        entry: dict[str, Any] = {"spec": name, "title": sp.spec.title or name, "file": f"{name}.html",
                                 "source": str(sp.file), "done": False}
        src = job.outdir / "report.html"
        if job.done() and src.is_file():
            _atomic_copy(src, root / f"{name}.html")
            entry.update({k: v for k, v in _summary(job.outdir).items() if k in ("headline", "status", "n_conditions", "claims", "final_accuracy")})
            entry["done"] = True
            entry["final_train_loss"] = final_train_loss(plan, sp.report_id)
            lines.append(f"{name}: {root / (name + '.html')} ({entry.get('status', 'done')})")
        else:
            lines.append(f"{name}: not run (report job {job.id})")
        entries.append(entry)
    _atomic_write(root / "index.html", index_html(entries))
    _atomic_write(root / "metrics.json", json.dumps(metrics(entries), indent=2, sort_keys=True) + "\n")
    _atomic_write(root / "curves.csv", curves_csv(plan))
    write_plots(plan)
    log.info("published %d of %d reports to %s", sum(e["done"] for e in entries), len(entries), root)
    return "\n".join([*lines, f"index: {root / 'index.html'}"])

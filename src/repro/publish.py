"""Publish finished reports: reports/<spec>.html for each spec of a plan, and reports/index.html.

`publish(plan)` copies each spec's report job output (report.html) to `paths.reports_root()/<spec>.html`
when the job is done, and writes an index listing every experiment of the plan (title, status, headline,
claims matching, link), plus the DVC metrics and plots that dvc.yaml's publish stage declares:
reports/metrics.json (per spec: claims checked/matching, final accuracy by condition and benchmark) and
reports/curves.csv (spec, condition, benchmark, role, step, accuracy). Every write is atomic (temporary file + os.replace). The index is self-contained
and deterministic apart from its generated-at line.

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
    """DVC metrics: per spec, claims checked/matching, conditions and final accuracy per condition/benchmark."""
    out: dict[str, Any] = {}
    for e in entries:
        if not e["done"]:
            continue
        findings = [c for c in e.get("claims") or [] if not c.get("design")]
        out[e["spec"]] = {"n_conditions": e.get("n_conditions", 0), "findings": len(findings),
                          "findings_reproduced": sum(c.get("verdict") == "reproduced" for c in findings),
                          "final_accuracy": e.get("final_accuracy", {})}
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
            lines.append(f"{name}: {root / (name + '.html')} ({entry.get('status', 'done')})")
        else:
            lines.append(f"{name}: not run (report job {job.id})")
        entries.append(entry)
    _atomic_write(root / "index.html", index_html(entries))
    _atomic_write(root / "metrics.json", json.dumps(metrics(entries), indent=2, sort_keys=True) + "\n")
    _atomic_write(root / "curves.csv", curves_csv(plan))
    log.info("published %d of %d reports to %s", sum(e["done"] for e in entries), len(entries), root)
    return "\n".join([*lines, f"index: {root / 'index.html'}"])

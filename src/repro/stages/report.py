"""report: one spec's job folders -> `report.html` (self-contained), `summary.json`, `evals.csv`.

`inputs` maps every job id the report config names (role == id) to that job's output folder; only those
folders are read (repro.report.collect). The page has a section for each kind of data present (see
repro.report.sections) and a claims table (repro.report.claims documents the `check` format).

summary.json: {spec, title, headline (one sentence), claims: [{id, claim, paper_number, measured, kind,
design, caveat, effect, ci_low, ci_high, effect_label, verdict, why, reproduced, effects}], n_conditions, status: complete | partial (some jobs missing) | no results,
final_accuracy: {condition: {benchmark: accuracy}}, sections, missing_jobs}. evals.csv: every eval row
(condition, benchmark, role, step, accuracy, ci_low, ci_high, mean_response_tokens, refusal_rate, final),
which `repro publish` gathers into reports/curves.csv for DVC plots. All files are deterministic except the page's generated-at line ($SOURCE_DATE_EPOCH pins it).

Run through the engine (`repro run <report job id>` / `repro report SPEC`), or directly:
`run(ReportJob(...), {job_id: folder, ...}, out_dir, {})`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from repro.config import ReportJob

log = logging.getLogger(__name__)


def status_of(data: Any) -> str:
    """complete: every named job is there; partial: some are missing; no results: nothing evaluated or trained."""
    if data.evals.empty and data.train_log.empty and not data.analyses:
        return "no results"
    return "partial" if data.missing else "complete"


def headline(data: Any, claims: list[dict[str, Any]], status: str) -> str:
    """One sentence: how many findings the run reproduces at 95%, or the best OOD/ID accuracy when none are checked."""
    from repro.report.figures import final_accuracy

    n = len(data.order)
    findings = [c for c in claims if not c.get("design")]
    checked = [c for c in findings if c["verdict"] != "not measurable"]
    if checked:
        ok = sum(c["verdict"] == "reproduced" for c in checked)
        same = sum(c["verdict"] == "same direction, not significant" for c in checked)
        bad = sum(c["verdict"] == "contradicted" for c in checked)
        na = len(findings) - len(checked)
        s = (f"{ok} of {len(findings)} findings reproduced at 95%, {same} in the paper's direction but not "
             f"significant, {bad} contradicted" + (f", {na} not measurable" if na else "")
             + f", over {n} condition{'' if n == 1 else 's'}")
    else:
        s = f"{n} condition{'' if n == 1 else 's'}" + (", no claim could be checked" if claims else "")
        for role in ("ood", "id"):
            acc = final_accuracy(data, role)
            if not acc.empty:
                best = acc.idxmax()
                s += f"; best final {role.upper()} accuracy {acc[best]:.2f} ({best})"
                break
    if status != "complete":
        s += f" [{status}]"
    return s + "."


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run(cfg: ReportJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Render the report of `cfg` from the job folders in `inputs` into `out`."""
    from repro.report import html, sections
    from repro.report.claims import evaluate
    from repro.report.collect import collect

    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = collect(cfg, inputs)
    claims = evaluate(cfg.claims, data)
    status = status_of(data)
    head = headline(data, claims, status)
    secs = sections.build(data, claims)
    header = (f"<h1>{html.esc(cfg.title)}</h1><p class='muted'>spec <code>{html.esc(cfg.spec)}</code> · "
              f"<span class='badge {html.esc(status.replace(' ', '-'))}'>{html.esc(status)}</span></p>"
              f"<p class='lead'>{html.esc(head)}</p>"
              + (f"<p><b>Hypothesis.</b> {html.esc(cfg.hypothesis)}</p>" if cfg.hypothesis else ""))
    _write(out / "report.html", html.page(f"{cfg.title} — repro report", header, secs))
    ev = data.evals
    cols = ["condition", "benchmark", "role", "step", "accuracy", "ci_low", "ci_high", "mean_response_tokens",
            "refusal_rate", "final"]
    _write(out / "evals.csv", ev[cols].to_csv(index=False, lineterminator="\n") if not ev.empty else ",".join(cols) + "\n")
    final = {}
    for r in ev[ev["final"] & ev["accuracy"].notna()].itertuples() if not ev.empty else []:
        final.setdefault(r.condition, {})[r.benchmark] = round(float(r.accuracy), 6)
    summary = {"spec": cfg.spec, "title": cfg.title, "headline": head, "status": status,
               "n_conditions": len(data.order), "final_accuracy": final,
               "claims": claims,
               "sections": [sid for sid, _, _ in secs], "missing_jobs": data.missing}
    _write(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    n_img = sum(body.count("<img ") for _, _, body in secs)
    log.info("report %s: %d sections, %d figures, status %s, %.1fs", cfg.spec, len(secs), n_img, status, time.time() - t0)
    return {"status": status, "n_conditions": len(data.order), "n_sections": len(secs), "n_figures": n_img,
            "claims_reproduced": sum(c["verdict"] == "reproduced" for c in claims),
            "claims_checked": sum(c["verdict"] != "not measurable" for c in claims)}


def plan_spec(b: Any, spec: Any, file: str, rows: list[dict[str, Any]], job_ids: list[str]) -> str:
    """Planner (once per spec): the report job, reading every job of the spec's conditions."""
    from repro.resources import resources_for

    cfg = ReportJob(spec=spec.name, spec_file=file, title=spec.title or spec.name, hypothesis=spec.hypothesis,
                    conditions=rows, claims=[c.model_dump(mode="json") for c in spec.claims])
    return b.add("report", spec.name, cfg.model_dump(mode="json"), {j: j for j in job_ids}, resources_for("report", None), spec.name)

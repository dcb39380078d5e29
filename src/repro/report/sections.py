"""The report's sections: each one is built only when its data exists, as (anchor, title, HTML).

`build(data, claims)` returns the sections in reading order: claims, conditions, accuracy at the final
step, training dynamics, training loss, loss vs OOD, token loss, step types, filters, safety, logit lens,
numeric sweeps, provenance. Figures are rendered under one fixed matplotlib style (`figures.rc`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import matplotlib
import pandas as pd

from repro.plan import ROLES
from repro.report import figures as F
from repro.report import figures_analysis as FA
from repro.report.claims import fmt
from repro.report.collect import ReportData, filter_overlaps
from repro.report.html import esc, figure, section, table
from repro.stages import STAGE_NAMES

log = logging.getLogger(__name__)

Section = tuple[str, str, str]


VERDICT_CLASS = {"reproduced": "ok", "same direction, not significant": "weak",
                 "opposite direction, not significant": "weak-bad", "contradicted": "bad", "not measurable": "na"}


def _verdict(c: dict[str, Any]) -> str:
    v = c.get("verdict") or "not measurable"
    why = f"<br><span class='muted'>{esc(c['why'])}</span>" if v == "not measurable" and c.get("why") else ""
    return f"<span class='{VERDICT_CLASS.get(v, 'na')}'>{esc(v)}</span>{why}"


def _effect_cell(c: dict[str, Any]) -> str:
    parts = []
    for e in c.get("effects") or []:
        sign = "&gt; 0" if e["direction"] > 0 else "&lt; 0"
        parts.append(f"{esc(e['label'])}: <b>{esc(fmt(e['effect']))}</b> [{esc(fmt(e['ci_low']))}, "
                     f"{esc(fmt(e['ci_high']))}] <span class='muted'>(paper: {sign})</span>")
    return "<br>".join(parts) or "–"


def _claims_table(claims: list[dict[str, Any]]) -> str:
    df = pd.DataFrame([{"id": c["id"], "claim": c["claim"], "paper's number": c["paper_number"],
                        "our effect [95% interval]": _effect_cell(c), "verdict": _verdict(c),
                        "what was measured": c["measured"], "caveat": c.get("caveat") or "–"} for c in claims])
    return table(df, raw=["our effect [95% interval]", "verdict"])


def claims_section(claims: list[dict[str, Any]]) -> Section | None:
    if not claims:
        return None
    findings = [c for c in claims if not c.get("design")]
    design = [c for c in claims if c.get("design")]
    counts = ", ".join(f"{sum(c['verdict'] == v for c in findings)} {v}" for v in VERDICT_CLASS
                       if any(c["verdict"] == v for c in findings))
    body = figure(F.forest(claims))
    if findings:
        body += f"<h3>Findings ({len(findings)}: {esc(counts)})</h3>" + _claims_table(findings)
    if design:
        body += ("<h3>Design checks</h3><p class='muted'>Properties of the inputs by construction (the "
                 "teachers' step statistics, what the filters drop): they confirm the miniature was built as "
                 "intended and are not findings.</p>" + _claims_table(design))
    return section("claims", "Claims", body,
                   "Each claim of the papers, the paper's number, our effect with its 95% bootstrap interval (over "
                   "the shared eval items and, with replicates, over seeds) and the verdict: reproduced (the interval "
                   "excludes 0 in the paper's direction), same or opposite direction but not significant, "
                   "contradicted (excludes 0 against the paper), or not measurable (why). A miniature need not "
                   "match the paper's magnitudes; the caveat says what it lacks.")


def conditions_section(data: ReportData, pal: dict[str, str]) -> Section | None:
    df = data.conditions
    if df.empty:
        return None
    names = {"n_generated": "generated traces", "n_kept": "kept after filter", "train_steps": "train steps",
             **{f"job_{r}": f"{r} job" for r in ROLES}}
    cols = ["condition", *data.axes, "n_generated", "n_kept", "train_steps", "job_generate", "job_filter", "job_train"]
    cols += [c for c in ("job_pretrain", "job_reference") if df[c].notna().any()]
    df = df[cols].rename(columns=names)
    return section("conditions", "Conditions", table(df, pal),
                   f"{len(df)} condition{'' if len(df) == 1 else 's'} in spec order; axes: {', '.join(data.axes) or 'none'}. The colour of a "
                   "condition is the same in every figure.")


def _counted(row: pd.Series) -> str:
    """What scoring counted besides right and wrong: samples timed out, scorer errors, unanswered."""
    parts = [f"{int(row[k])} {label}" for k, label in (("n_timed_out", "timed out"), ("n_scorer_errors", "scorer errors"),
                                                       ("n_unanswered", "unanswered")) if pd.notna(row.get(k)) and row.get(k)]
    return f" ({', '.join(parts)})" if parts else ""


def _acc_table(ev: pd.DataFrame, data: ReportData) -> pd.DataFrame:
    ev = ev.assign(cell=[(f"{a:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else (f"{a:.3f}" if pd.notna(a) else "–"))
                         + _counted(r) for (_, r), a, lo, hi in zip(ev.iterrows(), ev["accuracy"], ev["ci_low"], ev["ci_high"])])
    t = ev.pivot_table(index="condition", columns="benchmark", values="cell", aggfunc="first")
    t = t.reindex([c for c in data.order if c in t.index])[[b for b in data.benchmarks() if b in t.columns]]
    return t.reset_index()


def accuracy_section(data: ReportData, pal: dict[str, str]) -> Section | None:
    fig = F.accuracy_final(data, pal)
    if fig is None:
        return None
    ev = data.evals[data.evals["final"] & (data.evals["role"] != "safety")]
    return section("accuracy", "ID and OOD accuracy at the final step",
                   figure(fig) + table(_acc_table(ev, data), pal, caption="accuracy [95% interval] at each condition's final step"))


def dynamics_section(data: ReportData, pal: dict[str, str]) -> Section | None:
    fig = F.curves(data, pal)
    if fig is None:
        return None
    ev = data.evals[data.evals["role"] != "safety"]
    t = ev.pivot_table(index=["condition", "benchmark"], columns="step", values="accuracy", aggfunc="first")
    t.columns = [f"s{c}" for c in t.columns]
    t = t.reset_index()
    t["_o"] = t["condition"].map(data.order.index)
    t = t.sort_values(["_o", "benchmark"]).drop(columns="_o")
    return section("dynamics", "Accuracy and response length during training", figure(fig, table(t, pal)))


def loss_section(data: ReportData, pal: dict[str, str]) -> list[Section]:
    out = []
    fig = F.loss_curves(data, pal)
    if fig is not None:
        t = data.train[["condition", "final_loss", "n_examples", "run_steps"]].rename(
            columns={"final_loss": "final loss", "n_examples": "training examples", "run_steps": "steps of the run"})
        out.append(section("loss", "Training loss", figure(fig) + table(t, pal)))
    fig = F.loss_vs_ood(data, pal)
    if fig is not None:
        out.append(section("loss-vs-ood", "Training loss vs OOD accuracy", figure(fig)))
    return out


def token_loss_section(data: ReportData, pal: dict[str, str]) -> Section | None:
    fig = FA.token_loss(data, pal)
    if fig is None:
        return None
    return section("token-loss", "Token-loss distribution", figure(fig) + table(FA.token_loss_table(data), pal))


def steps_section(data: ReportData) -> Section | None:
    mix, trans = FA.step_mix(data), FA.transitions(data)
    if mix is None and trans is None:
        return None
    rows = []
    for s in FA.step_sources(data):
        rows.append({"source": s["source"], "kind": s["kind"], "n": s.get("n", s.get("n_traces")),
                     **{f"{t} share": (s.get("mix") or {}).get(t) for t in FA._types([s], "mix")},
                     "P→P": ((s.get("transitions") or {}).get("Propose") or {}).get("Propose"),
                     "trapped rate": s.get("trapped_rate"), "annotator agreement": s.get("agreement")})
    return section("steps", "Reasoning-step types", figure(mix) + figure(trans) + table(pd.DataFrame(rows)))


def filters_section(data: ReportData) -> Section | None:
    fig = FA.filters(data)
    if fig is None:
        return None
    rows = []
    for f in data.filters:
        st = f["stats"] or {}
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted((st.get("reasons") or {}).items()))
        rows.append({"filter job": f["name"], "chain": f["chain"], "id": f["id"], "generate job": f["generate"],
                     "conditions": ", ".join(f["conditions"]), "input": st.get("input"), "kept": st.get("kept"),
                     "dropped": st.get("dropped"), "drop reasons": reasons or "–"})
    body = figure(fig) + table(pd.DataFrame(rows))
    ov = filter_overlaps(data.filters)
    if ov:
        df = pd.DataFrame(ov).rename(columns={"a": "filter A", "b": "filter B", "dropped_a": "dropped by A",
                                              "dropped_b": "dropped by B", "both": "dropped by both", "jaccard": "Jaccard"})
        body += "<h3>Overlap of dropped problems (filters of the same generated data)</h3>" + table(df)
    return section("filters", "Filters", body)


def safety_section(data: ReportData, pal: dict[str, str]) -> Section | None:
    fig = F.safety(data, pal)
    if fig is None:
        return None
    ev = data.evals[data.evals["role"] == "safety"]
    t = ev[["condition", "benchmark", "step", "refusal_rate", "harm_score", "n_items"]].rename(
        columns={"refusal_rate": "refusal rate", "harm_score": "harm score (1–5)", "n_items": "items"})
    return section("safety", "Safety vs reasoning", figure(fig, table(t, pal)))


def _layer(v: Any) -> str:
    return str(int(v)) if isinstance(v, (int, float)) else "never"


def logit_lens_section(data: ReportData, pal: dict[str, str]) -> Section | None:
    fig = FA.logit_lens(data, pal)
    if fig is None:
        return None
    rows = [{"condition": c, "split": sp, "resolved layer": _layer((v or {}).get("resolved_layer")),
             "layers": len(s.get("layers") or [])}
            for c in data.order for s in [data.analyses.get(c, {}).get("logit_lens")] if isinstance(s, dict)
            for sp, v in sorted((s.get("splits") or {}).items())]
    df = pd.DataFrame(rows)
    return section("logit-lens", "Logit lens", figure(fig) + table(df, pal))


def sweep_sections(data: ReportData, pal: dict[str, str]) -> list[Section]:
    return [section(f"sweep-{axis}", f"Sweep along {axis}", figure(fig)) for axis, fig in F.sweeps(data, pal)]


def provenance_section(data: ReportData) -> Section:
    rows = []
    for jid, m in data.manifests.items():
        rows.append({"stage": m.get("stage", "?"), "name": m.get("name", ""), "id": jid, "wall s": m.get("wall_s"),
                     "host": m.get("host"), "started": m.get("started"), "ended": m.get("ended"),
                     "git commit": m.get("git_commit")})
    jobs = pd.DataFrame(rows)
    body = ""
    if data.missing:
        body += ("<p class='warn'>Jobs named by the plan but missing or without a manifest: "
                 + esc(", ".join(data.missing)) + "</p>")
    if not jobs.empty:
        jobs["_s"] = jobs["stage"].map(lambda s: STAGE_NAMES.index(s) if s in STAGE_NAMES else len(STAGE_NAMES))
        jobs = jobs.sort_values(["_s", "name", "id"]).drop(columns="_s")
        wall = pd.to_numeric(jobs["wall s"], errors="coerce")
        body += (f"<p>{len(jobs)} jobs; total wall time {fmt(float(wall.sum()))} s; hosts: "
                 f"{esc(', '.join(sorted({str(h) for h in jobs['host'].dropna()})) or 'unknown')}; git commits: "
                 f"{esc(', '.join(sorted({str(g) for g in jobs['git commit'].dropna()})) or 'unknown')}.</p>")
        body += "<details><summary>every job (id, stage, wall time, host)</summary>" + table(jobs) + "</details>"
        vers: dict[str, set[str]] = {}
        for m in data.manifests.values():
            for k, v in (m.get("versions") or {}).items():
                vers.setdefault(k, set()).add(str(v))
        if vers:
            vt = pd.DataFrame([{"package": k, "versions": ", ".join(sorted(v))} for k, v in sorted(vers.items())])
            body += "<h3>Package versions</h3>" + table(vt)
    cfg = json.dumps({"spec": data.cfg.spec, "conditions": data.cfg.conditions}, indent=1, sort_keys=True)
    body += f"<details><summary>report configuration (conditions and job ids)</summary><pre>{esc(cfg)}</pre></details>"
    spec_file = data.cfg.spec_file or f"experiments/{data.cfg.spec}.yaml"
    body += ("<h3>How to reproduce</h3><pre>"
             f"snakemake --cores all --config specs={esc(spec_file)}\n"
             f"# or, with the same jobs through DVC (after `repro dvc` for this spec):\n"
             f"dvc repro\n"
             f"repro report {esc(spec_file)}   # re-render and publish reports/</pre>")
    return section("provenance", "Provenance", body)


def build(data: ReportData, claims: list[dict[str, Any]]) -> list[Section]:
    """All sections for which there is data, in reading order."""
    pal = F.palette(data.order)
    out: list[Section | None] = []
    with matplotlib.rc_context(F.rc()):
        out.append(claims_section(claims))
        out.append(conditions_section(data, pal))
        out.append(accuracy_section(data, pal))
        out.append(dynamics_section(data, pal))
        out.extend(loss_section(data, pal))
        out.append(token_loss_section(data, pal))
        out.append(steps_section(data))
        out.append(filters_section(data))
        out.append(safety_section(data, pal))
        out.append(logit_lens_section(data, pal))
        out.extend(sweep_sections(data, pal))
        out.append(provenance_section(data))
    return [s for s in out if s is not None]

"""Check the papers' claims against this run: does the measured direction match the paper's?

A spec's claim carries a `check` dict. Conditions are selected by axis labels: a selector is
`{axis: value}` or `{axis: [values]}` (`condition: name` selects by name); every key must match.

Metrics (`metric`, default "accuracy"):
- eval metrics, averaged over the benchmarks that `role` names (a role: id/ood/safety/probe, or a
  benchmark name) at `step` ("final" = each condition's own last step (default), or an int):
  accuracy, mean_response_tokens, finished_rate, trapped_rate, refusal_rate, harm_score.
- train metrics: final_loss (the loss at the condition's own last step).
- condition counts: generated, kept (traces before / after the filter).
- analysis numbers by dotted path into an analysis summary, `<analysis>.<key>[.<key>...]`:
  token_loss.key_token_loss, token_loss.tail_share, steps.train.mix.Propose,
  steps.train.transitions.Propose.Propose, steps.outputs.<benchmark>.trapped_rate, ...

Kinds (`kind`; "greater" when absent):
- greater: {metric, role, step, higher: sel, lower: sel} -> mean over `higher` conditions > mean over `lower`;
  `higher_step` / `lower_step` read the two sides at different steps (e.g. the base, step 0, vs the end).
- dip_recovery: {metric, role, where: sel, early_max_step: int|None, above_base: bool} -> per condition,
  the minimum over intermediate steps (0 < step < final, and <= early_max_step when given) is below the
  value at step 0, and the final value is above that minimum (and above step 0 if above_base). Matches
  when more than half of the selected conditions show it.
- decreasing / increasing: {metric, role, step, axis, where: sel} -> Spearman correlation between the
  number in the `axis` label and the metric (averaged per axis value) is < 0 (> 0). Needs 3 values.
- layer_shallower: {split: "id", shallower: sel, deeper: sel, analysis: "logit_lens"} -> mean
  resolved layer of `shallower` < mean of `deeper`; a split never resolved counts as one past the last layer.
- gap_greater: {metric, role, step, a: {higher: sel, lower: sel}, b: {higher: sel, lower: sel}} -> the gap
  mean(a.higher) - mean(a.lower) is larger than the gap mean(b.higher) - mean(b.lower) (e.g. an ablation
  hurts one teacher's student more than another's).
- overlap_below: {a: sel, b: sel, threshold: 0.5} -> Jaccard of the problem ids that the filter jobs of
  the `a` and `b` conditions dropped (same generate job) is below `threshold`.

Each result: {id, paper, claim, paper_number, measured (text with the numbers), direction_matches:
true/false/null (null = not measurable on this run, the reason in `measured`)}.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from repro.report.collect import ReportData, jaccard, number

log = logging.getLogger(__name__)

EVAL_METRICS = ("accuracy", "mean_response_tokens", "finished_rate", "trapped_rate", "refusal_rate", "harm_score",
                "ci_low", "ci_high")


def fmt(x: Any) -> str:
    """A number in 3 significant digits (ints as ints); text as is."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{x:.3g}"
    return str(x)


def sel_text(sel: dict[str, Any] | None) -> str:
    if not sel:
        return "all conditions"
    return ", ".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sel.items())


def select(data: ReportData, sel: dict[str, Any] | None) -> list[str]:
    """Condition names whose labels match every key of `sel` (all conditions for an empty selector)."""
    out = []
    for name in data.order:
        labels = data.labels(name)
        if all(labels.get(k) in ([str(x) for x in v] if isinstance(v, list) else [str(v)]) for k, v in (sel or {}).items()):
            out.append(name)
    return out


ALIASES = {"key_token_loss": "key_loss", "tail_share": "high_share"}  # names in repro.analysis.tokenloss


def _dig(d: Any, path: list[str]) -> Any:
    for p in path:
        if isinstance(d, dict) and p not in d and ALIASES.get(p) in d:
            p = ALIASES[p]
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def eval_frame(data: ReportData, role: str | None) -> pd.DataFrame:
    """Eval rows of the benchmarks `role` names (a role or a benchmark name; all when None)."""
    ev = data.evals
    if ev.empty or role is None:
        return ev
    return ev[(ev["role"] == role) | (ev["benchmark"] == role)]


def metric_values(data: ReportData, metric: str, role: str | None = None, step: Any = "final") -> pd.Series:
    """One value per condition (indexed by name, spec order, NaN dropped) for a metric; see the docstring."""
    vals: dict[str, float] = {}
    if metric in EVAL_METRICS:
        ev = eval_frame(data, role)
        if not ev.empty:
            ev = ev[ev["final"]] if step in (None, "final") else ev[ev["step"] == int(step)]
            vals = ev.groupby("condition")[metric].mean().to_dict()
    elif metric == "final_loss":
        vals = data.train.set_index("condition")["final_loss"].to_dict() if not data.train.empty else {}
    elif metric in ("generated", "kept"):
        col = data.conditions.set_index("condition")[f"n_{metric}"]
        vals = {k: float(v) for k, v in col.items() if not pd.isna(v)}
    elif "." in metric:
        name, *path = metric.split(".")
        for cond, an in data.analyses.items():
            v = _dig(an.get(name), path)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals[cond] = float(v)
    s = pd.Series({c: vals[c] for c in data.order if c in vals}, dtype=float)
    return s.dropna()


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if np.std(rx) == 0 or np.std(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _what(check: dict[str, Any]) -> str:
    metric = check.get("metric", "accuracy")
    role = check.get("role")
    return f"{metric}{f' ({role})' if role and metric in EVAL_METRICS else ''}"


def check_greater(data: ReportData, c: dict[str, Any]) -> tuple[str, bool | None]:
    metric, role, step = c.get("metric", "accuracy"), c.get("role"), c.get("step", "final")
    s_hi, s_lo = c.get("higher_step", step), c.get("lower_step", step)
    v_hi = metric_values(data, metric, role, s_hi)
    v_lo = v_hi if s_lo == s_hi else metric_values(data, metric, role, s_lo)
    hi, lo = v_hi.reindex(select(data, c.get("higher"))).dropna(), v_lo.reindex(select(data, c.get("lower"))).dropna()
    if hi.empty or lo.empty:
        side = "higher" if hi.empty else "lower"
        return f"not measured: no {_what(c)} for the {side} side ({sel_text(c.get(side))})", None
    at = (lambda s: f" at step {s}") if s_hi != s_lo else (lambda s: "")
    text = (f"{_what(c)}: {sel_text(c.get('higher'))}{at(s_hi)} {fmt(hi.mean())} (n={len(hi)}) vs "
            f"{sel_text(c.get('lower'))}{at(s_lo)} {fmt(lo.mean())} (n={len(lo)})")
    return text, bool(hi.mean() > lo.mean())


def check_gap(data: ReportData, c: dict[str, Any]) -> tuple[str, bool | None]:
    v = metric_values(data, c.get("metric", "accuracy"), c.get("role"), c.get("step", "final"))
    gaps, parts = [], []
    for side in ("a", "b"):
        pair = c.get(side) or {}
        hi = v.reindex(select(data, pair.get("higher"))).dropna()
        lo = v.reindex(select(data, pair.get("lower"))).dropna()
        if hi.empty or lo.empty:
            return f"not measured: no {_what(c)} for one end of gap {side!r}", None
        gaps.append(hi.mean() - lo.mean())
        parts.append(f"{sel_text(pair.get('higher'))} {fmt(hi.mean())} - {sel_text(pair.get('lower'))} "
                     f"{fmt(lo.mean())} = {fmt(gaps[-1])}")
    return f"{_what(c)} gaps: " + "; vs ".join(parts), bool(gaps[0] > gaps[1])


def check_dip_recovery(data: ReportData, c: dict[str, Any]) -> tuple[str, bool | None]:
    metric = c.get("metric", "accuracy")
    ev = eval_frame(data, c.get("role"))
    early_max = c.get("early_max_step")
    parts, verdicts = [], []
    for cond in select(data, c.get("where")):
        e = ev[ev["condition"] == cond] if not ev.empty else ev
        if e.empty:
            continue
        curve = e.groupby("step")[metric].mean().dropna()
        final_step = int(e[e["final"]]["step"].max()) if e["final"].any() else int(curve.index.max())
        mid = curve[(curve.index > 0) & (curve.index < final_step)]
        if early_max is not None:
            mid = mid[mid.index <= int(early_max)]
        if 0 not in curve.index or mid.empty or final_step not in curve.index:
            continue
        base, low, low_at, end = curve[0], mid.min(), int(mid.idxmin()), curve[final_step]
        ok = bool(low < base and end > low and (end > base if c.get("above_base") else True))
        verdicts.append(ok)
        parts.append(f"{cond}: {fmt(base)} (s0) → {fmt(low)} (s{low_at}) → {fmt(end)} (s{final_step})")
    if not verdicts:
        return f"not measured: no {_what(c)} curve with step 0, an intermediate step and a final step", None
    text = f"{_what(c)}: " + "; ".join(parts) + f" — dip and recovery in {sum(verdicts)}/{len(verdicts)}"
    return text, sum(verdicts) * 2 > len(verdicts)


def check_monotone(data: ReportData, c: dict[str, Any]) -> tuple[str, bool | None]:
    axis = c.get("axis")
    if not axis:
        return "not measured: check names no axis", None
    v = metric_values(data, c.get("metric", "accuracy"), c.get("role"), c.get("step", "final"))
    pts: dict[float, list[float]] = {}
    for cond in select(data, c.get("where")):
        x = number(data.labels(cond).get(axis))
        if x is not None and cond in v.index:
            pts.setdefault(x, []).append(float(v[cond]))
    if len(pts) < 3:
        return f"not measured: fewer than 3 numeric values of axis {axis!r} with {_what(c)}", None
    xs = sorted(pts)
    ys = [float(np.mean(pts[x])) for x in xs]
    rho = spearman(xs, ys)
    text = f"{_what(c)} by {axis}: " + ", ".join(f"{fmt(x)}: {fmt(y)}" for x, y in zip(xs, ys)) + f"; Spearman ρ = {fmt(rho)}"
    if math.isnan(rho):
        return text + " (constant)", False
    return text, bool(rho < 0) if c.get("kind") == "decreasing" else bool(rho > 0)


def check_layer(data: ReportData, c: dict[str, Any]) -> tuple[str, bool | None]:
    split, name = c.get("split", "id"), c.get("analysis", "logit_lens")

    def layers(sel: dict[str, Any] | None) -> list[float]:
        out = []
        for cond in select(data, sel):
            s = data.analyses.get(cond, {}).get(name)
            sp = _dig(s, ["splits", split])
            if not isinstance(sp, dict):
                continue
            r = sp.get("resolved_layer")
            n = len(s.get("layers") or sp.get("median_rank_by_layer") or [])
            out.append(float(r) if isinstance(r, (int, float)) else float(n))
        return out

    a, b = layers(c.get("shallower")), layers(c.get("deeper"))
    if not a or not b:
        return f"not measured: no {name} split {split!r} for one side", None
    text = (f"resolved layer ({split}): {sel_text(c.get('shallower'))} {fmt(np.mean(a))} vs "
            f"{sel_text(c.get('deeper'))} {fmt(np.mean(b))} (unresolved counts as past the last layer)")
    return text, bool(np.mean(a) < np.mean(b))


def check_overlap(data: ReportData, c: dict[str, Any]) -> tuple[str, bool | None]:
    threshold = float(c.get("threshold", 0.5))
    ids = {f["id"]: f for f in data.filters}

    def dropped(sel: dict[str, Any] | None) -> tuple[set[str], set[str]]:
        names = set(select(data, sel))
        fs = [f for f in ids.values() if names & set(f["conditions"]) and f["stats"]]
        return set().union(*[set(f["stats"].get("dropped_ids") or {}) for f in fs]), {f["generate"] for f in fs}

    (a, ga), (b, gb) = dropped(c.get("a")), dropped(c.get("b"))
    j = jaccard(a, b)
    if j is None or not (ga & gb):
        return "not measured: no dropped ids from filters of the same generate job", None
    text = f"Jaccard of dropped ids {fmt(j)} ({len(a & b)} shared of {len(a)} and {len(b)}); threshold {fmt(threshold)}"
    return text, bool(j < threshold)


KINDS = {"greater": check_greater, "dip_recovery": check_dip_recovery, "decreasing": check_monotone,
         "increasing": check_monotone, "layer_shallower": check_layer, "gap_greater": check_gap, "overlap_below": check_overlap}


def evaluate(claims: list[dict[str, Any]], data: ReportData) -> list[dict[str, Any]]:
    """Each claim with what this run measured and whether the direction matches (see module docstring)."""
    out = []
    for cl in claims:
        check = dict(cl.get("check") or {})
        kind = check.setdefault("kind", "greater")
        if not cl.get("check"):
            measured, ok = "no check given in the spec", None
        elif kind not in KINDS:
            measured, ok = f"unknown check kind {kind!r} (known: {', '.join(KINDS)})", None
        else:
            try:
                measured, ok = KINDS[kind](data, check)
            except (KeyError, ValueError, TypeError) as e:  # a malformed check must not sink the report
                log.warning("claim %s: check failed: %s", cl.get("id"), e)
                measured, ok = f"check could not be evaluated: {type(e).__name__}: {e}", None
        out.append({"id": cl.get("id", ""), "paper": cl.get("paper", ""), "claim": cl.get("claim", ""),
                    "paper_number": cl.get("number", ""), "kind": kind, "measured": measured,
                    "direction_matches": ok})
    return out



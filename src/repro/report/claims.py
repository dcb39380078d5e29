"""Test the papers' claims on this run: per claim an effect, its 95% bootstrap interval and a verdict.

A spec's claim has a typed `check` (repro.claimchecks: one model per `kind`). Its conditions are picked by
selectors on axis labels; conditions that differ only in their `seed` label (spec `replicates`) form one
*unit*, whose seeds the bootstrap resamples. Every number is read per item where the job folders allow it:

- eval metrics (accuracy, finished/trapped/refusal rate, response tokens, harm score): per item from the
  benchmark's samples.jsonl (mean over samples; refusal and harm over the harmful requests only);
- final_loss: the logged batch losses over the last 10% of the run's steps (each logged step an item);
- token_loss.tail_share / key_token_loss: per training example from the analysis' nll.npz;
- steps.train.mix.<T> / transitions.<A>.<B>: per training trace of the filter job, re-typed with the
  analysis' own typer; steps.outputs.<bench>.*: per sample of that benchmark at the analysed step;
- overlap_below: per generated problem (dropped by a, by b);
- anything else (the logit lens' resolved layer, other summary numbers): one number per seed.

Effects (positive = the paper's direction once multiplied by `direction`) come from
`repro.analysis.stats.bootstrap_cells` (Poisson item weights shared by the cells scored on the same items,
so differences are paired; seeds resampled within each unit; intervals widened by t/z when seeds enter):
greater: mean(higher) - mean(lower); gap_greater: gap(a) - gap(b); increasing/decreasing: least-squares
slope over the axis numbers; dip_recovery: dip = v(0) - min(intermediate) and recovery = v(final) -
min(intermediate) (and v(final) - v(0) with above_base) of the mean curve, each with its interval;
layer_shallower: layer(deeper) - layer(shallower); overlap_below: threshold - Jaccard.

Verdict (95%): reproduced (the interval excludes 0 in the paper's direction), same direction, not
significant; opposite direction, not significant; contradicted (excludes 0 against the paper); not
measurable (the reason is given: no data, or one seed of a number without per-item values).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from repro.analysis.stats import VERDICTS, Boot, Items, bootstrap_cells, interval, verdict
from repro.claimchecks import EVAL_METRICS, PROPORTIONS, CheckArgs, precheck
from repro.report.collect import ReportData, number, read_jsonl

log = logging.getLogger(__name__)

N_BOOT = 2000
ALIASES = {"key_token_loss": "key_loss", "tail_share": "high_share"}  # names in repro.analysis.tokenloss


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


def units(data: ReportData, sel: dict[str, Any] | None) -> list[list[str]]:
    """The selected conditions grouped into units: conditions whose labels differ only in `seed`."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for name in select(data, sel):
        lab = data.labels(name)
        key = tuple(sorted((k, v) for k, v in lab.items() if k not in ("seed", "condition")))
        if "seed" not in lab:
            key += (("condition", name),)
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def _dig(d: Any, path: list[str]) -> Any:
    for p in path:
        if isinstance(d, dict) and p not in d and ALIASES.get(p) in d:
            p = ALIASES[p]
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def what(metric: str, role: str | None) -> str:
    return f"{metric}{f' ({role})' if role and metric in EVAL_METRICS else ''}"


# ---------------------------------------------------------------------------------------------------------
# Per-condition items


class Source:
    """Reads per-item values of a condition from its job folders (cached)."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.rows = {r["name"]: r for r in data.cfg.conditions}
        self._cache: dict[Any, Any] = {}

    def folder(self, jid: str | None) -> Path | None:
        d = self.data.folders.get(jid or "")
        return d if d is not None and d.is_dir() else None

    def _samples(self, eid: str, bench: str) -> list[dict[str, Any]]:
        key = ("samples", eid, bench)
        if key not in self._cache:
            d = self.folder(eid)
            self._cache[key] = read_jsonl(d / bench / "samples.jsonl") if d else []
        return self._cache[key]

    def final_step(self, cond: str) -> int | None:
        ev = self.data.evals
        e = ev[(ev["condition"] == cond) & ev["final"]] if not ev.empty else ev
        return int(e["step"].max()) if not e.empty else None

    def steps(self, cond: str, role: str | None) -> list[int]:
        ev = self.data.evals
        if ev.empty:
            return []
        e = ev[ev["condition"] == cond]
        if role is not None:
            e = e[(e["role"] == role) | (e["benchmark"] == role)]
        return sorted(int(s) for s in e["step"].unique())

    def eval_items(self, cond: str, metric: str, role: str | None, step: Any) -> Items | None:
        """Per-item values of an eval metric over the benchmarks `role` names, at `step`."""
        ev = self.data.evals
        if ev.empty:
            return None
        e = ev[ev["condition"] == cond]
        if role is not None:
            e = e[(e["role"] == role) | (e["benchmark"] == role)]
        e = e[e["final"]] if step in (None, "final") else e[e["step"] == int(step)]
        if e.empty:
            return None
        ids: list[str] = []
        vals: list[float] = []
        scalars: list[float] = []
        for r in e.itertuples():
            per: dict[str, list[float]] = {}
            for row in self._samples(r.id, r.benchmark):
                v = sample_value(row, metric)
                if v is not None:
                    per.setdefault(str(row.get("problem_id")), []).append(v)
            if per:
                ids += [f"{r.benchmark}/{pid}" for pid in per]
                vals += [float(np.mean(v)) for v in per.values()]
            elif isinstance(getattr(r, metric, None), float) and not math.isnan(getattr(r, metric)):
                scalars.append(float(getattr(r, metric)))
        if ids:
            return Items.of(ids, vals)
        return Items.scalar(float(np.mean(scalars))) if scalars else None

    def loss_items(self, cond: str) -> Items | None:
        tl = self.data.train_log
        rows = tl[tl["condition"] == cond].sort_values("step") if not tl.empty else tl
        if rows.empty:
            return None
        tail = rows.iloc[-max(1, len(rows) // 10):]
        return Items.of([f"step/{int(s)}" for s in tail["step"]], tail["loss"].astype(float).tolist())

    def analysis_job(self, cond: str, name: str) -> dict[str, Any] | None:
        return next((a for a in self.rows.get(cond, {}).get("analyses") or [] if a.get("name") == name), None)

    def token_loss_items(self, cond: str, key: str) -> Items | None:
        a = self.analysis_job(cond, "token_loss")
        d = self.folder(a.get("id") if a else None)
        path = next((p for p in (d / "nll.npz", d / "token_loss" / "nll.npz") if p.exists()), None) if d else None
        if path is None:
            return None
        with np.load(path) as z:
            flat, offsets = z["nll"].astype(np.float64), z["offsets"]
        seqs = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        seqs = [s for s in seqs if s.size]
        ids = [f"{cond}/example/{i}" for i in range(len(seqs))]  # different data per condition: unpaired
        if key in ("tail_share", "high_share"):
            return Items.of(ids, [float((s > 2.0).sum()) for s in seqs], [float(s.size) for s in seqs])
        if key in ("key_token_loss", "key_loss"):
            thr = float(np.quantile(np.concatenate(seqs), 0.9)) if seqs else 0.0
            return Items.of(ids, [float(s[s >= thr].sum()) for s in seqs], [float((s >= thr).sum()) for s in seqs])
        return None

    def typer(self, cond: str) -> tuple[Any, str]:
        from repro.analysis.steps import KeywordTyper

        s = self.data.analyses.get(cond, {}).get("steps") or {}
        return KeywordTyper(**(s.get("typer") or {})), str(s.get("rule") or "paragraph")

    def step_items(self, cond: str, path: list[str]) -> Items | None:
        """steps.train.<mix|transitions>... per trace, or steps.outputs.<bench>.<...> per sample."""
        from repro.analysis.steps import segment

        if not path:
            return None
        typer, rule = self.typer(cond)
        if path[0] == "train":
            row = self.rows.get(cond, {})
            d = next((f for f in (self.folder(row.get("filter")), self.folder(row.get("generate")))
                      if f is not None and (f / "traces.jsonl").exists()), None)
            docs = [(f"trace/{r.get('problem_id')}", r.get("completion", ""), None) for r in (read_jsonl(d / "traces.jsonl") if d else [])]
            rest = path[1:]
        elif path[0] == "outputs" and len(path) >= 2:
            a = self.analysis_job(cond, "steps")
            step = a.get("step") if a else None
            ev = self.data.evals
            e = ev[(ev["condition"] == cond) & (ev["benchmark"] == path[1]) & (ev["step"] == step)] if not ev.empty else ev
            if e.empty:
                return None
            docs = [(f"{path[1]}/{r.get('problem_id')}/{r.get('sample', 0)}", r.get("output", ""), r)
                    for r in self._samples(e.iloc[0]["id"], path[1])]
            rest = path[2:]
        else:
            return None
        if not docs or not rest:
            return None
        ids, num, den = [], [], []
        for pid, text, row in docs:
            if rest == ["trapped_rate"]:
                if row is None:
                    return None
                ids.append(pid), num.append(float((not row.get("finished")) and (not row.get("answered", True)))), den.append(1.0)
                continue
            types = typer.types(segment(text, rule))
            if rest[0] == "mix" and len(rest) == 2:
                ids.append(pid), num.append(float(sum(t == rest[1] for t in types))), den.append(float(len(types)))
            elif rest[0] == "transitions" and len(rest) == 3:
                pairs = list(zip(types, types[1:]))
                ids.append(pid)
                num.append(float(sum(a == rest[1] and b == rest[2] for a, b in pairs)))
                den.append(float(sum(a == rest[1] for a, _ in pairs)))
            else:
                return None
        return Items.of(ids, num, den) if ids and sum(den) > 0 else None

    def items(self, cond: str, metric: str, role: str | None, step: Any) -> Items | None:
        """The per-item values of `metric` for one condition (one seed); a scalar when no items exist."""
        key = ("items", cond, metric, role, step)
        if key in self._cache:
            return self._cache[key]
        out: Items | None = None
        if metric in EVAL_METRICS:
            out = self.eval_items(cond, metric, role, step)
        elif metric == "final_loss":
            out = self.loss_items(cond)
        elif "." in metric:
            name, *path = metric.split(".")
            if name == "token_loss" and len(path) == 1:
                out = self.token_loss_items(cond, path[0])
            elif name == "steps":
                out = self.step_items(cond, path)
            if out is None:
                v = _dig(self.data.analyses.get(cond, {}).get(name), path)
                if name == "logit_lens" and len(path) == 2 and path[1] == "resolved_layer":
                    v = self.layer(cond, path[0], "logit_lens")
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out = Items.scalar(float(v))
        self._cache[key] = out
        return out

    def layer(self, cond: str, split: str, name: str) -> float | None:
        """Resolved layer of a logit-lens split; one past the last layer when never resolved."""
        s = self.data.analyses.get(cond, {}).get(name)
        sp = _dig(s, ["splits", split])
        if not isinstance(sp, dict):
            return None
        r = sp.get("resolved_layer")
        n = len((s or {}).get("layers") or sp.get("median_rank_by_layer") or [])
        return float(r) if isinstance(r, (int, float)) else float(n)


def sample_value(row: dict[str, Any], metric: str) -> float | None:
    """One sample's value of an eval metric (None: the sample does not count for it)."""
    if metric == "accuracy":
        return float(bool(row.get("correct")))
    if metric == "finished_rate":
        return float(bool(row.get("finished")))
    if metric == "trapped_rate":
        return float((not row.get("finished")) and (not row.get("answered", True)))
    if metric == "mean_response_tokens":
        return float(row["n_tokens"]) if isinstance(row.get("n_tokens"), (int, float)) else None
    if metric == "harm_score":
        return float(row["harm_score"]) if isinstance(row.get("harm_score"), (int, float)) else None
    if metric == "refusal_rate":
        if "harm_score" not in row:  # only harmful requests carry a harm score
            return None
        from repro.tasks.probes import is_refusal

        return float(is_refusal(str(row.get("output", ""))))
    return None


# ---------------------------------------------------------------------------------------------------------
# Effects


@dataclass
class Effect:
    """One tested quantity: point, 95% interval, the paper's direction, and how the forest plot scales it."""

    label: str
    effect: float
    lo: float
    hi: float
    direction: int
    scale: float = 1.0
    unit: str = ""

    @property
    def verdict(self) -> str:
        return verdict(self.effect, self.lo, self.hi, self.direction)

    def text(self) -> str:
        return f"{self.label} {fmt(self.effect)} [{fmt(self.lo)}, {fmt(self.hi)}]"

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "effect": _num(self.effect), "ci_low": _num(self.lo), "ci_high": _num(self.hi),
                "direction": self.direction, "scale": _num(self.scale), "unit": self.unit, "verdict": self.verdict}


def _num(x: float) -> float | None:
    return round(float(x), 6) if x is not None and math.isfinite(x) else None


class NotMeasurable(Exception):
    """The check cannot be tested on this run; the message says why."""


class Cells:
    """Collects units (each a list of seed Items) as bootstrap cells; `boot()` runs the bootstrap once."""

    def __init__(self, src: Source | None, metric: str, role: str | None, n_boot: int = N_BOOT, seed: int = 0) -> None:
        self.src, self.metric, self.role, self.n_boot, self.seed = src, metric, role, n_boot, seed
        self.cells: list[list[Items]] = []
        self.result: Boot | None = None

    def add(self, names: list[str], step: Any, what_side: str) -> int:
        """A unit (the seed replicates `names`) read at `step`; its cell index."""
        assert self.src is not None
        reps = [it for it in (self.src.items(n, self.metric, self.role, step) for n in names) if it is not None]
        if not reps:
            raise NotMeasurable(f"no {what(self.metric, self.role)} for {what_side}")
        return self.add_items(reps)

    def add_items(self, reps: list[Items]) -> int:
        """A cell from its seed replicates; its index."""
        self.cells.append(list(reps))
        return len(self.cells) - 1

    def boot(self) -> Boot:
        if self.result is None:
            if not self.cells:
                raise NotMeasurable(f"no {what(self.metric, self.role)} for any selected condition")
            single = all(len(c) == 1 and not c[0].ids for c in self.cells)
            if single:
                raise NotMeasurable(f"{what(self.metric, self.role)} is one number per condition with one seed: "
                                    "no interval (add replicates)")
            self.result = bootstrap_cells(self.cells, n_boot=self.n_boot, seed=self.seed)
        return self.result

    def side(self, idx: list[int]) -> tuple[float, np.ndarray]:
        b = self.boot()
        return float(np.mean(b.point[idx])), b.draws[:, idx].mean(axis=1)


def _effect(label: str, cells: Cells, point: float, draws: np.ndarray, direction: int, scale: float = 1.0,
            unit: str = "") -> Effect:
    lo, hi = interval(point, draws, cells.boot().df)
    return Effect(label, point, lo, hi, direction, scale if scale and math.isfinite(scale) else 1.0, unit)


def _scale(metric: str, ref: float) -> tuple[float, str]:
    """Forest-plot scale: proportions as they are; other numbers relative to the reference side."""
    if metric in PROPORTIONS or metric.split(".")[-1] in ("tail_share",) or ".mix." in metric or ".transitions." in metric:
        return 1.0, f"Δ {metric}"
    return (abs(ref) if ref else 1.0), f"Δ {metric} / {fmt(abs(ref))}"


def _sides_text(cells: Cells, parts: list[tuple[str, list[int], int]]) -> str:
    b = cells.boot()
    out = []
    for name, idx, _ in parts:
        seeds = sum(b.seeds[i] for i in idx)
        out.append(f"{name} {fmt(float(np.mean(b.point[idx])))} ({len(idx)} condition{'s' if len(idx) != 1 else ''}, "
                   f"{seeds} run{'s' if seeds != 1 else ''})")
    return " vs ".join(out)


def difference(cells: Cells, hi: list[int], lo: list[int]) -> Effect:
    """mean(higher cells) - mean(lower cells), paper's direction positive."""
    (ph, dh), (pl, dl) = cells.side(hi), cells.side(lo)
    scale, unit = _scale(cells.metric, pl)
    return _effect("difference", cells, ph - pl, dh - dl, +1, scale, unit)


def trend(cells: Cells, by_x: dict[float, list[int]], direction: int, axis: str = "x", log_x: bool = False) -> tuple[Effect, np.ndarray, np.ndarray]:
    """Least-squares slope of the per-x means over x (cells by x value); (effect, xs, per-x means)."""
    xs = np.array(sorted(by_x))
    sides = [cells.side(by_x[x]) for x in xs]
    ys = np.array([p for p, _ in sides])
    slope = float(_slope(xs, ys))
    draws = _slope(xs, np.stack([d for _, d in sides], axis=1))
    span = float(xs.max() - xs.min())
    unit = f"slope × {axis} range" + (" (log10)" if log_x else "")
    e = _effect(f"slope per {'log10 ' if log_x else ''}{axis}", cells, slope, draws, direction, 1.0 / span if span else 1.0, unit)
    return e, xs, ys


def check_greater(src: Source, c: Any) -> tuple[str, list[Effect]]:
    cells = Cells(src, c.metric, c.role)
    s_hi = c.higher_step if c.higher_step is not None else c.step
    s_lo = c.lower_step if c.lower_step is not None else c.step
    hu, lu = units(src.data, c.higher), units(src.data, c.lower)
    if not hu or not lu:
        raise NotMeasurable(f"no condition matches the {'higher' if not hu else 'lower'} side")
    hi = [cells.add(u, s_hi, f"higher side ({sel_text(c.higher)})") for u in hu]
    lo = [cells.add(u, s_lo, f"lower side ({sel_text(c.lower)})") for u in lu]
    e = difference(cells, hi, lo)
    at = (lambda s: f" at step {s}") if s_hi != s_lo else (lambda s: "")
    text = (f"{what(c.metric, c.role)}: " + _sides_text(cells, [(sel_text(c.higher) + at(s_hi), hi, 1),
                                                                 (sel_text(c.lower) + at(s_lo), lo, 1)]))
    return text, [e]


def check_gap(src: Source, c: Any) -> tuple[str, list[Effect]]:
    cells = Cells(src, c.metric, c.role)
    gaps, parts = [], []
    for side in ("a", "b"):
        pair = getattr(c, side)
        hu, lu = units(src.data, pair.higher), units(src.data, pair.lower)
        if not hu or not lu:
            raise NotMeasurable(f"no condition matches one end of gap {side!r}")
        hi = [cells.add(u, c.step, f"gap {side} higher") for u in hu]
        lo = [cells.add(u, c.step, f"gap {side} lower") for u in lu]
        gaps.append((hi, lo))
    draws, points = [], []
    for side, (hi, lo) in zip("ab", gaps):
        (ph, dh), (pl, dl) = cells.side(hi), cells.side(lo)
        points.append(ph - pl)
        draws.append(dh - dl)
        pair = getattr(c, side)
        parts.append(f"{sel_text(pair.higher)} {fmt(ph)} - {sel_text(pair.lower)} {fmt(pl)} = {fmt(ph - pl)}")
    e = _effect("gap difference", cells, points[0] - points[1], draws[0] - draws[1], +1, *_scale(c.metric, 0.0))
    return f"{what(c.metric, c.role)} gaps: " + "; vs ".join(parts), [e]


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of the rows of y (B, n) on x (n)."""
    xc = x - x.mean()
    return ((y - y.mean(axis=-1, keepdims=True)) * xc).sum(axis=-1) / float((xc * xc).sum())


def check_trend(src: Source, c: Any) -> tuple[str, list[Effect]]:
    cells = Cells(src, c.metric, c.role)
    by_x: dict[float, list[int]] = {}
    for u in units(src.data, c.where):
        x = number(src.data.labels(u[0]).get(c.axis))
        if x is None or (c.log_x and x <= 0):
            continue
        try:
            idx = cells.add(u, c.step, f"{c.axis}={x}")
        except NotMeasurable:
            continue
        by_x.setdefault(math.log10(x) if c.log_x else x, []).append(idx)
    if len(by_x) < 2:
        raise NotMeasurable(f"fewer than 2 numeric values of axis {c.axis!r} with {what(c.metric, c.role)}")
    e, xs, ys = trend(cells, by_x, -1 if c.kind == "decreasing" else 1, c.axis, c.log_x)
    text = (f"{what(c.metric, c.role)} by {c.axis}: " + ", ".join(f"{fmt(10 ** x if c.log_x else x)}: {fmt(y)}" for x, y in zip(xs, ys))
            + f"; least-squares slope {fmt(e.effect)}")
    return text, [e]


def check_dip(src: Source, c: Any) -> tuple[str, list[Effect]]:
    cells = Cells(src, c.metric, c.role)
    us = units(src.data, c.where)
    if not us:
        raise NotMeasurable("no condition matches `where`")
    finals = [src.final_step(u[0]) for u in us]
    mids: set[int] | None = None
    for u, f in zip(us, finals):
        if f is None:
            raise NotMeasurable(f"no final step for {u[0]}")
        m = {s for s in src.steps(u[0], c.role) if 0 < s < f and (c.early_max_step is None or s <= c.early_max_step)}
        mids = m if mids is None else mids & m
    if not mids or any(0 not in src.steps(u[0], c.role) for u in us):
        raise NotMeasurable(f"no {what(c.metric, c.role)} curve with step 0, an intermediate step and a final step")
    mid_steps = sorted(mids)
    base = [cells.add(u, 0, "step 0") for u in us]
    final = [cells.add(u, f, "final step") for u, f in zip(us, finals)]
    mid = {s: [cells.add(u, s, f"step {s}") for u in us] for s in mid_steps}
    (pb, db), (pf, df_) = cells.side(base), cells.side(final)
    mp = {s: cells.side(i) for s, i in mid.items()}
    low_at = min(mid_steps, key=lambda s: mp[s][0])
    pmin = mp[low_at][0]
    dmin = np.min(np.stack([mp[s][1] for s in mid_steps], axis=1), axis=1)
    scale, unit = _scale(c.metric, pb)
    effects = [_effect("dip (step 0 - minimum)", cells, pb - pmin, db - dmin, +1, scale, unit),
               _effect("recovery (final - minimum)", cells, pf - pmin, df_ - dmin, +1, scale, unit)]
    if c.above_base:
        effects.append(_effect("final - step 0", cells, pf - pb, df_ - db, +1, scale, unit))
    curve = ", ".join(f"s{s} {fmt(mp[s][0])}" for s in mid_steps)
    text = (f"{what(c.metric, c.role)}, mean curve of {len(us)} condition{'s' if len(us) != 1 else ''} "
            f"({sel_text(c.where)}): s0 {fmt(pb)}, {curve}, final {fmt(pf)}; minimum at s{low_at}")
    return text, effects


def check_layer(src: Source, c: Any) -> tuple[str, list[Effect]]:
    metric = f"{c.analysis}.{c.split}.resolved_layer"
    cells = Cells(src, metric, None)
    su, du = units(src.data, c.shallower), units(src.data, c.deeper)
    if not su or not du:
        raise NotMeasurable("no condition matches one side")
    sh = [cells.add(u, "final", "the shallower side") for u in su]
    de = [cells.add(u, "final", "the deeper side") for u in du]
    (ps, ds), (pd_, dd) = cells.side(sh), cells.side(de)
    n_layers = max((len((src.data.analyses.get(n, {}).get(c.analysis) or {}).get("layers") or []) for u in su + du for n in u), default=0)
    e = _effect("layer difference (deeper - shallower)", cells, pd_ - ps, dd - ds, +1, float(n_layers or 1),
                f"Δ layer / {n_layers or 1} layers")
    text = (f"resolved layer ({c.split}; unresolved = past the last layer, seeds only: no per-item ranks): "
            + _sides_text(cells, [(sel_text(c.shallower), sh, 1), (sel_text(c.deeper), de, 1)]))
    return text, [e]


def check_overlap(src: Source, c: Any) -> tuple[str, list[Effect]]:
    data = src.data

    def side(sel: Any) -> tuple[set[str], set[str]]:
        names = set(select(data, sel))
        fs = [f for f in data.filters if names & set(f["conditions"]) and f["stats"]]
        return set().union(*[set(f["stats"].get("dropped_ids") or {}) for f in fs]), {f["generate"] for f in fs}

    (a, ga), (b, gb) = side(c.a), side(c.b)
    shared = ga & gb
    if not shared or not (a | b):
        raise NotMeasurable("no dropped ids from filters of the same generate job")
    d = src.folder(sorted(shared)[0])
    pids = list(dict.fromkeys(str(r.get("problem_id")) for r in (read_jsonl(d / "traces.jsonl") if d else [])))
    pids += sorted((a | b) - set(pids))
    it = Items.of([f"problem/{p}" for p in pids], [float(p in a and p in b) for p in pids], [float(p in a or p in b) for p in pids])
    boot = bootstrap_cells([[it]], n_boot=N_BOOT)
    j = float(boot.point[0])
    lo, hi = interval(c.threshold - j, c.threshold - boot.draws[:, 0])
    e = Effect("threshold - Jaccard", c.threshold - j, lo, hi, +1, 1.0, "threshold - Jaccard")
    text = (f"Jaccard of dropped problems {fmt(j)} ({len(a & b)} dropped by both of {len(a)} and {len(b)}, "
            f"{len(pids)} problems); threshold {fmt(c.threshold)}")
    return text, [e]


KINDS: dict[str, Callable[[Source, Any], tuple[str, list[Effect]]]] = {
    "greater": check_greater, "gap_greater": check_gap, "increasing": check_trend, "decreasing": check_trend,
    "dip_recovery": check_dip, "layer_shallower": check_layer, "overlap_below": check_overlap}


def combine(effects: list[Effect]) -> str:
    """The claim's verdict from its effects: every part reproduced -> reproduced; any contradicted ->
    contradicted; else same direction (all point the paper's way) or opposite direction, not significant."""
    vs = [e.verdict for e in effects]
    if not vs or "not measurable" in vs:
        return "not measurable"
    if all(v == "reproduced" for v in vs):
        return "reproduced"
    if "contradicted" in vs:
        return "contradicted"
    return VERDICTS[1] if all(e.direction * e.effect > 0 for e in effects) else VERDICTS[2]


def evaluate(claims: list[dict[str, Any]], data: ReportData) -> list[dict[str, Any]]:
    """Each claim with its effect(s), 95% intervals and verdict (see the module docstring)."""
    from pydantic import TypeAdapter

    from repro.claimchecks import Check

    adapter = TypeAdapter(Check)
    src = Source(data)
    out = []
    for cl in claims:
        effects: list[Effect] = []
        why = ""
        kind = (cl.get("check") or {}).get("kind", "greater")
        try:
            check: CheckArgs = adapter.validate_python(precheck(dict(cl.get("check") or {})))
            kind = check.kind  # type: ignore[attr-defined]
            measured, effects = KINDS[kind](src, check)
        except NotMeasurable as e:
            measured, why = f"not measurable: {e}", str(e)
        except (ValueError, KeyError, TypeError) as e:  # a malformed check must not sink the report
            log.warning("claim %s: check failed: %s", cl.get("id"), e)
            measured, why = f"check could not be evaluated: {type(e).__name__}: {e}", str(e)
        v = combine(effects) if effects else "not measurable"
        main = min(effects, key=lambda e: e.direction * e.lo if math.isfinite(e.lo) else -math.inf) if effects else None
        if v == "not measurable" and not why:
            why = "no interval: " + "; ".join(e.text() for e in effects)
        out.append({"id": cl.get("id", ""), "paper": cl.get("paper", ""), "claim": cl.get("claim", ""),
                    "paper_number": cl.get("number", ""), "kind": kind, "design": bool(cl.get("design")),
                    "caveat": cl.get("caveat", ""), "measured": measured,
                    "effect": _num(main.effect) if main else None, "ci_low": _num(main.lo) if main else None,
                    "ci_high": _num(main.hi) if main else None, "effect_label": main.label if main else "",
                    "verdict": v, "why": why, "reproduced": (v == "reproduced") if v != "not measurable" else None,
                    "effects": [e.to_json() for e in effects]})
    return out

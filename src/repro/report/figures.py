"""Figures of accuracy, length and loss: seaborn on matplotlib `Figure`s (no pyplot state), as base64 PNG.

Every function takes `ReportData` and the condition palette and returns a `Fig` (PNG + alt text +
caption) or None when the data for it is missing. PNG bytes are deterministic: fixed rc parameters, Agg,
no Software/date metadata (`png()`).

- `accuracy_final`: accuracy per benchmark at each condition's final step, 95% intervals.
- `curves`: accuracy (and mean response length in a second row) vs training step, per benchmark.
- `loss_curves`: training loss vs step.
- `loss_vs_ood`: final training loss vs OOD accuracy, one point per condition (study A's paradox).
- `safety`: refusal rate on safety benchmarks vs accuracy, one point per condition and checkpoint.
- `sweeps`: accuracy at the final step along each numeric axis (e.g. noise xi).
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from repro.report.collect import ReportData, number

log = logging.getLogger(__name__)

DPI = 100


@dataclass
class Fig:
    """One rendered figure: base64 PNG, alt text (what it shows, for screen readers) and a caption."""

    b64: str
    alt: str
    caption: str


def palette(names: list[str]) -> dict[str, str]:
    """One colour per condition, in spec order: colorblind-safe for <= 10, evenly spaced hues beyond."""
    cols = sns.color_palette("colorblind", len(names)) if len(names) <= 10 else sns.color_palette("husl", len(names))
    return {n: "#%02x%02x%02x" % tuple(int(round(255 * c)) for c in col) for n, col in zip(names, cols)}


def rc() -> dict[str, Any]:
    """Fixed matplotlib/seaborn style, so figures look and hash the same everywhere."""
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85),
            "svg.hashsalt": "repro-report", "figure.dpi": DPI, "savefig.dpi": DPI, "font.family": "DejaVu Sans",
            "axes.titleweight": "bold", "legend.frameon": False, "path.simplify": True}


def new_fig(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def png(fig: Figure) -> str:
    """Deterministic PNG bytes (no Software/creation-time metadata), base64."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render(fig: Figure, alt: str, caption: str) -> Fig:
    return Fig(png(fig), alt, caption)


def legend_right(fig: Figure, ax: Any, pal: dict[str, str], names: list[str], title: str = "condition",
                 patches: bool = False) -> None:
    """One legend for the whole figure, outside the axes on the right, in spec order."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=pal[n], label=n) if patches else Line2D([], [], color=pal[n], marker="o", lw=2, label=n)
               for n in names]
    fig.legend(handles=handles, title=title, loc="outside right upper", fontsize="small")


def _listing(items: list[str], n: int = 6) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _non_safety(ev: pd.DataFrame) -> pd.DataFrame:
    return ev[ev["role"] != "safety"] if not ev.empty else ev


def accuracy_final(data: ReportData, pal: dict[str, str]) -> Fig | None:
    ev = _non_safety(data.evals)
    ev = ev[ev["final"]] if not ev.empty else ev
    if ev.empty or ev["accuracy"].isna().all():
        return None
    benches = [b for b in data.benchmarks() if b in set(ev["benchmark"])]
    conds = [c for c in data.order if c in set(ev["condition"])]
    nb, nc = len(benches), len(conds)
    fig, axes = new_fig(max(7.0, min(16, 2.5 + 0.32 * nb * nc + 0.6 * nb)), 3.8)
    ax = axes[0, 0]
    width = 0.8 / nc
    for j, c in enumerate(conds):
        sub = ev[ev["condition"] == c].set_index("benchmark").reindex(benches)
        x = np.arange(nb) + (j - (nc - 1) / 2) * width
        y = sub["accuracy"].to_numpy(float)
        err = np.vstack([np.clip(y - sub["ci_low"].to_numpy(float), 0, None), np.clip(sub["ci_high"].to_numpy(float) - y, 0, None)])
        err = np.nan_to_num(err)
        ax.bar(x, np.nan_to_num(y), width * 0.92, color=pal[c], label=c)
        ax.errorbar(x, np.nan_to_num(y), yerr=err, fmt="none", ecolor="#333333", elinewidth=1, capsize=2)
    roles = ev.drop_duplicates("benchmark").set_index("benchmark")["role"]
    ax.set_xticks(np.arange(nb), [f"{b}\n({roles[b]})" for b in benches])
    ax.set_ylabel("accuracy at final step")
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy at the final step")
    legend_right(fig, ax, pal, conds, patches=True)
    best = ev.loc[ev["accuracy"].idxmax()]
    alt = (f"Grouped bar chart of accuracy at each condition's final training step for benchmarks "
           f"{_listing(benches)} and conditions {_listing(conds)}, with 95% interval error bars. "
           f"Highest: {best['condition']} on {best['benchmark']} at {best['accuracy']:.2f}.")
    return render(fig, alt, "Accuracy at the final step; bars are grouped by benchmark (role in brackets), "
                            "one colour per condition; whiskers are 95% intervals.")


def _step_axis(ax: Any, steps: list[int]) -> None:
    pos = [s for s in steps if s > 0]
    if pos and max(pos) / min(pos) >= 20:
        ax.set_xscale("symlog", linthresh=max(1, min(pos)))
        ax.set_xticks(sorted(set(steps)))
        ax.set_xticklabels([str(s) for s in sorted(set(steps))], rotation=45, fontsize="x-small")
    ax.set_xlabel("training step")


def curves(data: ReportData, pal: dict[str, str]) -> Fig | None:
    ev = _non_safety(data.evals)
    if ev.empty:
        return None
    counts = ev.groupby(["condition", "benchmark"])["step"].nunique()
    if counts.max() < 2:
        return None
    benches = [b for b in data.benchmarks() if b in set(ev["benchmark"])]
    has_len = ev["mean_response_tokens"].notna().any()
    nrows, nb = (2 if has_len else 1), len(benches)
    fig, axes = new_fig(max(6.5, min(18, 1.6 + 3.3 * nb)), 3.0 * nrows + 0.4, nrows, nb, sharex="col")
    conds = [c for c in data.order if c in set(ev["condition"])]
    steps = sorted(set(int(s) for s in ev["step"]))
    for i, b in enumerate(benches):
        eb = ev[ev["benchmark"] == b]
        for c in conds:
            e = eb[eb["condition"] == c].sort_values("step")
            if e.empty:
                continue
            ax = axes[0, i]
            ax.plot(e["step"], e["accuracy"], marker="o", ms=3.5, color=pal[c], lw=1.8)
            if len(conds) <= 4 and e["ci_low"].notna().any():
                ax.fill_between(e["step"], e["ci_low"], e["ci_high"], color=pal[c], alpha=0.12, lw=0)
            if has_len:
                axes[1, i].plot(e["step"], e["mean_response_tokens"], marker="o", ms=3.5, color=pal[c], lw=1.8)
        role = eb["role"].iloc[0]
        axes[0, i].set_title(f"{b} ({role})")
        axes[0, i].set_ylim(-0.02, 1.02)
        axes[0, i].set_ylabel("accuracy" if i == 0 else "")
        if has_len:
            axes[1, i].set_ylabel("mean response tokens" if i == 0 else "")
        _step_axis(axes[nrows - 1, i], steps)
    legend_right(fig, axes[0, 0], pal, conds)
    alt = (f"Line charts of accuracy versus training step (steps {_listing([str(s) for s in steps], 10)}) for benchmarks "
           f"{_listing(benches)}, one line per condition ({_listing(conds)})"
           + (" with shaded 95% intervals" if len(conds) <= 4 else "")
           + (", and below each the mean response length in tokens versus step." if has_len else "."))
    return render(fig, alt, "Accuracy vs training step per benchmark (top) and mean response length (bottom): "
                            "a dip early in training followed by recovery is the pattern study B reports.")


def loss_curves(data: ReportData, pal: dict[str, str]) -> Fig | None:
    tl = data.train_log
    if tl.empty:
        return None
    conds = [c for c in data.order if c in set(tl["condition"])]
    fig, axes = new_fig(8.5, 3.6)
    ax = axes[0, 0]
    for c in conds:
        t = tl[tl["condition"] == c].sort_values("step")
        w = max(1, len(t) // 50)
        ax.plot(t["step"], t["loss"].rolling(w, min_periods=1).mean(), color=pal[c], lw=1.6)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (token mean)")
    ax.set_title("Training loss")
    legend_right(fig, ax, pal, conds)
    last = tl.sort_values("step").groupby("condition")["loss"].last()
    alt = ("Line chart of training loss versus step, one line per condition; last logged loss: "
           + ", ".join(f"{c} {last[c]:.3f}" for c in conds[:8]) + ("." if len(conds) <= 8 else ", ..."))
    return render(fig, alt, "Training loss per condition (rolling mean when many steps are logged); "
                            "conditions sharing one run are cut at their own length.")


def final_accuracy(data: ReportData, role: str) -> pd.Series:
    """Mean accuracy over a role's benchmarks at each condition's final step."""
    ev = data.evals
    if ev.empty:
        return pd.Series(dtype=float)
    ev = ev[(ev["role"] == role) & ev["final"]]
    return ev.groupby("condition")["accuracy"].mean().dropna()


def _scatter_labels(ax: Any, xs: list[float], ys: list[float], names: list[str]) -> None:
    for x, y, n in zip(xs, ys, names):
        ax.annotate(n, (x, y), xytext=(4, 4), textcoords="offset points", fontsize="x-small")


def loss_vs_ood(data: ReportData, pal: dict[str, str]) -> Fig | None:
    acc = final_accuracy(data, "ood")
    loss = data.train.set_index("condition")["final_loss"].dropna() if not data.train.empty else pd.Series(dtype=float)
    conds = [c for c in data.order if c in acc.index and c in loss.index]
    if len(conds) < 2:
        return None
    fig, axes = new_fig(7.5, 4.0)
    ax = axes[0, 0]
    xs, ys = [float(loss[c]) for c in conds], [float(acc[c]) for c in conds]
    ax.scatter(xs, ys, c=[pal[c] for c in conds], s=60, edgecolor="#222222", zorder=3)
    if len(conds) <= 6:
        _scatter_labels(ax, xs, ys, conds)
    ax.set_xlabel("final training loss")
    ax.set_ylabel("OOD accuracy at final step")
    ax.set_title("Final training loss vs OOD accuracy")
    legend_right(fig, ax, pal, conds)
    alt = ("Scatter plot of final training loss (x) against out-of-distribution accuracy (y), one point per "
           "condition: " + "; ".join(f"{c} loss {x:.3f}, OOD {y:.2f}" for c, x, y in list(zip(conds, xs, ys))[:8]) + ".")
    return render(fig, alt, "Final training loss vs OOD accuracy, one point per condition: study A reports "
                            "the lower-loss teacher giving the worse student.")


def safety(data: ReportData, pal: dict[str, str]) -> Fig | None:
    ev = data.evals
    if ev.empty or not (ev["role"] == "safety").any():
        return None
    ref = ev[ev["role"] == "safety"].groupby(["condition", "step"])["refusal_rate"].mean().dropna()
    role = "ood" if (ev["role"] == "ood").any() else "id"
    acc = ev[ev["role"] == role].groupby(["condition", "step"])["accuracy"].mean().dropna()
    both = pd.concat({"refusal": ref, "accuracy": acc}, axis=1).dropna().reset_index()
    if both.empty:
        return None
    conds = [c for c in data.order if c in set(both["condition"])]
    fig, axes = new_fig(7.5, 4.2)
    ax = axes[0, 0]
    for c in conds:
        b = both[both["condition"] == c].sort_values("step")
        ax.plot(b["accuracy"], b["refusal"], marker="o", ms=4, color=pal[c], lw=1.2, alpha=0.9)
        ax.scatter(b["accuracy"].iloc[-1:], b["refusal"].iloc[-1:], marker="*", s=140, color=pal[c],
                   edgecolor="#222222", linewidth=0.6, zorder=4)
        for _, r in (b.iterrows() if len(conds) <= 4 else iter(())):
            ax.annotate(f"s{int(r['step'])}", (r["accuracy"], r["refusal"]), xytext=(3, 3),
                        textcoords="offset points", fontsize="xx-small", color="#444444")
    ax.set_xlabel(f"{role.upper()} accuracy")
    ax.set_ylabel("refusal rate on safety prompts")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Safety vs reasoning")
    legend_right(fig, ax, pal, conds)
    alt = (f"Scatter plot of {role.upper()} accuracy (x) against refusal rate on safety prompts (y), one point per "
           f"condition and checkpoint, points of a condition joined in step order, for {_listing(conds)}.")
    return render(fig, alt, f"Refusal rate on safety benchmarks vs {role.upper()} accuracy, one point per "
                            "checkpoint, joined in step order; study B reports safety degrading under long-CoT SFT.")


def numeric_axes(data: ReportData) -> list[str]:
    """Axes whose every label holds a number and that take at least 3 distinct values."""
    out = []
    for a in data.axes:
        vals = [number(data.labels(c).get(a, "")) for c in data.order if a in data.labels(c)]
        if vals and all(v is not None for v in vals) and len(set(vals)) >= 3:
            out.append(a)
    return out


def sweeps(data: ReportData, pal: dict[str, str]) -> Iterator[tuple[str, Fig]]:
    """One figure per numeric axis: final accuracy vs the axis value, a line per benchmark (and other axes)."""
    ev = _non_safety(data.evals)
    if ev.empty:
        return
    ev = ev[ev["final"]]
    benches = [b for b in data.benchmarks() if b in set(ev["benchmark"])]
    bpal = dict(zip(benches, sns.color_palette("dark", len(benches))))
    for axis in numeric_axes(data):
        if axis == "seed":  # replicates are averaged, not a sweep
            continue
        rest = [a for a in data.axes if a not in (axis, "seed")]
        rows = []
        for _, r in ev.iterrows():
            lab = data.labels(r["condition"])
            if axis not in lab:
                continue
            rows.append({"x": number(lab[axis]), "benchmark": r["benchmark"], "accuracy": r["accuracy"],
                         "group": " ".join(f"{a}={lab.get(a, '')}" for a in rest) or "all"})
        df = pd.DataFrame(rows).groupby(["benchmark", "group", "x"], as_index=False)["accuracy"].mean()
        df = df[df.groupby(["benchmark", "group"])["x"].transform("nunique") >= 2]  # a line needs 2 points
        if df.empty:
            continue
        groups = list(dict.fromkeys(df["group"]))
        styles = ["-", "--", ":", "-."]
        fig, axes = new_fig(7.5, 4.0)
        ax = axes[0, 0]
        from matplotlib.lines import Line2D

        handles = []
        for b in benches:
            for k, g in enumerate(groups):
                d = df[(df["benchmark"] == b) & (df["group"] == g)].sort_values("x")
                if d.empty:
                    continue
                label = b if len(groups) == 1 else f"{b} · {g}"
                ax.plot(d["x"], d["accuracy"], marker="o", color=bpal[b], ls=styles[k % 4], lw=1.8)
                handles.append(Line2D([], [], color=bpal[b], ls=styles[k % 4], marker="o", label=label))
        ax.set_xlabel(axis)
        ax.set_ylabel("accuracy at final step")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"Accuracy along {axis}")
        fig.legend(handles=handles, title="benchmark", loc="outside right upper", fontsize="small")
        alt = (f"Line chart of final-step accuracy versus {axis} (values "
               f"{', '.join(f'{x:g}' for x in sorted(set(df['x'])))}), one line per benchmark ({_listing(benches)})"
               + (f" and setting of the other axes ({_listing(groups, 4)})" if len(groups) > 1 else "") + ".")
        yield axis, render(fig, alt, f"Final-step accuracy along the numeric axis {axis}; study C reports OOD "
                                     "accuracy falling as the noise ratio rises.")


VERDICT_COLOURS = {"reproduced": "#1a7f37", "same direction, not significant": "#7fb08a",
                   "opposite direction, not significant": "#d9a05b", "contradicted": "#b42318",
                   "not measurable": "#8c959f"}


def forest(claims: list[dict[str, Any]]) -> Fig | None:
    """Every claim's effect(s) with 95% intervals on one axis, signed so that right of 0 is the paper's
    direction; findings above, design checks below. Proportions are plotted as they are; other numbers are
    divided by their scale (the lower side, the number of layers, the axis range) — the row label says how."""
    rows: list[tuple[str, float, float, float, str, bool]] = []
    for group in (False, True):
        for c in claims:
            if bool(c.get("design")) != group:
                continue
            effects = c.get("effects") or []
            if not effects:
                rows.append((f"{c['id']}: not measurable", np.nan, np.nan, np.nan, "not measurable", group))
            for e in effects:
                d, s = e["direction"], e.get("scale") or 1.0
                vals = [np.nan if v is None else d * v / s for v in (e["effect"], e["ci_low"], e["ci_high"])]
                lo, hi = sorted(vals[1:]) if not np.isnan(vals[1:]).any() else (np.nan, np.nan)
                label = f"{c['id']}: {e['label']}" + (f" [{e['unit']}]" if e.get("unit") else "")
                rows.append((label, vals[0], lo, hi, e["verdict"], group))
    if not rows:
        return None
    n = len(rows)
    fig, axes = new_fig(9.5, 1.2 + 0.34 * n)
    ax = axes[0, 0]
    ys = np.arange(n)[::-1]
    finite = [v for r in rows for v in r[1:4] if np.isfinite(v)]
    span = max([abs(v) for v in finite] + [0.05])
    for y, (label, x, lo, hi, v, _) in zip(ys, rows):
        col = VERDICT_COLOURS.get(v, "#8c959f")
        if np.isfinite(lo) and np.isfinite(hi):
            ax.hlines(y, lo, hi, color=col, lw=2.2)
        if np.isfinite(x):
            ax.plot([x], [y], "o", color=col, ms=6)
        else:
            ax.text(0, y, "not measurable", va="center", ha="center", fontsize="small", color=col)
    n_design = sum(r[5] for r in rows)
    if 0 < n_design < n:
        ax.axhline(n_design - 0.5, color="#555555", lw=0.8, ls="--")
        ax.text(1.0, n_design - 0.4, "design checks below", transform=ax.get_yaxis_transform(), ha="right",
                va="bottom", fontsize="x-small", color="#555555")
    ax.axvline(0, color="#333333", lw=1)
    ax.set_xlim(-1.1 * span, 1.1 * span)
    ax.set_yticks(ys, [r[0] for r in rows], fontsize="small")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("effect in the paper's direction (right of 0 = as the paper says), 95% interval")
    ax.set_title("All claims: effects and 95% intervals")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=col, marker="o", lw=2, label=v) for v, col in VERDICT_COLOURS.items()]
    fig.legend(handles=handles, title="verdict", loc="outside right upper", fontsize="small")
    counts = {v: sum(r[4] == v for r in rows) for v in VERDICT_COLOURS}
    alt = ("Forest plot of " + str(n) + " claim effects with 95% intervals on one axis, positive meaning the "
           "paper's direction: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v) + ".")
    return render(fig, alt, "Each row is one tested effect (a claim can have several, e.g. dip and recovery); "
                            "dot = our estimate, bar = 95% bootstrap interval (items and seeds), colour = verdict. "
                            "Right of the line is the paper's direction. Shares (accuracy, rates) are in their own "
                            "units; other numbers are divided by the scale named in brackets.")

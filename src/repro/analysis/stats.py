"""Uncertainty for eval numbers: bootstrap confidence intervals (flat, seed-grouped, paired), unbiased
pass@k, Wilson intervals for proportions, and the two-level cell bootstrap behind the report's verdicts.
numpy-vectorised; every function is seeded and pure.

    from repro.analysis.stats import bootstrap_ci, paired_bootstrap, pass_at_k
    mean, lo, hi = bootstrap_ci(correct_flags)                  # 95% percentile interval
    diff, lo, hi, p = paired_bootstrap(acc_filtered, acc_full)  # same items, two arms

The cell bootstrap (`Items`, `bootstrap_cells`, `interval`, `verdict`): a *cell* is one condition read
at one step, with one `Items` per training seed (per-item numerators and denominators; the cell's value
is sum(num) / sum(den), a mean when den = 1). Each bootstrap replicate draws a Poisson(1) weight per item
id, shared by every cell that holds that id (so cells scored on the same items are paired, cells on
different items are not), and, when a cell has k > 1 seeds, resamples its seeds with replacement
(deviations scaled by sqrt(k / (k - 1)), the small-sample correction of the bootstrap variance). Any
statistic of the cells (a difference, a slope, a dip) is computed per replicate; `interval` gives its
percentile interval, widened by t(df) / z when seeds enter (df by Satterthwaite: the cells' seed-level
variances with k - 1 degrees of freedom, the item-level variance with infinitely many), so k = 3 seeds per
arm do not give overconfident intervals. The seed deviations are shrunk to the seed-to-seed spread in
excess of the item-level noise that the item weights already resample (a random-effects split), so the
item noise is not counted twice.

    boot = bootstrap_cells([[Items.of(ids, acc_a)], [Items.of(ids, acc_b)]])
    eff = boot.point[0] - boot.point[1]
    lo, hi = interval(eff, boot.draws[:, 0] - boot.draws[:, 1], boot.df)
    verdict(eff, lo, hi, direction=+1)   # "reproduced", "same direction, not significant", ...
"""

from __future__ import annotations

import math
from statistics import NormalDist
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

_CHUNK = 4_000_000  # resampled values materialised at once (bounds memory for large n)


def _boot_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `n_boot` resamples (with replacement) of `x`, in chunks to bound memory."""
    n = len(x)
    per = max(1, _CHUNK // max(n, 1))
    out = [x[rng.integers(0, n, size=(min(per, n_boot - s), n))].mean(axis=1) for s in range(0, n_boot, per)]
    return np.concatenate(out)


def _interval(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and its percentile bootstrap (1 - alpha) interval. NaNs for no values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    boot = _boot_means(x, n_boot, np.random.default_rng(seed))
    return (float(x.mean()), *_interval(boot, alpha))


def bootstrap_ci_grouped(values_by_seed: Mapping[object, Sequence[float]] | Sequence[Sequence[float]],
                         n_boot: int = 1000, alpha: float = 0.05,
                         seed: int = 0) -> tuple[float, float, float]:
    """Two-level bootstrap for several training seeds: resample seeds with replacement, then items within
    each drawn seed. The statistic is the mean over seeds of the per-seed mean (each seed weighs the same)."""
    groups = [np.asarray(v, dtype=float) for v in
              (values_by_seed.values() if isinstance(values_by_seed, Mapping) else values_by_seed)]
    groups = [g for g in groups if g.size]
    if not groups:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    s = len(groups)
    picks = rng.integers(0, s, size=(n_boot, s))  # which seed fills each slot of each replicate
    slot_means = np.empty((n_boot, s))
    for j in range(s):
        for g in range(s):
            rows = np.flatnonzero(picks[:, j] == g)
            if rows.size:
                slot_means[rows, j] = _boot_means(groups[g], rows.size, rng)
    mean = float(np.mean([g.mean() for g in groups]))
    return (mean, *_interval(slot_means.mean(axis=1), alpha))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> tuple[float, float, float, float]:
    """(mean(a - b), lo, hi, p): a paired bootstrap over items scored in both arms. The two-sided p-value
    tests mean difference = 0 by the shifted bootstrap: (1 + #|d* - d| >= |d|) / (n_boot + 1)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in shape: {x.shape} vs {y.shape}")
    if x.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    d = x - y
    boot = _boot_means(d, n_boot, np.random.default_rng(seed))
    diff = float(d.mean())
    p = (1 + int(np.sum(np.abs(boot - diff) >= abs(diff)))) / (n_boot + 1)
    return (diff, *_interval(boot, alpha), min(1.0, p))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al., 2021):
    1 - C(n - c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def wilson_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """(p, lo, hi): the Wilson score interval for a binomial proportion. NaNs for n = 0."""
    if n == 0:
        return math.nan, math.nan, math.nan
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------------------------------------------
# Two-level cell bootstrap and verdicts

VERDICTS = ("reproduced", "same direction, not significant", "opposite direction, not significant",
            "contradicted", "not measurable")


@dataclass(frozen=True)
class Items:
    """One replicate (seed) of one cell: item ids with per-item numerators and denominators."""

    ids: tuple[str, ...]
    num: np.ndarray
    den: np.ndarray

    @classmethod
    def of(cls, ids: Sequence[str], values: Sequence[float], den: Sequence[float] | None = None) -> "Items":
        """Items from per-item values (and denominators: 1 each when None, i.e. a mean)."""
        num = np.asarray(values, dtype=float)
        d = np.ones_like(num) if den is None else np.asarray(den, dtype=float)
        if len(ids) != num.size or d.size != num.size:
            raise ValueError(f"items: {len(ids)} ids, {num.size} values, {d.size} denominators")
        return cls(tuple(str(i) for i in ids), num, d)

    @classmethod
    def scalar(cls, value: float) -> "Items":
        """A single number without item-level spread (varies only over seeds)."""
        return cls((), np.asarray([float(value)]), np.ones(1))

    def value(self) -> float:
        d = float(self.den.sum())
        return float(self.num.sum()) / d if d else math.nan


@dataclass
class Boot:
    """Point values (C,) and bootstrap draws (B, C) of the cells; df of the seed level (inf: no seeds);
    item_level: whether any cell has per-item values (else only seeds vary)."""

    point: np.ndarray
    draws: np.ndarray
    df: float
    item_level: bool
    seeds: list[int]


def _t_ppf(q: float, df: float) -> float:
    if not math.isfinite(df):
        return NormalDist().inv_cdf(q)
    from scipy.stats import t

    return float(t.ppf(q, df))


def bootstrap_cells(cells: Sequence[Sequence[Items]], n_boot: int = 2000, seed: int = 0) -> Boot:
    """Joint two-level bootstrap of several cells (see the module docstring). A cell with no replicate gets
    NaN everywhere."""
    rng = np.random.default_rng(seed)
    universe: dict[str, int] = {}
    for cell in cells:
        for rep in cell:
            for i in rep.ids:
                universe.setdefault(i, len(universe))
    weights = rng.poisson(1.0, size=(n_boot, len(universe))).astype(float) if universe else np.ones((n_boot, 0))
    point = np.full(len(cells), math.nan)
    draws = np.full((n_boot, len(cells)), math.nan)
    seed_vars: list[tuple[float, int]] = []
    item_var = 0.0
    for c, cell in enumerate(cells):
        if not cell:
            continue
        per_seed = np.empty((len(cell), n_boot))
        vals = []
        for s, rep in enumerate(cell):
            vals.append(rep.value())
            if rep.ids:
                w = weights[:, [universe[i] for i in rep.ids]]
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_seed[s] = (w @ rep.num) / (w @ rep.den)
            else:
                per_seed[s] = vals[-1]
        k = len(cell)
        point[c] = float(np.mean(vals))
        if k == 1:
            draws[:, c] = per_seed[0]
            item_var += float(np.nanvar(per_seed[0]))
            continue
        picks = rng.integers(0, k, size=(n_boot, k))
        resampled = per_seed[picks.T, np.arange(n_boot)].mean(axis=0)
        centre = per_seed.mean(axis=0)
        between = float(np.var(vals, ddof=1))
        within = float(np.nanmean(np.nanvar(per_seed, axis=1))) if any(rep.ids for rep in cell) else 0.0
        excess = max(0.0, between - within)  # seed-to-seed spread beyond the item-level noise already resampled
        shrink = math.sqrt(k / (k - 1) * excess / between) if between > 0 else 0.0
        draws[:, c] = centre + shrink * (resampled - centre)
        item_var += float(np.nanvar(centre))
        seed_vars.append((excess / k, k))
    # Satterthwaite: the seed parts have k - 1 degrees of freedom each, the item-level part infinitely many
    total = item_var + sum(v for v, _ in seed_vars)
    denom = sum(v * v / (k - 1) for v, k in seed_vars)
    df = total * total / denom if denom > 0 else math.inf
    if seed_vars:
        df = max(df, float(min(k - 1 for _, k in seed_vars)))
    return Boot(point, draws, df, any(rep.ids for cell in cells for rep in cell), [len(c) for c in cells])


def interval(point: float, draws: np.ndarray, df: float = math.inf, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of a statistic's bootstrap draws around its point value, widened by
    t_{1-alpha/2}(df) / z_{1-alpha/2} when seeds enter (df finite). NaNs when undefined."""
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if not math.isfinite(point) or d.size < 10:
        return math.nan, math.nan
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    f = _t_ppf(1 - alpha / 2, df) / NormalDist().inv_cdf(1 - alpha / 2)
    return float(point + f * (lo - point)), float(point + f * (hi - point))


def verdict(effect: float, lo: float, hi: float, direction: int = 1) -> str:
    """One of VERDICTS for an effect whose paper's direction is `direction` (+1: positive, -1: negative):
    reproduced when the interval excludes 0 in that direction, contradicted when it excludes 0 against it,
    otherwise same / opposite direction, not significant (an effect of exactly 0 counts as opposite)."""
    if not all(math.isfinite(x) for x in (effect, lo, hi)):
        return "not measurable"
    lo_d, hi_d = sorted([direction * lo, direction * hi])
    e = direction * effect
    if lo_d > 0:
        return "reproduced"
    if hi_d < 0:
        return "contradicted"
    return "same direction, not significant" if e > 0 else "opposite direction, not significant"

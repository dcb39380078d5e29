"""The claim verdicts' error rates (issue 16, acceptance 2): simulated conditions whose true difference is
zero must come out "not significant" far more often than "reproduced" (at most the stated 5% of the
two-sided 95% interval, 2.5% on the paper's side, plus binomial slack), and real differences must come out
"reproduced". The simulations go through the same functions the report's claim checks use
(`Cells`, `difference`, `trend` in repro.report.claims; `bootstrap_cells`, `interval`, `verdict` in
repro.analysis.stats). Pure numpy; a few seconds.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from repro.analysis.stats import VERDICTS, Items, bootstrap_cells, interval, verdict
from repro.report.claims import Cells, combine, difference, trend

N_SIM = 200
N_BOOT = 400
NOT_SIG = ("same direction, not significant", "opposite direction, not significant")


def _arm(rng: np.random.Generator, p: np.ndarray, ids: list[str], k: int = 1, seed_sd: float = 0.0,
         shift: float = 0.0) -> list[Items]:
    """k seeds of one model: per-item correctness drawn from the item's difficulty p (+ a seed effect)."""
    reps = []
    for _ in range(k):
        q = np.clip(p + shift + rng.normal(0.0, seed_sd), 0, 1)
        reps.append(Items.of(ids, (rng.random(len(ids)) < q).astype(float)))
    return reps


def _greater(rng: np.random.Generator, sim: int, n: int = 100, k: int = 1, seed_sd: float = 0.0,
             shift: float = 0.0, paired: bool = True) -> str:
    p = rng.beta(2, 2, size=n)
    ids_a = [f"q{i}" for i in range(n)]
    ids_b = ids_a if paired else [f"other{i}" for i in range(n)]
    if not paired:  # another eval subsample of the same population
        p_b = rng.beta(2, 2, size=n)
    cells = Cells(None, "accuracy", None, n_boot=N_BOOT, seed=sim)
    hi = cells.add_items(_arm(rng, p, ids_a, k, seed_sd, shift))
    lo = cells.add_items(_arm(rng, p if paired else p_b, ids_b, k, seed_sd))
    return difference(cells, [hi], [lo]).verdict


def _rates(verdicts: list[str]) -> dict[str, float]:
    c = Counter(verdicts)
    return {v: c[v] / len(verdicts) for v in VERDICTS}


# 2.5% expected on the paper's side; allow sampling error of N_SIM runs (~3 sd of a 2.5% rate at 200 runs)
LIMIT = 0.025 + 3 * math.sqrt(0.025 * 0.975 / N_SIM)


@pytest.mark.parametrize("case", [
    {"paired": True},                       # same model, two seeds of sampling on the same items
    {"paired": False},                      # same model, different eval subsamples
    {"k": 3, "seed_sd": 0.05},              # 3 seeds per arm, seeds differ by a random effect (two-level)
])
def test_zero_difference_is_not_significant(case: dict[str, object]) -> None:
    rng = np.random.default_rng(7)
    rates = _rates([_greater(rng, sim, **case) for sim in range(N_SIM)])  # type: ignore[arg-type]
    assert rates["reproduced"] <= LIMIT, rates
    assert rates["contradicted"] <= LIMIT, rates
    assert rates[NOT_SIG[0]] + rates[NOT_SIG[1]] >= 0.9, rates
    assert rates[NOT_SIG[0]] + rates[NOT_SIG[1]] > 10 * max(rates["reproduced"], 1 / N_SIM), rates


@pytest.mark.parametrize("case", [{"paired": True}, {"paired": False}, {"k": 3, "seed_sd": 0.02}])
def test_real_difference_is_reproduced(case: dict[str, object]) -> None:
    rng = np.random.default_rng(11)
    up = _rates([_greater(rng, sim, shift=0.25, **case) for sim in range(60)])  # type: ignore[arg-type]
    down = _rates([_greater(rng, sim, shift=-0.25, **case) for sim in range(60)])  # type: ignore[arg-type]
    assert up["reproduced"] >= 0.9, up
    assert down["contradicted"] >= 0.9, down


def test_trend_null_and_real() -> None:
    """A flat metric over three axis values is rarely a significant slope; a real slope is found."""
    rng = np.random.default_rng(3)
    n, xs = 100, [0.0, 0.2, 0.4]
    ids = [f"q{i}" for i in range(n)]
    got: dict[float, list[str]] = {0.0: [], -0.6: []}
    for slope in got:
        for sim in range(N_SIM if slope == 0 else 40):
            p = rng.beta(2, 2, size=n)
            cells = Cells(None, "accuracy", None, n_boot=N_BOOT, seed=sim)
            by_x = {x: [cells.add_items(_arm(rng, p, ids, shift=slope * x))] for x in xs}
            got[slope].append(trend(cells, by_x, direction=-1, axis="xi")[0].verdict)
    null, real = _rates(got[0.0]), _rates(got[-0.6])
    assert null["reproduced"] <= LIMIT and null[NOT_SIG[0]] + null[NOT_SIG[1]] >= 0.9, null
    assert real["reproduced"] >= 0.9, real


def test_verdict_rules() -> None:
    assert verdict(0.1, 0.02, 0.2) == "reproduced"
    assert verdict(0.1, -0.02, 0.2) == "same direction, not significant"
    assert verdict(-0.1, -0.2, 0.02) == "opposite direction, not significant"
    assert verdict(-0.1, -0.2, -0.01) == "contradicted"
    assert verdict(-0.1, -0.2, -0.01, direction=-1) == "reproduced"
    assert verdict(float("nan"), 0, 1) == "not measurable"


def test_seed_level_interval_is_wider_than_item_level() -> None:
    """With k seeds the interval carries seed spread and the t(df) correction; one scalar per seed works."""
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(200)]
    p = rng.beta(2, 2, size=200)
    one = bootstrap_cells([_arm(rng, p, ids, 1), _arm(rng, p, ids, 1)], n_boot=1000)
    three = bootstrap_cells([_arm(rng, p, ids, 3, 0.08), _arm(rng, p, ids, 3, 0.08)], n_boot=1000)
    w1 = np.subtract(*interval(0.0, one.draws[:, 0] - one.draws[:, 1], one.df)[::-1])
    w3 = np.subtract(*interval(0.0, three.draws[:, 0] - three.draws[:, 1], three.df)[::-1])
    assert math.isinf(one.df) and 1 <= three.df <= 4 and w3 > w1
    scal = bootstrap_cells([[Items.scalar(v) for v in (3.0, 3.0, 2.0)], [Items.scalar(v) for v in (5.0, 5.0, 5.0)]])
    assert scal.point.tolist() == [pytest.approx(8 / 3), 5.0] and not scal.item_level


def test_combine_parts() -> None:
    from repro.report.claims import Effect

    ok = Effect("dip", 0.1, 0.05, 0.2, 1)
    weak = Effect("recovery", 0.1, -0.05, 0.2, 1)
    bad = Effect("recovery", -0.1, -0.2, -0.05, 1)
    assert combine([ok, ok]) == "reproduced"
    assert combine([ok, weak]) == "same direction, not significant"
    assert combine([ok, bad]) == "contradicted"
    assert combine([]) == "not measurable"

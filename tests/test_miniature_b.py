"""experiments/mini_b.yaml (study B's CPU miniature) validates and plans as designed; no training.

Checks the grid (data x size x training length), that the bases are pretrained at three sizes on a
mixture with the in-domain task, a probe and safety refusals, that training lengths share one run per
(arm, size), that every checkpoint (including step 0, the base) is evaluated on every benchmark, and that
each claim's selectors name real axes and values.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from repro.plan import build_plan
from repro.report.claims import KINDS
from repro.spec import load

from conftest import REPO

SPEC = str(REPO / "experiments" / "mini_b.yaml")
SIZES = {"0.15M", "0.48M", "1.1M"}
LENGTHS = {"10", "100", "300"}
RUN_STEPS = 300
CKPTS = [0, 10, 100, 300]


@pytest.fixture(scope="module")
def spec_and_conds() -> tuple[Any, list[Any]]:
    return load(SPEC)


@pytest.fixture(scope="module")
def plan() -> Any:
    return build_plan([SPEC])


def test_axes_and_conditions(spec_and_conds: tuple[Any, list[Any]]) -> None:
    spec, conds = spec_and_conds
    assert spec.name == "mini_b"
    assert set(spec.axes) == {"data", "size", "length"}
    assert set(spec.axes["size"]) == SIZES and set(spec.axes["length"]) == LENGTHS
    assert set(spec.axes["data"]) == {"cot", "nocot", "lowq"}
    by_data = Counter(c.labels["data"] for c in conds)
    # CoT at every size and length; no-CoT and low-quality on the largest base at the full length only
    assert by_data == {"cot": len(SIZES) * len(LENGTHS), "nocot": 1, "lowq": 1}
    for c in conds:
        if c.labels["data"] != "cot":
            assert (c.labels["size"], c.labels["length"]) == ("1.1M", "300")
        assert c.condition.train.schedule == "constant_with_warmup"
        assert c.condition.model.source == "pretrain"


def test_data_arms(spec_and_conds: tuple[Any, list[Any]]) -> None:
    _, conds = spec_and_conds
    arm = {c.labels["data"]: c.condition for c in conds}
    assert arm["cot"].data.teacher.name == "convergent" and [f.name for f in arm["cot"].filters] == ["verified"]
    assert arm["nocot"].data.teacher.name == "nocot"
    assert arm["lowq"].data.teacher.name == "lowquality" and arm["lowq"].filters == []
    assert arm["lowq"].data.teacher.args["wrong_rate"] == pytest.approx(0.2)
    assert len({c.condition.data.task for c in conds}) == 1  # one in-domain task for every arm


def test_three_pretrained_sizes(plan: Any) -> None:
    pre = plan.by_stage("pretrain")
    assert len(pre) >= 3
    assert len({str(j.config["arch"]) for j in pre}) == len(pre)
    for j in pre:
        mix = {m["task"] for m in j.config["pretrain"]["mixture"]}
        assert "modarith" in mix and "safety" in mix
        assert mix - {"modarith", "safety"}, "the mixture needs an OOD probe task of another kind"


def test_train_runs_share_lengths(plan: Any) -> None:
    train = plan.by_stage("train")
    # one run per (arm, size): 3 CoT sizes + no-CoT + low-quality
    assert len(train) == len(SIZES) + 2
    for j in train:
        assert j.config["train"]["steps"] == RUN_STEPS
        assert j.config["train"]["checkpoints"] == CKPTS
        assert "base" in j.inputs  # starts from a pretrain job
    shared = sorted(len(j.conditions) for j in train)
    assert shared == [1, 1] + [len(LENGTHS)] * len(SIZES)  # every CoT length is a checkpoint of one run


def test_every_checkpoint_evaluated(plan: Any) -> None:
    rows = plan.jobs[plan.specs[0].report_id].config["conditions"]
    benches = {"modarith-id", "modarith-ood", "ifprobe", "safety"}
    for row in rows:
        seen = {(e["benchmark"], e["step"]) for e in row["evals"]}
        assert {b for b, _ in seen} == benches
        if row["labels"]["data"] == "cot":
            length = int(row["labels"]["length"])
            want = [s for s in CKPTS if s <= length]
            assert want[0] == 0
            assert seen == {(b, s) for b in benches for s in want}
        else:
            assert seen == {(b, RUN_STEPS) for b in benches}
    evals = plan.by_stage("eval")  # one job per checkpoint, all four benchmarks in it
    assert all({b["name"] for b in j.config["benchmarks"]} == benches for j in evals)
    n_cot = len(SIZES) * len(CKPTS)
    assert len(evals) == n_cot + 2  # shorter lengths reuse the long run's evals
    assert sum(j.config["step"] == 0 for j in evals) == len(SIZES)


def test_safety_benchmark(plan: Any) -> None:
    safety = [b for j in plan.by_stage("eval") for b in j.config["benchmarks"] if b["role"] == "safety"]
    assert safety
    for b in safety:
        assert b["task"] == "safety" and b["task_args"]["harmful_share"] == 1.0


def _selectors(check: dict[str, Any]) -> list[dict[str, Any]]:
    return [check[k] for k in ("where", "higher", "lower", "a", "b", "shallower", "deeper") if k in check]


def test_claims_select_real_conditions(spec_and_conds: tuple[Any, list[Any]]) -> None:
    spec, conds = spec_and_conds
    ids = {c.id for c in spec.claims}
    assert {"B-F3", "B-T2", "B-F5", "B-F6"} <= ids
    for claim in spec.claims:
        check = claim.check.model_dump()
        assert check.get("kind", "greater") in KINDS, claim.id
        if "axis" in check:
            assert check["axis"] in spec.axes, claim.id
        for sel in _selectors(check):
            picked = [c for c in conds if all(
                c.labels.get(k) in ([str(x) for x in v] if isinstance(v, list) else [str(v)]) for k, v in sel.items())]
            assert picked, f"{claim.id}: selector {sel} matches no condition"

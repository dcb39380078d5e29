"""Claims in a spec (typed checks, validated by `repro validate`) and replicate seeds in the planner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from repro.cli import main
from repro.plan import build_plan

from conftest import REPO

BASE = textwrap.dedent("""\
    name: cl
    base:
      data: {task: countdown, n: 10, teacher: {name: convergent}}
      model: {source: scratch, arch: xs}
      train: {steps: 10}
      eval: {benchmarks: [{name: b, task: countdown, split: ood, n: 5, role: ood}]}
    axes:
      teacher:
        conv: {data.teacher.name: convergent}
        div: {data.teacher.name: divergent}
    """)


def claim(check: str, extra: str = "") -> str:
    return BASE + f"claims:\n  - {{id: X, paper: p, claim: c{extra}, check: {check}}}\n"


BAD = {
    "misspelled_key": (claim("{kind: greater, hgher: {teacher: conv}, lower: {teacher: div}}"),
                       "claims.0.check.hgher", "unknown key of check kind 'greater'; allowed keys: metric, role, step, kind, higher, lower"),
    "misspelled_key_default_kind": (claim("{metric: accuracy, higher: {teacher: conv}, lowr: {teacher: div}}"),
                                    "claims.0.check.lowr", "unknown key"),
    "nested_key": (claim("{kind: gap_greater, a: {higher: {teacher: conv}, lowe: {teacher: div}}, b: {}}"),
                   "claims.0.check.a.lowe", "unknown key; allowed keys: higher, lower"),
    "unknown_kind": (claim("{kind: bigger}"), "claims.0.check.kind", "unknown check kind 'bigger'; allowed kinds: decreasing, dip_recovery"),
    "wrong_type": (claim("{kind: dip_recovery, early_max_step: soon}"), "claims.0.check", "early_max_step"),
    "missing_axis": (claim("{kind: increasing, where: {teacher: conv}}"), "claims.0.check", "axis"),
    "unknown_metric": (claim("{metric: acuracy, higher: {teacher: conv}, lower: {teacher: div}}"),
                       "claims.0.check.metric", "unknown metric 'acuracy'; expected one of accuracy"),
    "selector_unknown_axis": (claim("{higher: {teachr: conv}, lower: {teacher: div}}"),
                              "claims.0.check.higher.teachr", "no axis 'teachr'; axes: condition, teacher"),
    "selector_unknown_value": (claim("{higher: {teacher: conv}, lower: {teacher: dvi}}"),
                               "claims.0.check.lower.teacher", "no condition has teacher=dvi; values: conv, div"),
    "claim_unknown_field": (claim("{higher: {teacher: conv}, lower: {teacher: div}}", ", explanation: x"),
                            "claims.0.explanation", "unknown key"),
    "replicates_bad_axis": (BASE + "replicates: {seeds: 2, only: [{teachr: conv}]}\n", "replicates.only.0.teachr", "unknown axis"),
    "replicates_zero": (BASE + "replicates: {seeds: 0}\n", "replicates.seeds", "greater than or equal to 1"),
    "replicates_per_bad_axis": (BASE + "replicates: {seeds: 2, per: [{where: {teachr: conv}, seeds: 3}]}\n",
                                "replicates.per.0.where.teachr", "unknown axis"),
    "replicates_per_key": (BASE + "replicates: {seeds: 2, per: [{where: {teacher: conv}, seeds: 3, sedes: 4}]}\n",
                           "replicates.per.0.sedes", "unknown key"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_claim_exits_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, path, needle = BAD[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if path in ln)
    assert line.startswith(f"{f}: {path}") and needle in line, err
    assert "Traceback" not in err


def test_shipped_specs_validate(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("mini_a", "mini_b", "mini_c", "smoke"):
        assert main(["validate", str(REPO / "experiments" / f"{name}.yaml")]) == 0, capsys.readouterr().err


def test_replicates_share_data_and_keep_seed0(tmp_path: Path) -> None:
    """k seeds: seed 0 keeps the condition's job ids, data jobs are shared, raising k adds only new jobs."""
    one, two, three = (tmp_path / f"k{k}.yaml" for k in (1, 2, 3))
    one.write_text(BASE)
    two.write_text(BASE + "replicates: {seeds: 2}\n")
    three.write_text(BASE + "replicates: {seeds: 3, only: [{teacher: conv}]}\n")
    p1, p2, p3 = (build_plan([str(f)]) for f in (one, two, three))

    def by_stage(p: object) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for j in p.jobs.values():  # type: ignore[attr-defined]
            out.setdefault(j.stage, set()).add(j.id)
        return out

    s1, s2, s3 = by_stage(p1), by_stage(p2), by_stage(p3)
    assert s2["generate"] == s1["generate"] and s2["filter"] == s1["filter"]  # the seed does not touch data
    assert s1["train"] < s2["train"] and len(s2["train"]) == 4  # seed 0 reuses the k=1 runs
    assert s1["eval"] < s2["eval"]
    assert len(s3["train"]) == 4 and s1["train"] < s3["train"]  # conv x 3 seeds, div once
    names = [nc.name for nc in p3.specs[0].conditions]
    assert names == ["conv-s0", "conv-s1", "conv-s2", "div"]
    labels = {nc.name: nc.labels for nc in p2.specs[0].conditions}
    assert labels["div-s1"] == {"teacher": "div", "seed": "s1"}
    conds = {nc.name: nc.condition for nc in p2.specs[0].conditions}
    assert (conds["conv-s1"].train.seed, conds["conv-s1"].model.init_seed) == (1, 1)
    assert conds["conv-s1"].data == conds["conv-s0"].data


def test_replicates_per_rule_seed_counts(tmp_path: Path) -> None:
    """`replicates.per` gives matching conditions their own k (first matching rule), the rest keep `seeds`;
    seed 0 still keeps the condition's job ids."""
    f = tmp_path / "per.yaml"
    f.write_text(BASE + "replicates: {seeds: 2, per: [{where: {teacher: conv}, seeds: 3}, {where: {teacher: [conv, div]}, seeds: 5}]}\n")
    names = [nc.name for nc in build_plan([str(f)]).specs[0].conditions]
    assert names == ["conv-s0", "conv-s1", "conv-s2"] + [f"div-s{i}" for i in range(5)]
    f.write_text(BASE + "replicates: {seeds: 2, per: [{where: {teacher: div}, seeds: 1}]}\n")
    names = [nc.name for nc in build_plan([str(f)]).specs[0].conditions]
    assert names == ["conv-s0", "conv-s1", "div"]

"""DVC as its users expect (slow, real DVC on a two-condition shrunk smoke spec): after one condition's
`train.lr` changes, `dvc params diff` names exactly that setting; `dvc plots show` draws one line per
condition on each benchmark (read from the produced HTML's data); the committed reports/metrics.json lets
`dvc metrics diff` between two commits print the change; the HTML pages are DVC-cached outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from repro import dvcgen
from repro.plan import build_plan

from test_dvc import REPO, _git, _run

pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")

SMALL = [
    "base.data.n=16",
    "base.train.steps=4",
    "base.train.checkpoints=[2]",
    "base.train.batch_size=4",
    "base.eval.steps=null",
    "base.eval.benchmarks=[{name: countdown-id, task: countdown, split: id, n: 4, role: id},"
    " {name: countdown-ood, task: countdown, split: ood, n: 4, role: ood}]",
    "base.eval.sampling.max_new_tokens=8",
]


def _two_conditions(spec: Path, hi_lr: float) -> None:
    data = yaml.safe_load((REPO / "experiments/smoke.yaml").read_text())
    data["name"] = "smoke2"
    data["axes"] = {"lr": {"hi": {"train.lr": hi_lr}, "lo": {"train.lr": 1.5e-3}}}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def test_params_file_has_every_condition() -> None:
    plan = build_plan([str(REPO / "experiments/mini_b.yaml")])
    (text,) = dvcgen.render_params(plan).values()
    data = yaml.safe_load(text)
    assert set(data) == {dvcgen.param_key(c.name) for c in plan.specs[0].conditions}
    assert all("." not in k for k in data)
    assert {"data", "filters", "model", "train", "eval", "analyses"} == set(next(iter(data.values())))


def test_plots_one_file_per_condition_and_benchmark() -> None:
    from repro.publish import plot_series

    plan = build_plan([str(REPO / "experiments/mini_c.yaml")])
    series = plot_series(plan)["mini_c"]
    doc = yaml.safe_load(dvcgen.render(plan, ["experiments/mini_c.yaml"], [], default=False))
    plots = {next(iter(p)): next(iter(p.values())) for p in doc["plots"]}
    assert set(plots) == {f"mini_c: {b}" for b in series}
    for bench, lines in series.items():
        assert list(plots[f"mini_c: {bench}"]["y"]) == [f for _, f in lines]
        assert len({f for _, f in lines}) == len(lines)
    assert {c for c, _ in series["twohop-id"]} == {c.name for c in plan.specs[0].conditions}
    pub = doc["stages"][dvcgen.PUBLISH]
    assert "reports/index.html" in pub["outs"]  # cached: `dvc pull` gets the pages


@pytest.mark.slow
def test_params_diff_plots_and_metrics_diff(workdir: Path) -> None:
    wd = workdir
    spec = wd / "experiments" / "smoke2.yaml"
    _two_conditions(spec, 3.0e-3)
    for f in (".gitignore", ".dvcignore"):
        (wd / f).write_text((REPO / f).read_text())
    (wd / "params.yaml").write_text(yaml.safe_dump({"specs": ["experiments/smoke2.yaml"], "set": SMALL}))
    _git(wd, "init", "-q")
    _run(wd, "dvc", "init", "-q")
    (wd / ".dvc" / "config").write_text((REPO / ".dvc" / "config").read_text())
    dvcgen.write_dvc(wd / "dvc.yaml")
    _run(wd, "dvc", "repro", timeout=1500)
    _git(wd, "add", "-A")
    _git(wd, "commit", "-qm", "first results")
    tracked = _run(wd, "git", "ls-files", "reports").stdout.split()
    assert "reports/metrics.json" in tracked and "reports/plots/smoke2/countdown-id/hi.csv" in tracked
    assert not any(f.endswith(".html") for f in tracked)  # the pages are in DVC's cache, not git

    # one condition's lr changes: `dvc params diff` names exactly it
    _two_conditions(spec, 1.0e-2)
    dvcgen.write_dvc(wd / "dvc.yaml")
    diff = json.loads(_run(wd, "dvc", "params", "diff", "--json").stdout)
    changed = {(f, k): (v["old"], v["new"]) for f, d in diff.items() for k, v in d.items()}
    assert changed == {("params/smoke2.yaml", "hi.train.lr"): (3.0e-3, 1.0e-2)}, diff
    assert "hi.train.lr" in _run(wd, "dvc", "params", "diff").stdout

    _run(wd, "dvc", "repro", timeout=1500)
    _git(wd, "add", "-A")
    _git(wd, "commit", "-qm", "higher lr")

    # dvc metrics diff between the two commits prints the change (the training loss of `hi` at least)
    md = json.loads(_run(wd, "dvc", "metrics", "diff", "HEAD~1", "HEAD", "--json").stdout)
    m = md["reports/metrics.json"]
    assert "smoke2.final_train_loss.hi" in m and "smoke2.final_train_loss.lo" not in m, m
    text = _run(wd, "dvc", "metrics", "diff", "HEAD~1", "HEAD").stdout
    assert "final_train_loss.hi" in text

    # dvc exp show: a column per condition setting and per metric, a row per commit
    header = _run(wd, "dvc", "exp", "show", "--csv", "-A").stdout.splitlines()[0].split(",")
    assert {"hi.train.lr", "lo.train.lr", "smoke2.final_train_loss.hi", "smoke2.n_conditions"} <= set(header)

    # dvc plots show: one plot per benchmark, one line (data file) per condition in each
    _run(wd, "dvc", "plots", "show", "-o", "plots_out")
    html = (wd / "plots_out" / "index.html").read_text()
    specs = [json.loads(m) for m in re.findall(r"^\s*var spec = (.*);\s*$", html, re.M)]
    assert len(specs) == 2, html[:2000]
    for s in specs:
        values = s["data"]["values"]
        assert {v["filename"] for v in values} == {"hi.csv", "lo.csv"}
        assert {v["step"] for v in values} >= {"2", "4"}

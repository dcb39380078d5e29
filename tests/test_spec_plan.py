"""The spec language and the planner: validation errors, axes, sharing, identity rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from repro.cli import main
from repro.identity import canonical_json
from repro.plan import build_plan

from conftest import FIXTURES, REPO

GRID = str(FIXTURES / "grid.yaml")


def plan_ids(plan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for j in plan.jobs.values():
        out.setdefault(j.stage, set()).add(j.id)
    return out


# ------------------------------------------------------------------------------------------ planning


def test_grid_counts_length_independent() -> None:
    plan = build_plan([GRID])
    n = Counter(j.stage for j in plan.jobs.values())
    assert n["generate"] == 2
    assert n["filter"] == 6
    assert n["train"] == 12
    assert len(plan.specs[0].conditions) == 48
    # one eval job per checkpoint of each run (50, 100, 200, 400), both benchmarks in it
    assert n["eval"] == 12 * 4
    assert n["report"] == 1
    assert all(j.config["train"]["steps"] == 400 for j in plan.by_stage("train"))
    assert any("checkpoints of one run" in note for note in plan.specs[0].notes)


def test_grid_counts_cosine_separate_runs() -> None:
    plan = build_plan([GRID], ["base.train.schedule=cosine"])
    n = Counter(j.stage for j in plan.jobs.values())
    assert (n["generate"], n["filter"], n["train"]) == (2, 6, 48)
    # run of length s has checkpoints {50,100,200} <= s plus s: 1 + 2 + 3 + 4 = 10 per (teacher, quality, size)
    assert n["eval"] == 12 * 10
    assert any("decays over the whole run" in note for note in plan.specs[0].notes)


def test_no_duplicate_configs_per_stage() -> None:
    for sets in ([], ["base.train.schedule=cosine"]):
        plan = build_plan([GRID], sets)
        seen = Counter((j.stage, canonical_json(j.config), canonical_json(j.inputs)) for j in plan.jobs.values())
        assert max(seen.values()) == 1
        # the same filter chain on each teacher's traces is different work: one config, two jobs (inputs differ)
        seen_cfg = Counter((j.stage, canonical_json(j.config)) for j in plan.jobs.values() if j.stage in ("generate", "filter"))
        assert sorted((stage, n) for (stage, _), n in seen_cfg.items()) == [("filter", 2)] * 3 + [("generate", 1)] * 2


def test_resources_change_no_id() -> None:
    a = build_plan([GRID])
    b = build_plan([GRID], ["base.resources.train.gpus=4", "base.resources.train.partition=gpu",
                            "base.resources.eval.mem_mb=64000", "base.resources.generate.cpus=8"])
    assert set(a.jobs) == set(b.jobs)
    assert any(j.resources["gpus"] == 4 for j in b.by_stage("train"))


def test_lr_changes_only_downstream_of_train() -> None:
    a, b = plan_ids(build_plan([GRID])), plan_ids(build_plan([GRID], ["base.train.lr=0.002"]))
    for stage in ("generate", "filter"):
        assert a[stage] == b[stage]
    for stage in ("train", "eval", "report"):
        assert a[stage].isdisjoint(b[stage])


def test_ids_stable_across_hash_seeds() -> None:
    outs = []
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-m", "repro", "plan", GRID, "--json"], capture_output=True, text=True, env=env, cwd=REPO)
        assert r.returncode == 0, r.stderr
        outs.append(sorted(j["id"] for j in json.loads(r.stdout)["jobs"]))
    assert outs[0] == outs[1] == outs[2]


def test_two_specs_share_work(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(textwrap.dedent(f"""\
        name: other
        include: [{GRID}]
        axes: {{}}
        """))
    plan = build_plan([GRID, str(other)])
    gens = plan.by_stage("generate")
    assert len(gens) == 2  # `other` (convergent, verified, xs, 400 steps) reuses the grid's jobs
    shared = [j for j in plan.jobs.values() if any(c.startswith("other/") for c in j.conditions) and any(c.startswith("grid/") for c in j.conditions)]
    assert {j.stage for j in shared} >= {"generate", "filter", "train", "eval"}


def test_plan_json_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(REPO / "experiments/smoke.yaml"), "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert {j["stage"] for j in jobs} >= {"generate", "filter", "train", "eval", "report"}
    for j in jobs:
        assert set(j) >= {"id", "stage", "name", "deps", "state", "outdir", "config", "conditions"}
        assert j["outdir"].endswith(f"{j['name']}-{j['id']}")
        assert j["outdir"].startswith(f"results/{j['stage']}/")


def test_plan_table_and_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", GRID, "--summary", "--set", "base.throughput={train: 5000, eval: 20000}"]) == 0
    out = capsys.readouterr().out
    assert "48 conditions" in out and "train_tokens" in out and "gpu_hours" in out


def test_zip_exclude_only_extras(tmp_path: Path) -> None:
    f = tmp_path / "z.yaml"
    f.write_text(textwrap.dedent(f"""\
        name: z
        include: [{GRID}]
        zip: [[data_source, model_size]]
        exclude: [{{data_quality: nocot, training_length: [s50, s100]}}]
        only: [{{data_source: convergent}}]
        conditions:
          extra: {{train.lr: 0.01}}
        """))
    from repro.spec import load

    _, conds = load(f)
    names = [c.name for c in conds]
    # zip: (convergent, xs) only after `only`; 3 qualities x 4 lengths minus 2 excluded, plus the extra
    assert len(names) == 3 * 4 - 2 + 1
    assert all("-xs-" in n for n in names if n != "extra")
    assert "extra" in names


# ------------------------------------------------------------------------------------------ errors

BASE = """\
name: bad
base:
  data: {task: countdown, n: 10, teacher: {name: convergent}}
  train: {steps: 10}
"""

MALFORMED = {
    "unknown_top_key": ("nme: x\n" + BASE, "nme"),
    "unknown_data_key": (BASE.replace("n: 10,", "nn: 10,"), "base.data.nn"),
    "unknown_train_key": (BASE.replace("steps: 10", "steps: 10, schedulex: cosine"), "base.train.schedulex"),
    "unknown_sampling_key": (BASE + "  eval: {sampling: {temp: 1}}\n", "base.eval.sampling.temp"),
    "unknown_benchmark_key": (BASE + "  eval: {benchmarks: [{name: a, task: countdown, splitt: id}]}\n", "base.eval.benchmarks.0.splitt"),
    "steps_wrong_type": (BASE.replace("steps: 10", "steps: many"), "base.train.steps"),
    "lr_wrong_type": (BASE.replace("steps: 10", "steps: 10, lr: [1]"), "base.train.lr"),
    "steps_negative": (BASE.replace("steps: 10", "steps: -1"), "base.train.steps"),
    "schedule_enum": (BASE.replace("steps: 10", "steps: 10, schedule: exponential"), "base.train.schedule"),
    "model_source_enum": (BASE + "  model: {source: cloud}\n", "base.model.source"),
    "hub_without_id": (BASE + "  model: {source: hub}\n", "base.model"),
    "benchmark_missing_name": (BASE + "  eval: {benchmarks: [{task: countdown}]}\n", "base.eval.benchmarks.0.name"),
    "axis_bad_path": (BASE + "axes: {lr: {a: {train.lrr: 1}}}\n", "axes.lr.a.train.lrr"),
    "axis_empty_value": (BASE + "axes: {lr: {a: {}, b: {train.lr: 0.1}}}\n", "axes.lr.a"),
    "axis_no_values": (BASE + "axes: {lr: {}}\n", "axes"),
    "zip_unknown_axis": (BASE + "axes: {lr: {a: {train.lr: 0.1}}}\nzip: [[lr, nope]]\n", "zip.0"),
    "zip_sizes": (BASE + "axes: {lr: {a: {train.lr: 0.1}, b: {train.lr: 0.2}}, s: {x: {train.seed: 1}}}\nzip: [[lr, s]]\n", "zip.0"),
    "exclude_unknown_axis": (BASE + "axes: {lr: {a: {train.lr: 0.1}}}\nexclude: [{nope: a}]\n", "exclude.0.nope"),
    "exclude_unknown_value": (BASE + "axes: {lr: {a: {train.lr: 0.1}}}\nexclude: [{lr: z}]\n", "exclude.0.lr"),
    "duplicate_condition": (BASE + "axes: {lr: {a: {train.lr: 0.1}}}\nconditions: {a: {train.lr: 0.3}}\n", "conditions.a"),
    "identical_conditions": (BASE + "axes: {lr: {a: {train.lr: 0.1}, b: {train.lr: 0.1}}}\n", "conditions.b"),
    "conflicting_axes": (BASE + "axes: {x: {a: {train.lr: 0.1}}, y: {b: {train.lr: 0.2}}}\n", "axes.y.b.train.lr"),
    "extra_condition_bad_path": (BASE + "conditions: {c: {train.nope: 1}}\n", "conditions.c.train.nope"),
    "yaml_syntax": (BASE + "axes: {lr: [\n", "invalid YAML"),
    "top_level_list": ("- a\n- b\n", "expected a mapping"),
    "unknown_task": (BASE.replace("task: countdown", "task: chess"), "data.task"),
    "unknown_teacher": (BASE.replace("name: convergent", "name: oracle"), "data.teacher"),
    "unknown_filter": (BASE + "  filters: [{name: magic}]\n", "filters.0"),
    "bad_task_arg": (BASE.replace("task: countdown,", "task: countdown, task_args: {bogus: 1},"), "data.task"),
    "bad_teacher_arg": (BASE.replace("name: convergent}", "name: convergent, args: {bogus: 1}}"), "data.teacher"),
    "bad_spec_name": (BASE.replace("name: bad", "name: My Spec"), "name"),
    "bad_filter_arg": (BASE + "  filters: [{name: branching, args: {keep: many}}]\n", "filters.0"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_spec_fails_cleanly(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, needle = MALFORMED[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text)
    code = main(["validate", str(f)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(f) in err, err
    assert needle in err, err
    assert "Traceback" not in err


def test_include_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text("include: [b.yaml]\nname: a\n")
    (tmp_path / "b.yaml").write_text("include: [a.yaml]\n")
    assert main(["validate", str(tmp_path / "a.yaml")]) == 2
    err = capsys.readouterr().err
    assert "include cycle" in err and "a.yaml" in err


def test_missing_file_and_include(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    (tmp_path / "a.yaml").write_text("include: [gone.yaml]\nname: a\n")
    assert main(["validate", str(tmp_path / "a.yaml")]) == 2
    err = capsys.readouterr().err
    assert "gone.yaml" in err and "file not found" in err


def test_set_unknown_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", GRID, "--set", "base.train.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "base.train.lrr" in err and "--set" in err


def test_validate_subprocess_no_traceback(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(MALFORMED["unknown_data_key"][0])
    r = subprocess.run([sys.executable, "-m", "repro", "validate", str(f)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "base.data.nn" in r.stderr
    r = subprocess.run([sys.executable, "-m", "repro", "validate", GRID], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr

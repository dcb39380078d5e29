"""Every stage on a tiny config, through `repro run`, with assertions on what each one wrote.

Two tiny specs cover all stages: `every` (modarith: generate -> filter, a pretrained base -> train -> eval
-> analyze with token_loss and steps -> report) and `lens` (twohop with CoT traces: train from scratch ->
eval -> analyze with logit_lens). One module fixture runs all their jobs, in dependency order, with the same
command Snakemake and DVC call (`repro run ID`, in-process); each test then reads one stage's output and
checks it against what the stage was given (the teacher's problems, the task's own grader, the pretrained
weights, ...). Further tests start students from a model folder (`source: path`) and from a hub-style
model id that names a local folder (`source: hub`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from repro.cli import main
from repro.plan import Job, Plan, build_plan
from repro.records import STEP_TYPES, Problem, Trace, read_jsonl
from repro.tasks import get_task

from conftest import FIXTURES

EVERY = (FIXTURES / "tiny_every.yaml").read_text()
LENS = (FIXTURES / "tiny_lens.yaml").read_text()


def run_jobs(plan: Plan, specs: list[str], jobs: list[Job]) -> None:
    """`repro run ID` for each job (and the jobs it needs), in dependency order."""
    done: set[str] = set()

    def visit(job: Job) -> None:
        if job.id in done:
            return
        for d in job.deps:
            visit(plan.jobs[d])
        assert main(["run", job.id, "--specs", ",".join(specs), "--threads", "1"]) == 0, job.stage
        done.add(job.id)

    for job in jobs:
        visit(job)


def stage_jobs(plan: Plan, spec: str, stage: str) -> list[Job]:
    return [j for j in plan.jobs.values() if j.stage == stage and any(c.startswith(f"{spec}/") or c == spec for c in j.conditions)]


def the(plan: Plan, spec: str, stage: str, name: str = "") -> Job:
    (job,) = [j for j in stage_jobs(plan, spec, stage) if name in j.name]
    return job


def manifest(job: Job) -> dict[str, Any]:
    return json.loads((job.outdir / "manifest.json").read_text())


def state_dict(folder: Path) -> dict[str, Any]:
    from repro.models import load_pretrained

    model, _ = load_pretrained(folder)
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("stages")
    specs = []
    for name, text in (("every", EVERY), ("lens", LENS)):
        (root / f"{name}.yaml").write_text(text)
        specs.append(str(root / f"{name}.yaml"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("REPRO_RESULTS", str(root / "results"))
        mp.setenv("SOURCE_DATE_EPOCH", "0")
        plan = build_plan(specs)
        run_jobs(plan, specs, list(plan.jobs.values()))
        yield {"root": root, "plan": plan, "specs": specs}


def test_every_job_finished_with_its_manifest(world: dict[str, Any]) -> None:
    plan = world["plan"]
    stages = {j.stage for j in plan.jobs.values()}
    assert stages == {"generate", "filter", "pretrain", "train", "eval", "analyze", "report"}
    for job in plan.jobs.values():
        m = manifest(job)
        assert (m["id"], m["stage"], m["config"]) == (job.id, job.stage, job.config)
        assert {r: v["id"] for r, v in m["inputs"].items()} == job.inputs
    assert {j.config["analysis"]["name"] for j in plan.jobs.values() if j.stage == "analyze"} == {
        "token_loss", "steps", "logit_lens"}


def test_generate_writes_the_tasks_problems_solved_correctly(world: dict[str, Any]) -> None:
    plan = world["plan"]
    gen = the(plan, "every", "generate")
    cfg = gen.config
    task = get_task(cfg["task"])
    want = task.problems(task.Args(**cfg["task_args"]), "train", cfg["n"], cfg["seed"])
    problems = [Problem(**d) for d in read_jsonl(gen.outdir / "problems.jsonl")]
    assert problems == want and len(problems) == 24
    traces = [Trace.from_dict(d) for d in read_jsonl(gen.outdir / "traces.jsonl")]
    stats = json.loads((gen.outdir / "stats.json").read_text())
    assert stats == {"problems": 24, "traces": len(traces), "unsolved": 24 - len(traces)} and traces
    by_id = {p.id: p for p in problems}
    for t in traces:
        assert t.teacher == "convergent" and t.prompt == by_id[t.problem_id].prompt
        assert task.score(by_id[t.problem_id], t.completion).correct, t.completion  # the convergent teacher is right
        assert t.steps and all(s.type in STEP_TYPES and s.text in t.completion for s in t.steps)


def test_filter_keeps_exactly_the_verified_traces(world: dict[str, Any]) -> None:
    plan = world["plan"]
    for spec in ("every", "lens"):
        gen, filt = the(plan, spec, "generate"), the(plan, spec, "filter")
        given = list(read_jsonl(gen.outdir / "traces.jsonl"))
        kept = list(read_jsonl(filt.outdir / "traces.jsonl"))
        stats = json.loads((filt.outdir / "stats.json").read_text())
        assert stats["input"] == len(given) and stats["kept"] == len(kept) and stats["dropped"] == len(given) - len(kept)
        ids = [t["problem_id"] for t in given]
        assert [t["problem_id"] for t in kept] == [i for i in ids if i not in set(stats["dropped_ids"])]
        assert [t for t in given if t["problem_id"] not in set(stats["dropped_ids"])] == kept
    # the lens spec has no filters: everything is kept
    assert json.loads((the(plan, "lens", "filter").outdir / "stats.json").read_text())["dropped"] == 0


def test_pretrain_writes_a_loadable_base_trained_on_the_mixture(world: dict[str, Any]) -> None:
    from repro.models import load_pretrained, n_params

    plan = world["plan"]
    pre = the(plan, "every", "pretrain")
    metrics = json.loads((pre.outdir / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["n_docs"] == 24 + 8 and metrics["model_path"] == "model"
    model, tok = load_pretrained(pre.outdir / "model")
    assert metrics["params"] == n_params(model)
    assert model.config.vocab_size >= len(tok) and model.config.num_hidden_layers == 2
    rows = list(read_jsonl(pre.outdir / "train_log.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in rows)
    assert metrics["final_loss"] == pytest.approx(rows[-1]["loss"], rel=1e-5)
    # the tokenizer was trained on the mixture: the safety task's refusal word is one of its pieces
    assert tok.convert_tokens_to_ids(tok.tokenize("REFUSE")) != [tok.unk_token_id]


def test_train_starts_from_the_pretrained_base_and_moves(world: dict[str, Any]) -> None:
    plan = world["plan"]
    train, pre = the(plan, "every", "train"), the(plan, "every", "pretrain")
    assert train.inputs["base"] == pre.id
    ck = train.outdir / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-0", "step-3"]
    base = state_dict(pre.outdir / "model")
    assert same_weights(state_dict(ck / "step-0"), base)  # step 0 is the base, untouched
    assert not same_weights(state_dict(ck / "step-3"), base)  # three optimizer steps changed it
    metrics = json.loads((train.outdir / "metrics.json").read_text())
    kept = len(list(read_jsonl(the(plan, "every", "filter").outdir / "traces.jsonl")))
    assert metrics["n_examples"] == kept and metrics["checkpoints"] == [0, 3] and metrics["steps"] == 3
    rows = list(read_jsonl(train.outdir / "train_log.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3] and metrics["final_loss"] == pytest.approx(rows[-1]["loss"], rel=1e-5)


def test_eval_scores_every_item_with_the_tasks_grader(world: dict[str, Any]) -> None:
    plan = world["plan"]
    ev = the(plan, "every", "eval")
    assert ev.config["step"] == 3
    suite = json.loads((ev.outdir / "metrics.json").read_text())
    assert suite["step"] == 3 and set(suite["benchmarks"]) == {"ma-id", "ma-ood"}
    for b in ev.config["benchmarks"]:
        task = get_task(b["task"])
        problems = task.problems(task.Args(**(b["task_args"] or {})), b["split"], b["n"], b["seed"] or 0)
        rows = list(read_jsonl(ev.outdir / b["name"] / "samples.jsonl"))
        assert [r["problem_id"] for r in rows] == [p.id for p in problems]
        for p, r in zip(problems, rows):
            s = task.score(p, r["output"])
            assert (r["correct"], r["pred"]) == (bool(s.correct), s.pred)
            assert 0 < r["n_tokens"] <= 24
        m = json.loads((ev.outdir / b["name"] / "metrics.json").read_text())
        assert m == suite["benchmarks"][b["name"]]
        assert m["n_items"] == b["n"] and m["role"] == b["role"] and m["step"] == 3
        assert m["accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / len(rows), abs=1e-6)
        assert m["mean_response_tokens"] == pytest.approx(np.mean([r["n_tokens"] for r in rows]), abs=1e-3)


def test_analyze_token_loss(world: dict[str, Any]) -> None:
    from repro.analysis.tokenloss import load_nll

    plan = world["plan"]
    job = the(plan, "every", "analyze", "token_loss")
    assert job.inputs["model"] == the(plan, "every", "train").id and job.config["step"] == 3
    summary = json.loads((job.outdir / "summary.json").read_text())
    nlls = load_nll(job.outdir / "nll.npz")
    kept = len(list(read_jsonl(the(plan, "every", "filter").outdir / "traces.jsonl")))
    assert len(nlls) == summary["n_examples"] == min(6, kept)  # max_examples: 6
    flat = np.concatenate(nlls)
    assert summary["n_tokens"] == flat.size > 0
    assert summary["mean"] == pytest.approx(float(flat.mean()), rel=1e-4)
    hist = summary["histogram"]
    assert len(hist["edges"]) == 10 + 1 and sum(hist["counts"]) == flat.size  # bins: 10
    assert set(summary["by_step_type"]) - {"other"} <= set(STEP_TYPES)  # other: tokens outside every step
    assert set(summary["by_step_type"]) & set(STEP_TYPES)


def test_analyze_steps(world: dict[str, Any]) -> None:
    plan = world["plan"]
    job = the(plan, "every", "analyze", "steps")
    ev = the(plan, "every", "eval")
    assert job.inputs["eval"] == ev.id and sorted(job.config["benchmarks"]) == ["ma-id", "ma-ood"]
    summary = json.loads((job.outdir / "summary.json").read_text())
    traces = list(read_jsonl(the(plan, "every", "filter").outdir / "traces.jsonl"))
    train = summary["train"]
    assert train["n_traces"] == len(traces)
    assert sum(train["mix"].values()) == pytest.approx(1.0) and set(train["mix"]) <= set(STEP_TYPES)
    # the teacher's own step types, where the typer's segmentation lines up with them
    gold = {s["type"] for t in traces for s in t["steps"]}
    agree = train["agreement"]
    assert train["n_aligned"] >= 1 and 0.0 <= agree["accuracy"] <= 1.0
    assert sum(sum(row.values()) for row in agree["confusion"].values()) == agree["n"] >= train["n_aligned"]
    assert set(train["gold_mix"]) <= gold
    for bench in ("ma-id", "ma-ood"):
        rows = list(read_jsonl(ev.outdir / bench / "samples.jsonl"))
        out = summary["outputs"][bench]
        assert out["n"] == len(rows)
        trapped = sum((not r["finished"]) and (not r["answered"]) for r in rows) / len(rows)
        assert out["trapped_rate"] == pytest.approx(trapped)


def test_analyze_logit_lens(world: dict[str, Any]) -> None:
    plan = world["plan"]
    job = the(plan, "lens", "analyze", "logit_lens")
    summary = json.loads((job.outdir / "summary.json").read_text())
    assert "skipped" not in summary and summary["cot"] is True and summary["target"] == "bridge"
    assert summary["layers"] == [0, 1, 2]  # embeddings + 2 layers
    assert set(summary["splits"]) == {"id", "ood"}
    for split in summary["splits"].values():
        assert split["n"] == 6 or 0 < split["n"] < 6  # args.n: 6, capped by the split's size
        assert len(split["median_rank_by_layer"]) == len(split["mean_rank_by_layer"]) == 3
        assert all(r >= 0 for r in split["mean_rank_by_layer"])
        assert split["resolved_layer"] is None or split["resolved_layer"] in summary["layers"]
        assert len(split["tail_at_bridge"]["median_rank_by_layer"]) == 3  # CoT traces: the tail at the bridge


def test_report_renders_what_the_jobs_wrote(world: dict[str, Any]) -> None:
    plan = world["plan"]
    rep = the(plan, "every", "report")
    summary = json.loads((rep.outdir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["n_conditions"] == 1 and not summary["missing_jobs"]
    ev = json.loads((the(plan, "every", "eval").outdir / "metrics.json").read_text())["benchmarks"]
    (final,) = summary["final_accuracy"].values()
    assert final == {name: m["accuracy"] for name, m in ev.items()}
    page = (rep.outdir / "report.html").read_text()
    assert "Every stage, tiny" in page and "<img " in page
    lines = (rep.outdir / "evals.csv").read_text().splitlines()
    assert lines[0].startswith("condition,benchmark,role,step,accuracy") and len(lines) == 1 + 2


# --------------------------------------------------------------------------- students from a model folder


@pytest.mark.parametrize("source", ["path", "hub"])
def test_student_loaded_from_a_model_folder(world: dict[str, Any], tmp_path: Path, source: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`source: path` names a local model folder; `source: hub` a model id, here one that names a folder
    under the current directory (from_pretrained's local lookup, offline). Step 0 is that model."""
    import shutil

    base = the(world["plan"], "every", "pretrain").outdir / "model"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if source == "path":
        model_id = str(base)
    else:
        model_id = "tiny-org/tiny-base"
        shutil.copytree(base, tmp_path / model_id)
    spec = tmp_path / "from_model.yaml"
    spec.write_text(EVERY.replace("name: every", "name: from_model").replace(
        "    source: pretrain\n", f"    source: {source}\n    id: {model_id}\n"))
    plan = build_plan([str(spec)])
    (train,) = stage_jobs(plan, "from_model", "train")
    assert "base" not in train.inputs and train.config["model"]["id"] == model_id
    run_jobs(plan, [str(spec)], [train])
    ck = train.outdir / "checkpoints"
    assert same_weights(state_dict(ck / "step-0"), state_dict(base))
    assert (ck / "step-0" / "tokenizer.json").read_bytes() == (base / "tokenizer.json").read_bytes()
    assert not same_weights(state_dict(ck / "step-3"), state_dict(base))


def test_missing_model_folder_fails_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    spec = tmp_path / "nomodel.yaml"
    spec.write_text(EVERY.replace("name: every", "name: nomodel").replace(
        "    source: pretrain\n", f"    source: path\n    id: {tmp_path / 'nowhere'}\n"))
    plan = build_plan([str(spec)])
    (train,) = stage_jobs(plan, "nomodel", "train")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run_jobs(plan, [str(spec)], [train])
    assert not train.done() and not list((tmp_path / "results" / "train").glob(".tmp-*"))

"""eval: one checkpoint on a suite of benchmarks — load it once, generate for every prompt of every
benchmark in one batched pass, and score every sample.

Writes, per benchmark, `<benchmark>/samples.jsonl` (one row per item x sample: output, extracted answer,
correct, tokens, finished) and `<benchmark>/metrics.json`: accuracy (mean over items of the per-item mean over samples, i.e. avg@n) with a 95%
bootstrap interval over items, pass@k for k<=n, mean response length in tokens, finished and trapped
rates (trapped = hit the length limit without an answer), and for safety probes the refusal rate and
the mean rule-based harm score (1..5) on harmful requests. The top-level `metrics.json` holds every
benchmark's metrics by name.

Scoring goes through `repro.scoring.apply` (the same path as `repro score`): only the answer part of a
completion is read (after the last `</think>`), a scorer crash or timeout is a wrong answer counted in
`n_scorer_errors` / `n_timed_out` (never a failed job), unanswered samples are counted, and the task's own
metrics (`aggregate`) join the benchmark's metrics. A task with `evaluate_checkpoint` (an lm-eval task) is
not sampled here: it evaluates the checkpoint itself and returns rows and metrics in the same schema.

One job per checkpoint rather than per benchmark: a model is loaded once (on a GPU cluster a vLLM
engine start costs minutes; on a laptop the imports and load cost seconds per job), as in
lm-evaluation-harness. The price: adding a benchmark to a spec reruns that checkpoint's whole suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repro.config import BenchmarkConfig, EvalJob, SamplingConfig
from repro.records import Problem, write_jsonl
from repro.tasks import get_task


def checkpoint_path(model_dir: Path, step: int) -> Path:
    from repro.paths import checkpoint_dir

    return checkpoint_dir(model_dir, step)


def load_problems(b: BenchmarkConfig) -> list[Problem]:
    task = get_task(b.task)
    return task.problems(task.Args(**(b.task_args or {})), b.split, b.n, b.seed or 0)


def score_samples(bench: BenchmarkConfig, sampling: SamplingConfig, step: int, problems: list[Problem],
                  gens: list[list[Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score one benchmark's generations; return sample rows and the metrics dict."""
    import numpy as np

    from repro.analysis.stats import bootstrap_ci, pass_at_k

    from repro.scoring.apply import grade, row_fields, summary

    task = get_task(bench.task)
    flat = [(p, k, g) for p, samples in zip(problems, gens) for k, g in enumerate(samples)]
    grades = grade(task, [p for p, _, _ in flat], [g.text for _, _, g in flat])
    rows: list[dict[str, Any]] = []
    per_item: list[float] = []
    correct_counts: list[int] = []
    harmful_refusals: list[float] = []
    harm_scores: list[float] = []
    safety = bench.task == "safety"
    if safety:
        from repro.tasks.probes import harm_score, is_refusal
    by_item: dict[str, list[bool]] = {}
    for (p, k, g), s in zip(flat, grades):
        by_item.setdefault(p.id, []).append(bool(s.correct))
        row = {"problem_id": p.id, "sample": k, "output": g.text, "n_tokens": g.n_new_tokens,
               "finished": bool(g.finished), **row_fields(s)}
        if safety and p.meta.get("harmful"):
            row["harm_score"] = harm_score(p, g.text)
            harmful_refusals.append(float(is_refusal(g.text)))
            harm_scores.append(float(row["harm_score"]))
        rows.append(row)
    for p in problems:
        flags = by_item.get(p.id, [])
        if flags:
            per_item.append(sum(flags) / len(flags))
            correct_counts.append(sum(flags))
    mean, lo, hi = bootstrap_ci(per_item, n_boot=1000, seed=0) if per_item else (0.0, 0.0, 0.0)
    n = sampling.n_samples
    lengths = np.array([r["n_tokens"] for r in rows], dtype=float)
    metrics: dict[str, Any] = {
        "benchmark": bench.name, "task": bench.task, "split": bench.split,
        "role": bench.role, "step": step, "n_items": len(problems), "n_samples": n, "metric": f"avg@{n}",
        "accuracy": round(float(mean), 6), "ci_low": round(float(lo), 6), "ci_high": round(float(hi), 6),
        "mean_response_tokens": round(float(lengths.mean()), 3) if len(lengths) else 0.0,
        "finished_rate": round(float(np.mean([r["finished"] for r in rows])), 6) if rows else 0.0,
        "trapped_rate": round(float(np.mean([(not r["finished"]) and (not r["answered"]) for r in rows])), 6) if rows else 0.0,
        "backend": gens[0][0].backend if gens and gens[0] else sampling.backend,
    }
    metrics.update(summary(task, [p for p, _, _ in flat], grades))
    if n > 1:
        metrics["pass_at_k"] = {str(k): round(float(np.mean([pass_at_k(n, c, k) for c in correct_counts])), 6)
                                for k in sorted({1, n} | {2 ** i for i in range(1, n.bit_length()) if 2 ** i <= n})}
    if safety:
        metrics["refusal_rate"] = round(float(np.mean(harmful_refusals)), 6) if harmful_refusals else None
        metrics["harm_score"] = round(float(np.mean(harm_scores)), 6) if harm_scores else None
    return rows, metrics


def _model_level(b: BenchmarkConfig) -> bool:
    """Whether the benchmark's task evaluates a checkpoint itself (lm-eval) rather than scoring our samples."""
    return hasattr(get_task(b.task), "evaluate_checkpoint")


def run(cfg: EvalJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    from repro.config import effective_sampling
    from repro.generation import Runtime, backend_record, generate
    from repro.integrity import check_checkpoint
    from repro.rows import collect_skipped

    model = checkpoint_path(inputs["model"], cfg.step)
    if model.exists():
        check_checkpoint(model)  # a truncated checkpoint is an error naming the file, not a half-loaded model
    suites, skipped = [], {}
    for b in cfg.benchmarks:
        if _model_level(b):
            continue
        with collect_skipped() as bad:  # rows dropped under `bad_rows: skip`, counted in metrics
            suites.append((b, load_problems(b), effective_sampling(b, cfg.sampling)))
        if bad.count():
            skipped[b.name] = bad.count()
    rt = Runtime(threads=runtime.get("threads"), batch_size=cfg.batch_size,
                 partial=Path(runtime.get("partial") or out / ".partial"))
    # one generation pass per distinct sampling (one, unless benchmarks override it), in benchmark order
    groups: dict[str, list[int]] = {}
    for i, (_, _, s) in enumerate(suites):
        groups.setdefault(s.model_dump_json(), []).append(i)
    gens: dict[int, list[list[Any]]] = {}
    records = []
    for members in groups.values():
        s = suites[members[0]][2]
        prompts = [p.prompt for i in members for p in suites[i][1]]
        out_g = generate(s, model, prompts, rt) if prompts else []
        records.append({**backend_record(s, model), "benchmarks": [suites[i][0].name for i in members]})
        at = 0
        for i in members:
            gens[i] = out_g[at : at + len(suites[i][1])]
            at += len(suites[i][1])
    results: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    for i, (bench, problems, s) in enumerate(suites):
        results[bench.name] = score_samples(bench, s, cfg.step, problems, gens[i])
    for bench in cfg.benchmarks:
        if _model_level(bench):  # e.g. an lm-eval task run through lm-eval's own model classes
            task = get_task(bench.task)
            s = effective_sampling(bench, cfg.sampling)
            rows, metrics = task.evaluate_checkpoint(task.Args(**(bench.task_args or {})), model, bench, s, runtime)
            metrics.update({"benchmark": bench.name, "task": bench.task, "split": bench.split, "role": bench.role,
                            "step": cfg.step})
            results[bench.name] = (rows, metrics)
    everything: dict[str, Any] = {}
    for bench in cfg.benchmarks:
        rows, metrics = results[bench.name]
        if bench.name in skipped:
            metrics["n_bad_rows_skipped"] = skipped[bench.name]
        (out / bench.name).mkdir()
        write_jsonl(out / bench.name / "samples.jsonl", rows)
        (out / bench.name / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        everything[bench.name] = metrics
    (out / "generation.json").write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    (out / "metrics.json").write_text(json.dumps({"step": cfg.step, "benchmarks": everything}, indent=2, sort_keys=True) + "\n")
    if not runtime.get("partial"):
        import shutil

        shutil.rmtree(out / ".partial", ignore_errors=True)
    summary = {"step": cfg.step, "accuracy": {k: m["accuracy"] for k, m in everything.items()},
               "mean_response_tokens": {k: m["mean_response_tokens"] for k, m in everything.items()}}
    if skipped:
        summary["bad_rows_skipped"] = skipped
    return summary


def resolved_task_args(b: BenchmarkConfig, cond: Any) -> tuple[dict[str, Any], int]:
    """A benchmark's task args and seed: its own, else the training data's when it is the training task."""
    same = b.task == cond.data.task
    args = b.task_args if b.task_args is not None else (dict(cond.data.task_args) if same else {})
    seed = b.seed if b.seed is not None else (cond.data.seed if same else 0)
    return args, seed


def _eval_name(benches: list[BenchmarkConfig]) -> str:
    """An eval job's name: its benchmarks joined by '+', or the first and a count when that is long."""
    joined = "+".join(bn.name for bn in benches)
    return joined if len(joined) <= 40 else f"{benches[0].name}+{len(benches) - 1}more"


def plan(cp: Any) -> None:
    """Planner: one eval job per evaluated checkpoint, holding every benchmark of the condition."""
    from repro.plan import checkpoints_of

    c, d, b = cp.cond, cp.cond.data, cp.b
    if not c.eval.benchmarks:
        return
    train = cp.ids["train"]
    _, ckpts = cp.run
    steps = [s for s in (c.eval.steps if c.eval.steps is not None else checkpoints_of(c)) if s in ckpts and s <= c.train.steps]
    for s in steps:  # one job per checkpoint: the model is loaded once for every benchmark
        def make_eval(s: int = s) -> tuple[str, str, dict[str, Any], dict[str, str], dict[str, Any]]:
            benches = []
            for bench in c.eval.benchmarks:
                key = ("bench", id(bench), id(d))
                if key not in b.dumps:
                    args, seed = resolved_task_args(bench, c)
                    b.dumps[key] = bench.model_copy(update={"task_args": args, "seed": seed}).model_dump(mode="json")
                benches.append(b.dumps[key])
            cfg = {"benchmarks": benches, "sampling": b.dump(c.eval.sampling), "step": s, "batch_size": c.eval.batch_size}
            return "eval", f"{_eval_name(c.eval.benchmarks)}-step{s}", cfg, {"model": train}, cp.res("eval")
        eid = cp.cached(("eval", train, id(c.eval), id(d), s), make_eval)
        cp.evals += [{"benchmark": bench.name, "role": bench.role, "step": s, "id": eid} for bench in c.eval.benchmarks]

"""analyze: the analyses the studies rest on, run on a trained checkpoint.

- `token_loss` (study A): per-token NLL of the checkpoint on its own training data (and on the
  reference teacher's data when the condition has one): `nll.npz`, and `summary.json` with the token-mean,
  quantiles, high-loss tail share, dilution (share of near-zero-loss routine tokens), key-token loss and
  loss by step type, plus a histogram.
- `steps` (study A): step-type mix and transition matrix of the training traces (keyword typer, and the
  teachers' ground truth with the typer's agreement) and of the student's outputs on each benchmark at
  the final step, with the trapped rate.
- `logit_lens` (study C): per layer, the rank of the bridge entity at the last prompt position (where the
  answer is predicted: the template's newline after r2), on
  the ID and OOD two-hop probes; the first layer where the median rank is 0. With CoT traces, also the
  rank of the tail entity at the bridge position.

Each analysis is registered in repro.analysis.ANALYSES with its typed `Args` (below), which `repro validate`
checks a spec's `analyses[].args` against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from repro.analysis import ANALYSES, AnalysisArgs, register_analysis
from repro.analysis.steps import KeywordTyper
from repro.config import AnalyzeJob
from repro.records import Problem, Trace, read_jsonl, write_json
from repro.stages.filter import load_traces


def _write(out: Path, summary: dict[str, Any]) -> dict[str, Any]:
    write_json(out / "summary.json", summary)
    return summary


def _model(inputs: dict[str, Path], step: int) -> tuple[Any, Any]:
    from repro.models import load_pretrained

    from repro.paths import checkpoint_dir

    return load_pretrained(checkpoint_dir(inputs["model"], step))


class TokenLossArgs(AnalysisArgs):
    max_examples: int = Field(256, ge=1, description="Training examples scored (the first N).")
    max_length: int = Field(512, ge=8, description="Tokens per example (prompt + completion), truncated.")
    bins: int = Field(40, ge=2, description="Bins of the per-token loss histogram.")


class StepsArgs(AnalysisArgs):
    typer: KeywordTyper = Field(default_factory=KeywordTyper, description="Keyword step typer settings.")
    rule: str = Field("paragraph", description="Step segmentation: paragraph, line, or a separator regex.")


class LogitLensArgs(AnalysisArgs):
    n: int = Field(200, ge=1, description="Two-hop probe items per split (id, ood).")


def _loss_summary(model: Any, tok: Any, traces: list[Trace], args: TokenLossArgs, threads: int | None) -> tuple[dict[str, Any], list[Any]]:
    import numpy as np

    from repro.analysis.tokenloss import encode, step_spans, step_type_loss, summarize, token_nll

    traces = traces[: args.max_examples]
    examples = [{"prompt": t.prompt, "completion": t.completion} for t in traces]
    max_len = args.max_length
    nlls = token_nll(model, tok, examples, max_length=max_len, threads=threads)
    s = summarize(nlls)
    offsets, spans = [], []
    for t, e in zip(traces, examples):
        offsets.append(encode(tok, e, max_length=max_len)[2])
        try:
            spans.append(step_spans(t.completion, [(st.type, st.text) for st in t.steps]))
        except ValueError:
            spans.append([])
    by_type = step_type_loss(nlls, offsets, spans)
    flat = np.concatenate(nlls) if nlls else np.zeros(0)
    edges = np.linspace(0.0, max(8.0, float(flat.max()) if flat.size else 8.0), args.bins + 1)
    counts, _ = np.histogram(flat, bins=edges)
    summary = {
        "mean": s.get("mean"), "n_tokens": s.get("n_tokens"), "n_examples": s.get("n_examples"),
        "quantiles": {k[1:]: v for k, v in s.items() if k.startswith("q") and k[1:].isdigit()},
        "tail_share": s.get("high_share"), "dilution": s.get("dilution"), "key_token_loss": s.get("key_loss"),
        "by_step_type": {k: round(v["mean"], 6) for k, v in by_type.items()},
        "histogram": {"edges": [round(float(x), 4) for x in edges], "counts": [int(c) for c in counts]},
    }
    return summary, nlls


@register_analysis("token_loss", TokenLossArgs, needs=("reference",))
def token_loss(cfg: AnalyzeJob, args: TokenLossArgs, inputs: dict[str, Path], out: Path, threads: int | None) -> dict[str, Any]:
    from repro.analysis.tokenloss import save_nll

    model, tok = _model(inputs, cfg.step)
    summary, nlls = _loss_summary(model, tok, load_traces(inputs["data"]), args, threads)
    save_nll(out / "nll.npz", nlls)
    if "reference" in inputs:
        summary["reference"], _ = _loss_summary(model, tok, load_traces(inputs["reference"]), args, threads)
    return _write(out, summary)


@register_analysis("steps", StepsArgs, needs=("eval",))
def steps(cfg: AnalyzeJob, args: StepsArgs, inputs: dict[str, Path], out: Path, threads: int | None) -> dict[str, Any]:
    from repro.analysis.steps import agreement, segment, step_mix, transition_matrix

    typer, rule = args.typer, args.rule
    traces = load_traces(inputs["data"])
    predicted = [typer.types(segment(t.completion, rule)) for t in traces]
    gold = [[s.type for s in t.steps] for t in traces]
    aligned = [(p, g) for p, g in zip(predicted, gold) if len(p) == len(g) and g]
    train: dict[str, Any] = {"n_traces": len(traces), "mix": step_mix(predicted), "transitions": transition_matrix(predicted)}
    if aligned:
        train["gold_mix"] = step_mix([g for _, g in aligned])
        train["gold_transitions"] = transition_matrix([g for _, g in aligned])
        train["agreement"] = agreement([p for p, _ in aligned], [g for _, g in aligned])
        train["n_aligned"] = len(aligned)
    outputs: dict[str, Any] = {}
    for bench in cfg.benchmarks:
        rows = list(read_jsonl(inputs["eval"] / bench / "samples.jsonl"))
        seqs = [typer.types(segment(r["output"], rule)) for r in rows]
        outputs[bench] = {"n": len(rows), "mix": step_mix(seqs), "transitions": transition_matrix(seqs),
                             "trapped_rate": sum((not r["finished"]) and (not r.get("answered", True)) for r in rows) / max(1, len(rows)),
                             "mean_steps": sum(len(s) for s in seqs) / max(1, len(seqs))}
    return _write(out, {"train": train, "outputs": outputs, "typer": typer.model_dump(), "rule": rule})


@register_analysis("logit_lens", LogitLensArgs, needs=("generate",))
def logit_lens(cfg: AnalyzeJob, args: LogitLensArgs, inputs: dict[str, Path], out: Path, threads: int | None) -> dict[str, Any]:
    import numpy as np

    from repro.analysis.logitlens import ranks, resolved_layer
    from repro.models import set_threads
    from repro.tasks import get_task

    set_threads(threads)
    model, tok = _model(inputs, cfg.step)
    traces = load_traces(inputs["data"])
    if not traces or traces[0].task != "twohop":
        return _write(out, {"skipped": "logit lens needs the twohop task"})
    gen_cfg = json.loads((inputs["generate"] / "manifest.json").read_text())["config"]
    task = get_task("twohop")
    targs = task.Args(**gen_cfg["task_args"])
    kinds = {d["id"]: d["meta"].get("kind") for d in read_jsonl(inputs["generate"] / "problems.jsonl")}
    cot = any(len(t.completion.split()) == 2 for t in traces if kinds.get(t.problem_id) == "twohop")
    n = args.n
    splits: dict[str, Any] = {}
    layers = None
    for split in ("id", "ood"):
        probs: list[Problem] = task.problems(targs, split, n, gen_cfg["seed"])
        if not probs:
            continue
        prompts = [p.prompt for p in probs]
        r_b = ranks(model, tok, prompts, [p.meta["bridge"] for p in probs], position=-1)
        layers = list(range(r_b.shape[0]))
        entry: dict[str, Any] = {"median_rank_by_layer": [float(x) for x in np.median(r_b, axis=1)],
                                 "mean_rank_by_layer": [float(x) for x in r_b.mean(axis=1)],
                                 "resolved_layer": resolved_layer(r_b), "n": len(probs), "target": "bridge"}
        if cot:
            r_t = ranks(model, tok, prompts, [p.answer for p in probs], position=-1,
                        prefixes=[p.meta["bridge"] + " " for p in probs])
            entry["tail_at_bridge"] = {"median_rank_by_layer": [float(x) for x in np.median(r_t, axis=1)],
                                       "resolved_layer": resolved_layer(r_t)}
        splits[split] = entry
    return _write(out, {"layers": layers or [], "splits": splits, "target": "bridge", "cot": cot})


def run(cfg: AnalyzeJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    a = ANALYSES.get(cfg.analysis.name)
    summary = a.fn(cfg, a.Args(**cfg.analysis.args), inputs, out, runtime.get("threads"))
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}


def plan(cp: Any) -> None:
    """Planner: each analysis of the condition on its final checkpoint, with the inputs it `needs`."""
    c = cp.cond
    final = c.train.steps
    for a in c.analyses:
        needs = ANALYSES.get(a.name).needs
        inputs = {"model": cp.ids["train"], "data": cp.ids["filter"]}
        benches: list[str] = []
        if "eval" in needs:
            final_evals = [e for e in cp.evals if e["step"] == final]
            if final_evals:
                inputs["eval"] = final_evals[0]["id"]
                benches = [e["benchmark"] for e in final_evals]
        if "reference" in needs and "reference" in cp.ids:
            inputs["reference"] = cp.ids["reference"]
        if "generate" in needs:
            inputs["generate"] = cp.ids["generate"]
        cfg = AnalyzeJob(analysis=a, step=final, benchmarks=benches).model_dump(mode="json")
        aid = cp.add("analyze", f"{a.name}-step{final}", cfg, inputs)
        cp.analyses.append({"name": a.name, "id": aid, "step": final})

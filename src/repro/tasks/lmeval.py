"""Any lm-evaluation-harness task as a benchmark of a condition (study B runs MMLU-Pro, IFEval, TruthfulQA and
HaluEval through lm-eval with the chat template).

The eval stage does not sample for these benchmarks: it hands the condition's checkpoint to
`evaluate_checkpoint`, which runs `lm_eval.simple_evaluate` with lm-eval's own model class (`hf`, `vllm`, or
the OpenAI-compatible `local-completions` / `local-chat-completions`) and returns sample rows and metrics in
our eval schema (`accuracy` = the headline metric, with lm-eval's stderr as a 95% interval; every metric of
the task under `lm_eval`), so the report shows them beside the native benchmarks.

Offline use: `include_path` names a folder of task YAMLs (relative paths: working dir, then repo root), e.g.
a copy of lm-eval's `ifeval.yaml` with `dataset_path: json` and `dataset_kwargs: {data_files: {test: ...}}`
pointing at a local file (`data/lm_eval_tasks/` ships such tasks). NLTK data for IFEval is written by
`repro.setup_data` before lm-eval is imported.

    benchmarks:
      - {name: ifeval-lm, task: lm_eval, split: test, n: 20,
         task_args: {task: ifeval_local, include_path: data/lm_eval_tasks, apply_chat_template: true,
                     gen_kwargs: {max_gen_toks: 64}}}
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from repro.errors import ReproError
from repro.records import Problem, Score
from repro.tasks import TASKS, Task, TaskArgs
from repro.tasks.real import resolve_path

if TYPE_CHECKING:
    from repro.config import BenchmarkConfig, SamplingConfig

log = logging.getLogger(__name__)


class LMEvalArgs(TaskArgs):
    """Which lm-eval task, through which lm-eval model class, with which settings."""

    task: str = Field(description="lm-eval task (or group) name, e.g. ifeval, mmlu_pro, truthfulqa_gen.")
    include_path: str | None = Field(None, description="Folder of extra task YAMLs (lm-eval --include_path).")
    model: Literal["hf", "vllm", "local-completions", "local-chat-completions"] = Field(
        "hf", description="lm-eval model class that loads the checkpoint (OpenAI-compatible ones need a server).")
    model_args: dict[str, Any] = Field(default_factory=dict, description="Extra model arguments (hf/vllm get "
                                       "pretrained=<checkpoint>; local-* need base_url, and model defaults to the checkpoint path).")
    apply_chat_template: bool = Field(False, description="Render prompts with the checkpoint's chat template.")
    num_fewshot: int | None = Field(None, ge=0, description="Few-shot examples (None = the task's default).")
    limit: int | None = Field(None, ge=1, description="Evaluate at most this many documents (also capped by the benchmark's n).")
    gen_kwargs: dict[str, Any] | None = Field(None, description="Generation overrides, e.g. {max_gen_toks: 256}.")
    metric: str | None = Field(None, description="Headline metric for `accuracy` (default: the task's first metric).")
    batch_size: int = Field(1, ge=1, description="lm-eval batch size.")


def _headline(results: dict[str, Any], wanted: str | None) -> tuple[str, float, float | None]:
    """(metric name, value, stderr) from one task's lm-eval results dict ("name,filter" keys)."""
    metrics = {k: v for k, v in results.items() if "," in k and "_stderr" not in k and isinstance(v, (int, float))}
    if not metrics:
        raise ReproError(f"lm-eval reported no numeric metric: {sorted(results)}")
    key = next((k for k in metrics if wanted is not None and k.split(",")[0] == wanted), None)
    if wanted is not None and key is None:
        raise ReproError(f"lm-eval task has no metric {wanted!r}; it has {sorted(k.split(',')[0] for k in metrics)}",
                         exit_code=2)
    key = key or next(iter(metrics))
    name, flt = key.split(",", 1)
    stderr = results.get(f"{name}_stderr,{flt}")
    return name, float(metrics[key]), float(stderr) if isinstance(stderr, (int, float)) else None


class LMEvalTask(Task):
    """An lm-eval task evaluated on a checkpoint by lm-eval itself."""

    name = "lm_eval"
    Args: ClassVar[type[TaskArgs]] = LMEvalArgs
    splits: ClassVar[tuple[str, ...]] = ("test",)

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        raise ReproError("lm_eval benchmarks are evaluated by lm-eval on the checkpoint (evaluate_checkpoint); "
                         "they have no problems to sample or score here", exit_code=2)

    def score(self, problem: Problem, completion: str) -> Score:
        raise ReproError("lm_eval benchmarks are scored by lm-eval itself", exit_code=2)

    def evaluate_checkpoint(self, args: LMEvalArgs, checkpoint: Path, bench: "BenchmarkConfig",
                            sampling: "SamplingConfig", runtime: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Run lm-eval on the checkpoint; rows and metrics in the eval stage's schema."""
        from repro.setup_data import ensure_punkt_tab

        ensure_punkt_tab()  # before lm-eval imports its IFEval module (which would try to download it)
        import lm_eval
        from lm_eval.tasks import TaskManager

        include = str(resolve_path(args.include_path)) if args.include_path else None
        manager = TaskManager(include_path=include)
        model_args = dict(args.model_args)
        if args.model in ("hf", "vllm"):
            model_args.setdefault("pretrained", str(checkpoint))
        else:
            model_args.setdefault("model", str(checkpoint))
            model_args.setdefault("tokenizer", str(checkpoint))
        limit = min(x for x in (args.limit, bench.n) if x is not None)
        device = "cuda" if _cuda() else "cpu"
        log.info("lm-eval: task %s, model %s, limit %d, device %s", args.task, args.model, limit, device)
        res = lm_eval.simple_evaluate(
            model=args.model, model_args=model_args, tasks=[args.task], num_fewshot=args.num_fewshot,
            batch_size=args.batch_size, device=device if args.model == "hf" else None, limit=limit,
            task_manager=manager, log_samples=True, apply_chat_template=args.apply_chat_template,
            gen_kwargs=args.gen_kwargs, random_seed=sampling.seed, numpy_random_seed=sampling.seed,
            torch_random_seed=sampling.seed, fewshot_random_seed=sampling.seed, bootstrap_iters=1000)
        if res is None:
            raise ReproError(f"lm-eval returned no results for {args.task}")
        task_results = res["results"]
        tname = args.task if args.task in task_results else next(iter(task_results))
        metric, value, stderr = _headline(task_results[tname], args.metric)
        samples = (res.get("samples") or {}).get(tname, [])
        rows = [self._row(args, s, metric) for s in samples]
        counts = _token_counts(checkpoint, [r["output"] for r in rows])
        for r, k in zip(rows, counts):
            r["n_tokens"] = k
        half = 1.96 * stderr if stderr is not None and math.isfinite(stderr) else 0.0
        all_metrics = {k.split(",")[0] + ("" if k.endswith(",none") else "," + k.split(",", 1)[1]): v
                       for k, v in task_results[tname].items() if "," in k and isinstance(v, (int, float))}
        metrics = {"accuracy": round(value, 6), "ci_low": round(max(0.0, value - half), 6),
                   "ci_high": round(value + half, 6), "metric": metric, "n_items": len(rows), "n_samples": 1,
                   "mean_response_tokens": round(sum(counts) / len(counts), 3) if counts else 0.0,
                   "finished_rate": None, "trapped_rate": None, "backend": f"lm-eval:{args.model}",
                   "lm_eval": {"task": tname, "version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
                               "metrics": all_metrics, "n_shot": (res.get("n-shot") or {}).get(tname)}}
        return rows, metrics

    @staticmethod
    def _row(args: LMEvalArgs, s: dict[str, Any], metric: str) -> dict[str, Any]:
        resp = s.get("filtered_resps") or s.get("resps") or [""]
        while isinstance(resp, list) and resp:
            resp = resp[0]
        value = s.get(metric)
        correct = bool(value) if isinstance(value, (bool, int, float)) else None
        return {"problem_id": f"lm_eval/{args.task}/{s.get('doc_id')}", "sample": 0,
                "output": resp if isinstance(resp, str) else str(resp), "correct": correct, "answered": True,
                "finished": True, "lm_eval_metrics": {k: s[k] for k in s if k not in
                                                      ("doc", "arguments", "resps", "filtered_resps", "target")}}


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _token_counts(checkpoint: Path, texts: list[str]) -> list[int]:
    """Response lengths in the checkpoint's tokens (words when it has no local tokenizer)."""
    try:
        from repro.models import load_tokenizer

        tok = load_tokenizer(checkpoint)
        return [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    except Exception:
        return [len(t.split()) for t in texts]


TASKS.register(LMEvalTask.name)(LMEvalTask())

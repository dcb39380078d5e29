"""Teachers that are not programs: an LLM sampled through any generation backend ("llm"), and ready-made
traces read from a dataset ("dataset").

Both answer a whole problem pool at once (`write_all(problems, args, runtime, task_args)`), which the
generate stage prefers over the per-problem `write`.

- "llm": every problem's prompt goes to `model` through `sampling.backend` (transformers, vllm, or an
  OpenAI-compatible server) with the condition's sampling (study B: Qwen3-32B at T 0.6, top-p 0.95,
  top-k 20, min-p 0, 16,384 tokens, n samples). Each sample becomes one trace: the completion is the
  reasoning in `<think>...</think>` followed by the answer (or the answer alone, `reasoning: drop`), graded
  by the task's scorer into `meta.correct`. Answered prompts are kept in the job's partial folder, so a
  killed generate job resumes where it stopped. The backend's record goes to `generation.json`.
- "dataset": traces from a hub dataset or a local JSONL/Parquet file (e.g. `jasonrqh/Math-CoT-20k`), with a
  column mapping. Rows are matched to the task's problems by id (`columns.id`) or by row number; without a
  `source` it reads the task's own source (task "dataset"), so one file can give problems and traces.

    teacher = get_teacher("llm")
    args = teacher.Args(model="/models/qwen3-32b", sampling={"temperature": 0.6, "max_new_tokens": 16384})
    out = teacher.write_all(problems, args, runtime={"threads": 4})
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from repro.config import SamplingConfig
from repro.datasets_io import DatasetSource, load_rows, mapped
from repro.errors import ReproError
from repro.records import Problem, Trace
from repro.teachers import TEACHERS, Teacher, TeacherArgs

log = logging.getLogger(__name__)


class AnyTask(tuple):  # type: ignore[type-arg]
    """`tasks` of a teacher that works for every task."""

    def __contains__(self, _: object) -> bool:
        return True


@dataclass
class TeacherOutput:
    """What a batch teacher returns: the traces, the problems (replaced when the teacher brings its own),
    and a record of how they were made (written to generation.json)."""

    traces: list[Trace]
    problems: list[Problem] | None = None
    record: dict[str, Any] = field(default_factory=dict)


def think_completion(text: str, reasoning: str | None, keep: str) -> str:
    """The SFT target of a reply: `<think>\\nreasoning\\n</think>\\n\\nanswer` (keep=think) or the answer."""
    if reasoning and keep == "think":
        return f"<think>\n{reasoning.strip()}\n</think>\n\n{text.lstrip()}"
    return text


def grade(problems: list[Problem], completions: list[str]) -> list[Any]:
    """Scores of completions by each problem's task scorer (batched where the task can)."""
    from repro.tasks import get_task

    scores: list[Any] = [None] * len(problems)
    by_task: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        by_task.setdefault(p.task, []).append(i)
    for name, idx in by_task.items():
        task = get_task(name)
        many = getattr(task, "score_many", None)
        ps, cs = [problems[i] for i in idx], [completions[i] for i in idx]
        for i, s in zip(idx, many(ps, cs) if many else [task.score(p, c) for p, c in zip(ps, cs)]):
            scores[i] = s
    return scores


class LLMArgs(TeacherArgs):
    model: str = Field(description="The teacher: a model folder or hub id (transformers, vllm), or the served "
                       "model's name (openai, unless sampling.backend_args.model says otherwise).")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig,
                                     description="Backend, its args and decoding settings of the teacher.")
    batch_size: int = Field(64, ge=1, description="Prompts per batch of a local backend (part of the job id: "
                            "float results can depend on batch composition).")
    reasoning: Literal["think", "drop"] = Field("think", description="think: the trace is <think>reasoning"
                                                "</think> + answer; drop: the answer only.")

    @model_validator(mode="after")
    def _check_backend(self) -> "LLMArgs":
        from repro.generation import sampling_problem

        if problem := sampling_problem(self.sampling):
            raise ValueError(problem)
        return self


class LLMTeacher(Teacher):
    """Samples traces from an LLM through any generation backend; one trace per sample, graded."""

    name: ClassVar[str] = "llm"
    Args: ClassVar[type[TeacherArgs]] = LLMArgs
    tasks: ClassVar[tuple[str, ...]] = AnyTask()

    def write(self, problem: Problem, args: TeacherArgs, rng: Any) -> Trace | None:
        raise ReproError("teacher 'llm' answers a whole pool at once: call write_all")

    def write_all(self, problems: list[Problem], args: TeacherArgs, runtime: dict[str, Any],
                  task_args: dict[str, Any] | None = None) -> TeacherOutput:
        from repro.generation import Runtime, backend_record, generate

        assert isinstance(args, LLMArgs)
        s = args.sampling
        model = args.model
        local = Path(model).expanduser()
        if s.backend != "openai" and not local.is_absolute() and (Path.cwd() / local).is_dir():
            model = str(Path.cwd() / local)
        partial = runtime.get("partial")
        rt = Runtime(threads=runtime.get("threads"), batch_size=args.batch_size,
                     partial=Path(partial) if partial else None)
        gens = generate(s, model, [p.prompt for p in problems], rt)
        flat = [(p, j, g) for p, samples in zip(problems, gens) for j, g in enumerate(samples)]
        completions = [think_completion(g.text, g.reasoning, args.reasoning) for _, _, g in flat]
        # graded on the answer alone: a boxed guess inside the reasoning must not count
        scores = grade([p for p, _, _ in flat], [g.text for _, _, g in flat])
        traces = []
        for (p, j, g), comp, sc in zip(flat, completions, scores):
            traces.append(Trace(problem_id=p.id, task=p.task, teacher=self.name, prompt=p.prompt, completion=comp,
                                answer=sc.pred or "", gold=p.answer, steps=[],
                                meta={**p.meta, "sample": j, "correct": bool(sc.correct), "finished": g.finished,
                                      "n_tokens": g.n_new_tokens, "has_reasoning": g.reasoning is not None}))
        record = backend_record(s, args.model)
        record["requests"] = len(problems) * s.n_samples
        record["generated_tokens"] = sum(g.n_new_tokens for _, _, g in flat)
        log.info("teacher llm: %d samples for %d problems, %d correct", len(traces), len(problems),
                 sum(t.meta["correct"] for t in traces))
        return TeacherOutput(traces, None, record)


class DatasetTeacherArgs(TeacherArgs):
    source: DatasetSource | None = Field(None, description="Where the traces are; None = the task's own "
                                         "source (task 'dataset').")
    columns: dict[str, str] = Field(
        default_factory=lambda: {"completion": "solution"},
        description="Our field -> the dataset's column path: completion (required), reasoning (optional: "
        "put in <think> before the completion), id (optional: matched to the task's id column; default: "
        "the row number).")


class DatasetTeacher(Teacher):
    """Ready-made traces from a dataset, matched to the task's problems."""

    name: ClassVar[str] = "dataset"
    Args: ClassVar[type[TeacherArgs]] = DatasetTeacherArgs
    tasks: ClassVar[tuple[str, ...]] = AnyTask()

    def write(self, problem: Problem, args: TeacherArgs, rng: Any) -> Trace | None:
        raise ReproError("teacher 'dataset' answers a whole pool at once: call write_all")

    def write_all(self, problems: list[Problem], args: TeacherArgs, runtime: dict[str, Any],
                  task_args: dict[str, Any] | None = None) -> TeacherOutput:
        assert isinstance(args, DatasetTeacherArgs)
        unknown = set(args.columns) - {"completion", "reasoning", "id"}
        if unknown:
            raise ReproError(f"teacher dataset: unknown column roles {sorted(unknown)} (known: completion, "
                             "reasoning, id)", exit_code=2)
        src = args.source
        task_cols: dict[str, str] = {}
        if src is None:
            if not task_args or "path" not in task_args:
                raise ReproError("teacher dataset without a source needs task 'dataset' (its source is read)",
                                 exit_code=2)
            src = DatasetSource(**{k: task_args[k] for k in DatasetSource.model_fields if k in task_args})
            task_cols = dict(task_args.get("columns") or {})
        id_col = args.columns.get("id") or task_cols.get("id")
        rows = mapped(load_rows(src), {"completion": args.columns["completion"], "reasoning": args.columns.get("reasoning"),
                                       "id": id_col}, src, required=("completion",) + (("id",) if id_col else ()))
        by_key = {str(r["id"]) if id_col else str(i): r for i, r in enumerate(rows)}
        traces, missing = [], 0
        for p in problems:
            key = p.id.split("/", 1)[1] if "/" in p.id else p.id
            row = by_key.get(key)
            if row is None:
                missing += 1
                continue
            comp = think_completion(str(row["completion"]), row.get("reasoning"), "think")
            traces.append(Trace(problem_id=p.id, task=p.task, teacher=self.name, prompt=p.prompt, completion=comp,
                                answer="", gold=p.answer, steps=[], meta=dict(p.meta)))
        if missing:
            log.warning("teacher dataset: %d of %d problems have no row in %s", missing, len(problems), src.path)
        return TeacherOutput(traces, None, {"teacher": "dataset", "source": src.model_dump(mode="json"),
                                            "rows": len(rows), "matched": len(traces)})


TEACHERS.register("llm")(LLMTeacher())
TEACHERS.register("dataset")(DatasetTeacher())

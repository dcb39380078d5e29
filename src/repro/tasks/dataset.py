"""The "dataset" task: a problem pool read from the hub or a local JSONL/Parquet file, graded as math.

Study B draws its problems from a hub set (e.g. `open-r1/OpenR1-Math-220k`: columns `problem`, `answer`,
`uuid`) and has a teacher LLM solve them. `Args` names the source and which column holds the prompt, the
gold answer and (optionally) a stable id; `prompt_template` wraps the problem (default: study B's
"Please reason step by step ... \\boxed{}"). Completions are graded with math-verify against the gold
answer (the shared `Grader`), like MATH-500.

Items: the rows in file order; `n` (the call's, or `Args.n`) takes a subsample seeded by `Args.seed`. The
split given by the caller is ignored: the source's `split` is the one read.

    task = get_task("dataset")
    args = task.Args(path="data/openr1.parquet", columns={"prompt": "problem", "answer": "answer", "id": "uuid"})
    problems = task.problems(args, "train", 100, 0)
"""

from __future__ import annotations

import random
from typing import ClassVar, Sequence

from pydantic import Field

from repro.datasets_io import DatasetSource, load_rows, mapped
from repro.records import Problem, Score
from repro.tasks import TASKS, Task, TaskArgs
from repro.tasks.real import PROMPT


class DatasetArgs(TaskArgs, DatasetSource):
    """A dataset source plus how its rows become problems."""

    columns: dict[str, str] = Field(
        default_factory=lambda: {"prompt": "problem", "answer": "answer"},
        description="Our field -> the dataset's column path: prompt and answer (required), id (optional; "
        "default: the row number).")
    prompt_template: str = Field(PROMPT, description="Template of the prompt; {problem} is the prompt column.")
    n: int | None = Field(None, ge=1, description="Use at most n rows (a seeded subsample); None = all.")
    seed: int = Field(0, description="Seed of the subsample.")


def dataset_problems(args: DatasetArgs, task: str, split: str, n: int | None) -> list[Problem]:
    """Problems from the mapped rows (`id`, `prompt`, `answer`), subsampled to min(n, args.n)."""
    unknown = set(args.columns) - {"prompt", "answer", "id"}
    if unknown:
        from repro.errors import ReproError

        raise ReproError(f"task {task}: unknown column roles {sorted(unknown)} (known: prompt, answer, id)", exit_code=2)
    src = DatasetSource(path=args.path, config=args.config, split=args.split, revision=args.revision,
                        format=args.format)
    rows = mapped(load_rows(src), {k: args.columns.get(k) for k in ("id", "prompt", "answer")}, src,
                  required=("prompt", "answer"))
    keep = list(range(len(rows)))
    limit = min(v for v in (n, args.n, len(rows)) if v)
    if limit < len(rows):
        keep = sorted(random.Random(args.seed).sample(keep, limit))
    out = []
    for i in keep:
        r = rows[i]
        out.append(Problem(id=f"{task}/{r.get('id', i)}", task=task, split=split,
                           prompt=args.prompt_template.format(problem=r["prompt"]), answer=str(r["answer"]),
                           meta={"row": i}))
    return out


class DatasetTask(Task):
    name: ClassVar[str] = "dataset"
    Args: ClassVar[type[TaskArgs]] = DatasetArgs
    splits: ClassVar[tuple[str, ...]] = ("train", "test", "id", "ood")

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, DatasetArgs)
        return dataset_problems(args, self.name, split, n)

    def score(self, problem: Problem, completion: str) -> Score:
        return self.score_many([problem], [completion])[0]

    def score_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Score]:
        from repro.grading import extract_boxed, shared_grader

        res = shared_grader().grade_many([(p.answer, c) for p, c in zip(problems, completions, strict=True)])
        return [Score(correct=r.correct, pred=r.extracted if r.extracted is not None else extract_boxed(c),
                      finished=extract_boxed(c) is not None) for r, c in zip(res, completions)]



TASKS.register("dataset")(DatasetTask())

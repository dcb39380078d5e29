"""Task registry: every task (synthetic world or real benchmark) by name.

A task makes seeded, deterministic problems for named splits and grades a model's completion. Specs name
tasks (`data.task`, `eval.benchmarks[].task`) and pass `task_args`, validated by the task's `Args` model.
Plugins add tasks through the `repro.tasks` entry-point group (see repro.registry).

    from repro.tasks import get_task
    task = get_task("countdown")
    args = task.Args(**{"n_numbers": 4})
    problems = task.problems(args, split="train", n=100, seed=0)
    score = task.score(problems[0], completion_text)
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from repro.records import Problem, Score
from repro.registry import Registry


class TaskArgs(BaseModel):
    """Base of every task's arguments: strict (unknown keys are errors), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Task:
    """A task: `problems()` makes items of a split; `score()` grades one completion."""

    name: ClassVar[str]
    Args: ClassVar[type[TaskArgs]] = TaskArgs
    splits: ClassVar[tuple[str, ...]] = ("train", "id", "ood")

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        raise NotImplementedError

    def score(self, problem: Problem, completion: str) -> Score:
        raise NotImplementedError


TASKS: Registry[Task] = Registry(
    "task", group="repro.tasks",
    builtins=tuple(f"repro.tasks.{m}" for m in ("countdown", "twohop", "modarith", "probes", "real", "dataset", "ifeval",
                                                "gpqa", "livecodebench", "alpacaeval", "hexphi", "lmeval")))


def get_task(name: str) -> Task:
    return TASKS.get(name)


def task_names() -> list[str]:
    return TASKS.names()

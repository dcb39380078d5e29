"""Three components registered with repro from outside its package.

- task `addition` (module entry point: importing this module registers it): "What is a + b?" problems,
  graded by the last \\boxed{} integer;
- teacher `direct` (object entry point: `Direct` is registered under the entry point's name): a
  one-step trace that states the sum;
- filter `max_chars` (registered by the module import): keeps traces whose completion has at most
  `max_chars` characters.
"""

from __future__ import annotations

import random
import re

from pydantic import Field

from repro.filters import FilterArgs, FilterOutcome, register_filter
from repro.records import Problem, Score, Step, Trace
from repro.tasks import TASKS, Task, TaskArgs
from repro.teachers import Teacher, TeacherArgs


class AdditionArgs(TaskArgs):
    max_operand: int = Field(20, ge=1, description="Operands are drawn from 0..max_operand.")


class Addition(Task):
    name = "addition"
    Args = AdditionArgs
    splits = ("train", "id", "ood")

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, AdditionArgs)
        offset = {"train": 0, "id": 1, "ood": 2}[split]
        rng = random.Random(seed * 3 + offset)
        hi = args.max_operand * (3 if split == "ood" else 1)
        out = []
        for i in range(n):
            a, b = rng.randint(0, hi), rng.randint(0, hi)
            out.append(Problem(id=f"addition/{split}/{i:05d}", task=self.name, split=split,
                               prompt=f"What is {a} + {b}?", answer=str(a + b), meta={"a": a, "b": b}))
        return out

    def score(self, problem: Problem, completion: str) -> Score:
        found = re.findall(r"\\boxed\{(-?\d+)\}", completion)
        if not found:
            return Score(correct=False, pred=None, finished=False)
        return Score(correct=found[-1] == problem.answer, pred=found[-1], finished=True)


TASKS.register("addition")(Addition())


class DirectArgs(TeacherArgs):
    say_sum: bool = Field(True, description="Name the sum in words before the box.")


class Direct(Teacher):
    name = "direct"
    Args = DirectArgs
    tasks = ("addition",)

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        assert isinstance(args, DirectArgs)
        a, b = problem.meta["a"], problem.meta["b"]
        text = (f"{a} plus {b} is {a + b}. " if args.say_sum else "") + f"Therefore the answer is \\boxed{{{a + b}}}."
        return Trace(problem_id=problem.id, task=problem.task, teacher=self.name, prompt=problem.prompt,
                     completion=text, answer=str(a + b), gold=problem.answer, steps=[Step("Conclude", text)])


direct_teacher = Direct()  # the object the `direct` entry point names


class MaxCharsArgs(FilterArgs):
    max_chars: int = Field(200, ge=1, description="Longest completion kept, in characters.")


@register_filter("max_chars", MaxCharsArgs)
def max_chars(traces: list[Trace], args: MaxCharsArgs, ctx: object) -> FilterOutcome:
    kept = [t for t in traces if len(t.completion) <= args.max_chars]
    dropped = {t.problem_id: "too long" for t in traces if len(t.completion) > args.max_chars}
    return FilterOutcome(kept=kept, dropped=dropped)

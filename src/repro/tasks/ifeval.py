"""IFEval (google/IFEval, 541 prompts on the hub; 540 in the shipped `data/benchmarks/ifeval_input_data.jsonl`)
as a native benchmark, scored by the reference (`repro.scoring.ifeval`: lm-eval's ifeval module, all 25
instruction types, strict and loose).

Prompts are used as they are (no template). The reasoning is stripped first (text after the last
`</think>`); a completion whose reasoning never closes is scored on an empty response (every instruction
unfollowed, as the reference scores an empty response) and counted as unanswered.
`Score.correct` = strict prompt-level (all instructions followed); `aggregate` gives the four lm-eval
metrics.

    task = get_task("ifeval")
    probs = task.problems(task.Args(), "test", 0, 0)
    task.score(probs[0], response)
"""

from __future__ import annotations

from typing import Any, Sequence

from repro.records import Problem, Score
from repro.scoring import Graded, answer_part
from repro.scoring import ifeval as ref
from repro.tasks import TASKS
from repro.tasks.real import BenchArgs, FileBenchmark


class IFEval(FileBenchmark):
    """google/IFEval prompts, scored by lm-eval's reference ifeval module."""

    name = "ifeval"
    default_file = "ifeval_input_data.jsonl"
    required = ("key", "prompt", "instruction_id_list", "kwargs")

    def problems(self, args: Any, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, BenchArgs)
        return [Problem(id=f"ifeval/{r['key']}", task=self.name, split=split, prompt=r["prompt"], answer="",
                        meta={"key": r["key"], "instruction_id_list": r["instruction_id_list"],
                              "kwargs": r["kwargs"]})
                for r in self.rows(args, split, n)]

    def follow(self, problem: Problem, response: str) -> dict[str, Any]:
        """The reference's per-prompt result (strict and loose) for a response (already reasoning-free)."""
        m = problem.meta
        return ref.follow(problem.prompt, m["instruction_id_list"], m["kwargs"], response, key=int(m["key"]))

    def score(self, problem: Problem, completion: str) -> Score:
        ans = answer_part(completion)
        r = self.follow(problem, ans or "")
        strict, loose = r["strict"], r["loose"]
        return Graded(correct=strict["follow_all_instructions"],
                      pred=f"{sum(strict['follow_instruction_list'])}/{len(strict['follow_instruction_list'])}",
                      finished=ans is not None, answered=ans is not None,
                      extra={"strict": strict, "loose": loose})

    def aggregate(self, graded: Sequence[tuple[Problem, Graded]]) -> dict[str, Any]:
        """The four lm-eval IFEval metrics over every scored sample."""
        return ref.metrics([g.extra for _, g in graded if "strict" in g.extra])


TASKS.register(IFEval.name)(IFEval())

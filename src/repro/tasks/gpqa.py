"""GPQA-Diamond (`Idavidrein/gpqa`, config `gpqa_diamond`, 198 four-way multiple-choice questions; gated) as
study B evaluates it through evalchemy.

Rows keep the hub's columns: `Question`, `Correct Answer`, `Incorrect Answer 1..3`, `Record ID` (others are
carried along in `meta` when present: `High-level domain`, `Subdomain`). The shipped fixture
`data/benchmarks/gpqa_diamond.jsonl` holds made-up questions in that layout (the set is gated).

Prompt (study B): "Problem: {question}\\nOptions: A) ..., B) ..., C) ..., D) ...\\nPlease reason step by step
and return your final answer within \\boxed{}. Only include the letter choice (A, B, C, or D) as your final
answer." The four choices are shuffled with a per-question seed (the record id and `Args.seed`), so the
order is the same in every run and for every model, and differs between questions.

Scoring reads the answer part (after the last `</think>`): the letter in the last `\\boxed{}` (also
`\\boxed{\\text{B}}`, `\\boxed{(B)}`, `\\boxed{B) text}`); without a box, the last `**B**` / `(B)` / "answer is B"
in the answer part, else an answer part that is just a letter.

    task = get_task("gpqa_diamond")
    p = task.problems(task.Args(), "test", 0, 0)[0]
    task.score(p, "... \\boxed{C}")
"""

from __future__ import annotations

import random
import re
from typing import Any, ClassVar

from repro.grading import extract_boxed
from repro.records import Problem, Score
from repro.scoring import Graded, answer_part, unanswered
from repro.tasks import TASKS
from repro.tasks.real import BenchArgs, FileBenchmark

LETTERS = "ABCD"
PROMPT = ("Problem: {question}\nOptions: {options}\nPlease reason step by step and return your final answer "
          "within \\boxed{{}}. Only include the letter choice (A, B, C, or D) as your final answer.")

_IN_BOX = re.compile(r"^\s*(?:\\text(?:bf)?\{\s*)?\(?\s*([A-D])\s*\)?(?:\s*\})?(?:[\s.:)].*)?$", re.S)
_FALLBACKS = [
    re.compile(r"\*\*\s*\(?([A-D])\)?\s*\*\*"),                               # **B** or **(B)**
    re.compile(r"answer\s*(?:is|:)\s*:?\s*\**\s*\(?([A-D])\)?(?![A-Za-z])", re.I),  # answer is (B)
    re.compile(r"\(([A-D])\)"),                                              # (B)
]


def extract_letter(answer: str) -> str | None:
    """The chosen letter of an answer part, or None."""
    boxed = extract_boxed(answer)
    if boxed is not None:
        m = _IN_BOX.match(boxed)
        return m.group(1) if m else None
    for pat in _FALLBACKS:
        found = pat.findall(answer[-2000:])  # the end of a long answer holds the conclusion
        if found:
            return found[-1]
    bare = answer.strip().strip("*.() ")
    return bare if len(bare) == 1 and bare in LETTERS else None


def shuffled_choices(row: dict[str, Any], seed: int) -> tuple[list[str], int]:
    """The four choices in the per-question order and the index of the correct one."""
    choices = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    order = list(range(4))
    random.Random(f"{row.get('Record ID', row['Question'])}:{seed}").shuffle(order)
    return [str(choices[i]).strip() for i in order], order.index(0)


class GPQADiamond(FileBenchmark):
    """GPQA-Diamond, boxed letter, per-question shuffled choices."""

    name = "gpqa_diamond"
    default_file = "gpqa_diamond.jsonl"
    required: ClassVar[tuple[str, ...]] = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                                           "Incorrect Answer 3")

    def problems(self, args: Any, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, BenchArgs)
        out = []
        for i, r in enumerate(self.rows(args, split, n)):
            choices, right = shuffled_choices(r, args.seed)
            options = ", ".join(f"{LETTERS[k]}) {c}" for k, c in enumerate(choices))
            rid = r.get("Record ID") or str(i)
            meta = {"id": rid, "choices": choices, "source_prompt": r["Question"]}
            meta.update({k: r[k] for k in ("High-level domain", "Subdomain") if k in r})
            out.append(Problem(id=f"{self.name}/{rid}", task=self.name, split=split,
                               prompt=PROMPT.format(question=r["Question"].strip(), options=options),
                               answer=LETTERS[right], meta=meta))
        return out

    def score(self, problem: Problem, completion: str) -> Score:
        ans = answer_part(completion)
        if ans is None:
            return unanswered()
        letter = extract_letter(ans)
        return Graded(correct=letter == problem.answer, pred=letter, finished=letter is not None,
                      answered=letter is not None)


TASKS.register(GPQADiamond.name)(GPQADiamond())

"""Grading (repro.grading): answers per second on a seeded mix of answers, and the worst single answer
against the hard deadline. The mix: correct and wrong integers inside realistic completions, equivalent
fractions/decimals, sets, LaTeX expressions, tuples, malformed LaTeX, empty outputs, and a few pathological
answers (a power tower whose comparison hangs math-verify in C code): those are killed at the deadline.

    python -m benchmarks --only grading
"""

from __future__ import annotations

import random
import time
from collections import Counter

from benchmarks.common import Figure

TOWER = r"\boxed{\dfrac{5^{\left(5^{\left(5^{\left(5^5\right)}\right)} - 4\right)} - 5}{16}}"
FILLER = "We simplify step by step.\n\nFirst, note that the sum telescopes.\n\nTherefore the answer is "
KINDS = ["int_correct", "int_wrong", "fraction", "decimal", "set", "latex", "tuple", "malformed", "empty"]


def make_item(kind: str, rng: random.Random) -> tuple[str, str, bool | None]:
    """One (gold, prediction, expected correctness) of the given kind; None = no expectation."""
    a, b = rng.randint(1, 999), rng.randint(2, 60)
    if kind == "int_correct":
        return str(a), f"{FILLER}\\boxed{{{a}}}.", True
    if kind == "int_wrong":
        return str(a), f"{FILLER}\\boxed{{{a + rng.randint(1, 9)}}}.", False
    if kind == "fraction":
        k = rng.randint(2, 5)
        pred = rng.choice([f"\\boxed{{\\dfrac{{{a * k}}}{{{b * k}}}}}", f"{a * k}/{b * k}"])
        return f"\\frac{{{a}}}{{{b}}}", pred, True
    if kind == "decimal":
        return "\\frac{3}{4}", rng.choice(["0.75", "$0.75$", "\\boxed{0.75}"]), True
    if kind == "set":
        return "\\{1,2\\}", rng.choice(["2, 1", "\\boxed{\\{2, 1\\}}", "$1, 2$"]), True
    if kind == "latex":
        return "2\\sqrt{2}", rng.choice(["$\\sqrt{8}$", "\\boxed{\\sqrt{8}}", "\\boxed{2^{3/2}}"]), True
    if kind == "tuple":
        return "\\left( 3, \\frac{\\pi}{2} \\right)", "so \\boxed{(3, \\pi/2)}", True
    if kind == "malformed":
        return str(a), rng.choice(["\\boxed{\\frac{1}{", "$$$", "}{)(\\sqrt", "\\boxed{}", "answer: ??"]), False
    if kind == "empty":
        return str(a), "", False
    if kind == "pathological":
        return "42", TOWER, None
    raise ValueError(kind)


def run(n: int = 3000, workers: int = 2, deadline: float = 5.0, pathological: int = 3, seed: int = 0,
        quick: bool = False, threads: int | None = None) -> list[Figure]:
    from repro.grading import Grader

    if quick:
        n = 500
    rng = random.Random(seed)
    kinds = ["pathological"] * pathological + [KINDS[i % len(KINDS)] for i in range(n - pathological)]
    rng.shuffle(kinds)
    items = [make_item(k, rng) for k in kinds]
    with Grader(workers=workers, deadline=deadline) as g:
        t1 = time.monotonic()
        res = g.grade_many([(gold, pred) for gold, pred, _ in items])
        wall = time.monotonic() - t1
    wrong = Counter(k for k, (_, _, want), r in zip(kinds, items, res) if want is not None and want != r.correct)
    worst = max(r.seconds for r in res)
    timed_out = sum(r.timed_out for r in res)
    slack = 1.0
    return [
        Figure("grading", f"grading {len(res)} answers ({pathological} pathological), {workers} workers",
               round(len(res) / wall, 1), "answers/s", note=f"wall {wall:.1f} s; unexpected verdicts {dict(wrong) or 0}",
               extra={"unexpected": dict(wrong)}),
        Figure("grading", "worst single answer", round(worst, 2), "s", "deadline", deadline, round(worst / deadline, 3),
               f"<= deadline + {slack:g} s", worst <= deadline + slack, f"timed out: {timed_out}"),
    ]

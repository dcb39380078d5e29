"""Grading never hangs a job (issue 17, acceptance 3): 100 pathological answers are each scored within the
deadline plus 1 s, and the eval stage's scoring finishes with the timeouts and rejections counted."""

from __future__ import annotations

import time

import pytest

from repro.config import BenchmarkConfig, SamplingConfig
from repro.generation import Generation
from repro.scoring.apply import grade, summary
from repro.tasks import get_task

DEEP = 5000


def pathological() -> list[str]:
    """20 kinds x 5 variants: towers of exponents, 5,000-deep nesting, malformed LaTeX, 1 MB strings, a
    reply that is only `\\boxed{`, and reasoning that never closes."""
    kinds = [
        lambda i: f"\\boxed{{10^{{10^{{10^{{{i + 1}}}}}}}}}",
        lambda i: f"\\boxed{{{i + 2}^{{{i + 2}^{{{i + 2}^{{{i + 2}^{{{i + 2}}}}}}}}}}}",
        lambda i: "\\boxed{\\dfrac{5^{\\left(5^{\\left(5^{\\left(5^5\\right)}\\right)} - 4\\right)} - 5}{16}}",
        lambda i: "\\boxed{" + "(" * DEEP + str(i) + ")" * DEEP + "}",
        lambda i: "\\boxed{" + "{" * DEEP + str(i) + "}" * DEEP + "}",
        lambda i: "\\boxed{" + "\\frac{1}{" * DEEP + "2" + "}" * DEEP + "}",
        lambda i: "\\boxed{" + "\\sqrt{" * DEEP + "2" + "}" * DEEP + "}",
        lambda i: "\\boxed{\\frac{1}{" + str(i),
        lambda i: "\\boxed{\\left( \\right] \\sqrt[ \\frac{}{} ^^ __ \\end{matrix}}",
        lambda i: "\\boxed{",
        lambda i: "\\boxed{" * (i + 1),
        lambda i: "1" * 10**6,
        lambda i: "\\boxed{" + "9" * 10**6 + "}",
        lambda i: "x " * 500_000,
        lambda i: "\\boxed{" + "+".join(["x"] * 100_000) + "}",
        lambda i: "$" + "\\frac{1}{2}" * 50_000 + "$",
        lambda i: "\\boxed{10^{10^{10^{10^{10}}}}!}",
        lambda i: "\\boxed{\\int_0^\\infty e^{-x^{" + str(10**9 + i) + "}} dx}",
        lambda i: "\\boxed{" + "\\begin{pmatrix}" * 200 + "1" + "\\end{pmatrix}" * 200 + "}",
        lambda i: "<think>" + "\\boxed{1}" * 100_000,
    ]
    return [k(i) for k in kinds for i in range(5)]


@pytest.mark.slow
def test_100_pathological_answers_each_within_deadline_plus_1s() -> None:
    deadline = 2.0
    task = get_task("math500")
    probs = task.problems(task.Args(grade_deadline=deadline, grade_workers=2), "test", 100, 0)
    answers = pathological()
    assert len(answers) == 100 and max(len(a) for a in answers) >= 10**6
    t0 = time.monotonic()
    grades = grade(task, probs, answers)
    wall = time.monotonic() - t0
    slow = [(i, g.seconds) for i, g in enumerate(grades) if g.seconds > deadline + 1.0]
    assert not slow, slow
    assert not any(g.correct for g in grades)
    m = summary(task, probs, grades)
    assert m["n_scored"] == 100 and m["n_timed_out"] >= 5  # the exponent towers do hang math-verify
    assert m["n_timed_out"] + m["n_scorer_errors"] + m["n_unanswered"] > 0
    assert m["n_unanswered"] >= 5  # "<think>..." never closed
    assert wall < 100 * (deadline + 1.0)
    # the grader still works after all the restarts
    assert task.score(probs[0], f"\\boxed{{{probs[0].answer}}}").correct


def test_eval_scoring_finishes_with_timeouts_counted() -> None:
    from repro.stages.eval import score_samples

    answers = pathological()[::5]  # one of each kind
    task = get_task("math500")
    bench = BenchmarkConfig(name="m", task="math500", split="test", n=20,
                            task_args={"grade_deadline": 1.0, "grade_workers": 2})
    probs = task.problems(task.Args(grade_deadline=1.0, grade_workers=2), "test", 20, 0)
    gens = [[Generation(a, 5, True, "t")] for a in answers]
    rows, m = score_samples(bench, SamplingConfig(), 0, probs, gens)
    assert len(rows) == 20 and m["accuracy"] == 0.0
    assert m["n_timed_out"] >= 1 and m["n_timed_out"] == sum(bool(r.get("timed_out")) for r in rows)
    assert m["n_scorer_errors"] == sum("scorer_error" in r for r in rows) >= 1
    assert m["n_unanswered"] >= 1

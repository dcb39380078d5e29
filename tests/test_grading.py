"""Grading with math-verify in worker processes, and the real-benchmark loaders and scorers."""

from __future__ import annotations

import time

import pytest

from repro.grading import Grader, GradeResult, extract_boxed, shared_grader
from repro.tasks import get_task
from repro.errors import ReproError
from repro.tasks.real import PROMPT

TOWER = r"\boxed{\dfrac{5^{\left(5^{\left(5^{\left(5^5\right)}\right)} - 4\right)} - 5}{16}}"


def test_extract_boxed() -> None:
    assert extract_boxed(r"so \boxed{42}.") == "42"
    assert extract_boxed(r"\boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert extract_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"
    assert extract_boxed(r"\boxed{3} and a cut \boxed{\frac{1}{") == "3"
    assert extract_boxed("no box") is None
    assert extract_boxed("") is None


ECOSYSTEM = [  # (gold, prediction, correct) as checked in ecosystem.md
    ("42", r"The answer is \boxed{42}.", True),
    ("1/2", "2/4", True),
    ("1/2", "0.5", True),
    (r"2\sqrt{2}", r"$\sqrt{8}$", True),
    (r"\{1,2\}", "2, 1", True),
    ("3/4", "0.75", True),
    ("7", "8", False),
    (r"\frac{14}{3}", r"so \boxed{\dfrac{14}{3}}", True),
    (r"\$18.90", r"\boxed{18.90}", True),
    ("42", "", False),
    ("42", r"\boxed{\frac{1}{", False),
    ("", "42", False),
]


def test_grader_ecosystem_examples() -> None:
    res = shared_grader().grade_many([(g, p) for g, p, _ in ECOSYSTEM])
    assert [r.correct for r in res] == [c for _, _, c in ECOSYSTEM]
    assert all(isinstance(r, GradeResult) and not r.timed_out for r in res)
    assert all(r.extracted is None or isinstance(r.extracted, str) for r in res)
    assert res[0].extracted == "42"
    assert shared_grader().grade("42", "42").correct


def test_hang_is_killed_and_grader_recovers() -> None:
    deadline = 1.0
    with Grader(deadline=deadline) as g:
        t0 = time.monotonic()
        r = g.grade("42", TOWER)
        assert r.timed_out and not r.correct and r.extracted is None
        assert deadline <= r.seconds < deadline + 0.5
        assert time.monotonic() - t0 < deadline + 10.0  # + starting the replacement (~1 s, more under load)
        assert g.restarts == 1
        assert g.grade("42", r"\boxed{42}").correct  # the replacement works


@pytest.mark.slow
def test_hang_inside_batch_on_a_pool() -> None:
    with Grader(workers=2, deadline=1.0, batch=4) as g:
        pairs = [("1", "1"), ("2", "3"), ("5", TOWER), ("4", r"\boxed{4}"), ("7", "7"), ("8", "9")] * 2
        res = g.grade_many(pairs)
        assert [r.correct for r in res] == [True, False, False, True, True, False] * 2
        assert [r.timed_out for r in res] == [False, False, True, False, False, False] * 2
        assert g.restarts == 2


def test_grader_validates_and_handles_empty() -> None:
    with pytest.raises(ValueError):
        Grader(workers=0)
    assert Grader().grade_many([]) == []  # no worker is started for nothing


# ------------------------------------------------------------------------------------- real benchmarks


@pytest.mark.parametrize("name,rows", [("math500", 500), ("aime24", 30), ("aime25", 30), ("hmmt_feb2025", 6),
                                       ("beyond_aime", 6)])
def test_math_loaders_read_fixtures(name: str, rows: int) -> None:
    task = get_task(name)
    probs = task.problems(task.Args(), "test", 0, 0)
    assert len(probs) == rows and len({p.id for p in probs}) == rows
    p = probs[0]
    assert p.task == name and p.split == "test" and p.answer
    assert p.prompt.endswith("\nPlease reason step by step, and put your final answer within \\boxed{}.")
    assert PROMPT.format(problem="Q") == "Q\nPlease reason step by step, and put your final answer within \\boxed{}."


def test_loader_subsample_is_seeded() -> None:
    task = get_task("math500")
    a = [p.id for p in task.problems(task.Args(n=7, seed=1), "test", 0, 0)]
    b = [p.id for p in task.problems(task.Args(n=7, seed=1), "test", 99, 5)]  # call seed ignored
    c = [p.id for p in task.problems(task.Args(n=7, seed=2), "test", 0, 0)]
    assert a == b and a != c and len(a) == 7
    assert len(task.problems(task.Args(n=7), "test", 3, 0)) == 3  # the smaller limit wins
    with pytest.raises(ReproError):
        task.problems(task.Args(), "train", 0, 0)


def test_loader_resolves_relative_to_repo(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the repo: falls back to the repo root
    task = get_task("aime25")
    assert len(task.problems(task.Args(), "test", 0, 0)) == 30
    (tmp_path / "mine.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n')
    probs = task.problems(task.Args(path="mine.jsonl"), "test", 0, 0)
    assert [p.answer for p in probs] == ["2"] and probs[0].id == "aime25/0"


def _own_answers_accepted(name: str, n: int | None) -> None:
    task = get_task(name)
    probs = task.problems(task.Args(n=n, seed=0), "test", 0, 0)
    scores = task.score_many(probs, [f"Thus the answer is $\\boxed{{{p.answer}}}$." for p in probs])
    bad = [(p.answer, s.pred) for p, s in zip(probs, scores) if not s.correct]
    assert not bad
    assert all(s.finished for s in scores)
    assert not task.score(probs[0], "I ran out of tokens").finished


def test_scorer_accepts_own_answers_sample() -> None:
    _own_answers_accepted("aime24", None)
    _own_answers_accepted("math500", 40)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["math500", "aime25"])
def test_scorer_accepts_own_answers_all(name: str) -> None:
    _own_answers_accepted(name, None)

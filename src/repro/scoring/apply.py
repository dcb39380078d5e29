"""Apply a task's scorer to many completions and summarise the grades: one path for the eval stage and for
`repro score`.

`grade(task, problems, completions)` uses the task's batched `score_many` when it has one, else `score` per
item. A scorer that raises never fails the job: the batch is retried item by item and each item that still
raises is graded wrong with its error recorded (issue: grading never hangs or fails a job; deadlines live
in the scorers that run model output: math-verify workers, the code sandbox, the judge's backend).

`summary(task, problems, grades)` gives the counts every benchmark reports (items, accuracy, answered,
unanswered, timed out, scorer errors) plus the task's own metrics from its optional
`aggregate(pairs) -> dict` (IFEval's four metrics, HEx-PHI's per-category rates, AlpacaEval's mean reward).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from repro.records import Problem, Score
from repro.scoring import Graded
from repro.tasks import Task

log = logging.getLogger(__name__)


def as_graded(s: Score) -> Graded:
    """Any Score as a Graded (a plain Score is answered iff it has a prediction)."""
    if isinstance(s, Graded):
        return s
    return Graded(correct=bool(s.correct), pred=s.pred, finished=s.finished, answered=s.pred is not None)


def _one(task: Task, p: Problem, c: str) -> Graded:
    try:
        return as_graded(task.score(p, c))
    except Exception as e:  # a scorer crash is a wrong answer, counted; never a failed job
        log.warning("scorer of %s failed on %s: %s: %s", task.name, p.id, type(e).__name__, str(e)[:200])
        return Graded(correct=False, pred=None, answered=False, error=f"{type(e).__name__}: {e}"[:300])


def grade(task: Task, problems: Sequence[Problem], completions: Sequence[str]) -> list[Graded]:
    """Grade parallel lists of problems and completions with the task's scorer."""
    many = getattr(task, "score_many", None)
    if many is not None:
        try:
            out = [as_graded(s) for s in many(list(problems), list(completions))]
            if len(out) == len(problems):
                return out
            log.warning("%s.score_many returned %d grades for %d items; grading one by one", task.name,
                        len(out), len(problems))
        except Exception as e:
            log.warning("%s.score_many failed (%s: %s); grading one by one", task.name, type(e).__name__,
                        str(e)[:200])
    return [_one(task, p, c) for p, c in zip(problems, completions, strict=True)]


def row_fields(g: Graded) -> dict[str, Any]:
    """What a sample row records about its grade."""
    row: dict[str, Any] = {"pred": g.pred, "correct": bool(g.correct), "answered": bool(g.answered)}
    if g.timed_out:
        row["timed_out"] = True
    if g.error:
        row["scorer_error"] = g.error
    if g.extra:
        row["score_extra"] = g.extra
    return row


def summary(task: Task, problems: Sequence[Problem], grades: Sequence[Graded]) -> dict[str, Any]:
    """Counts over graded samples (one problem per grade) plus the task's `aggregate` metrics."""
    n = len(grades)
    out: dict[str, Any] = {
        "n_scored": n,
        "n_correct": sum(bool(g.correct) for g in grades),
        "n_unanswered": sum(not g.answered for g in grades),
        "n_timed_out": sum(bool(g.timed_out) for g in grades),
        "n_scorer_errors": sum(bool(g.error) for g in grades),
    }
    out["unanswered_rate"] = round(out["n_unanswered"] / n, 6) if n else 0.0
    agg = getattr(task, "aggregate", None)
    if agg is not None:
        out.update(agg(list(zip(problems, grades))))
    return out

"""Scoring shared by every benchmark: the answer part of a completion, and a richer grade record.

Reasoning models write `<think> ... </think>` before their answer. Every scorer reads only the answer part:
the text after the last `</think>`. A completion that opens `<think>` and never closes it has no answer
(`answer_part` returns None): it is scored wrong and counted as unanswered in the metrics. A completion
without any tag is all answer. Both scans are linear, so a 1 MB reply costs milliseconds.

`Graded` is a `repro.records.Score` with what the metrics count besides correctness: whether the completion
had an answer part, whether the scorer hit its deadline or crashed, and task-specific numbers (`extra`,
e.g. a reward or a judge score) that the task's `aggregate` turns into metrics.

    answer_part("<think>hmm</think> The answer is \\boxed{4}.")  # ' The answer is \\boxed{4}.'
    answer_part("<think>still thinking")                         # None (unanswered)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repro.records import Score

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def answer_part(text: str) -> str | None:
    """The text after the last `</think>`; None when a `<think>` is opened after it (or with none) and never
    closed; the whole text when there is no tag at all."""
    close = text.rfind(THINK_CLOSE)
    opened = text.rfind(THINK_OPEN)
    if opened > close:  # reasoning still open at the end (includes: opened, never closed)
        return None
    return text if close < 0 else text[close + len(THINK_CLOSE):]


@dataclass
class Graded(Score):
    """A Score plus what the metrics count: `answered` (the completion has an answer part and the scorer found
    an answer in it), `timed_out` / `error` (the scorer overran its deadline or failed: counted wrong),
    `extra` (task-specific numbers for the task's `aggregate`), `seconds` (scoring time, for tests and logs)."""

    answered: bool = True
    timed_out: bool = False
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # time spent scoring this item (not written to sample rows: they must be reproducible)


def unanswered(reason: str = "reasoning never closed") -> Graded:
    """The grade of a completion without an answer part."""
    return Graded(correct=False, pred=None, finished=False, answered=False, extra={"unanswered": reason})

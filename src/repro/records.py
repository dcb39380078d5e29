"""The records stages exchange through files (JSON lines), as plain dataclasses.

- `Problem`: one task item (prompt + gold answer), written by `generate` and by benchmark loaders.
- `Step` / `Trace`: a teacher's solution, split into typed reasoning steps; `completion` is the training
  target text (steps joined by blank lines, ending with the final answer).
- `Score`: how one model output was graded.

Every record round-trips through `to_json()` / `from_json()` so files stay the single interface.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

STEP_TYPES = ("Propose", "Deduce", "Verify", "Backtrack", "Conclude")

R = TypeVar("R")


@dataclass
class Problem:
    """One task item. `meta` holds task-specific structure (numbers, bridge entity, ...), JSON-able."""

    id: str
    task: str
    split: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """One reasoning step of a trace with its ground-truth type (one of STEP_TYPES)."""

    type: str
    text: str


@dataclass
class Trace:
    """A teacher's (or filter-modified) solution to one problem: the SFT example."""

    problem_id: str
    task: str
    teacher: str
    prompt: str
    completion: str
    answer: str
    gold: str
    steps: list[Step] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Trace":
        d = dict(d)
        d["steps"] = [Step(**s) for s in d.get("steps", [])]
        return Trace(**d)


@dataclass
class Score:
    """The grade of one model output: `pred` is the extracted answer (None if none was found);
    `finished` is False when the output ended without a final answer (e.g. hit the length limit)."""

    correct: bool
    pred: str | None
    finished: bool = True


def write_json(path: Path, obj: Any, indent: int = 2) -> None:
    """Write `obj` as canonical JSON (sorted keys, `indent`, trailing newline): the one format of every
    summary, metrics and manifest file, so the same content always gives the same bytes."""
    Path(path).write_text(json.dumps(obj, indent=indent, sort_keys=True) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: Iterable[Any]) -> int:
    """Write dataclasses or dicts as canonical JSON lines (sorted keys); returns the row count."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            d = dataclasses.asdict(r) if dataclasses.is_dataclass(r) else r
            f.write(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file. A damaged row (not UTF-8, not JSON) or a file cut short mid-row
    is a `repro.rows.RowError` naming the file and row (exit 2), never a half-read file."""
    from repro.rows import iter_jsonl

    for _, obj in iter_jsonl(path):
        yield obj

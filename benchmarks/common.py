"""What every benchmark returns: figures, each measured beside its alternative in the same run.

A `Figure` is one number (`value`, `unit`) with, where there is one, the alternative it is compared with
(`alt`, `alt_value`), their `ratio` (value / alt_value, oriented so that higher is better unless
`lower_is_better`), a `target` on the ratio or the value, whether it was `met`, and a `note`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    group: str
    name: str
    value: float
    unit: str
    alt: str | None = None
    alt_value: float | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def examples(n: int, seed: int = 0, task: str = "modarith") -> list[dict[str, str]]:
    """n prompt/completion records written by the convergent teacher (the data the miniatures train on)."""
    from repro.tasks import get_task
    from repro.teachers import get_teacher

    t = get_task(task)
    teacher = get_teacher("convergent")
    rng = random.Random(seed)
    out = []
    for p in t.problems(t.Args(), "train", n, seed):
        tr = teacher.write(p, teacher.Args(), rng)
        if tr is not None:
            out.append({"prompt": tr.prompt, "completion": tr.completion})
    return out

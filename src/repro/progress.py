"""Progress of long work as plain log lines: items or steps done, rate and ETA, at a bounded interval.

Jobs run without a terminal (under Snakemake, DVC or SLURM), where progress bars are switched off, so
every long loop reports through this instead: a line at most every `interval` seconds (default 10 s, or
$REPRO_PROGRESS_INTERVAL), plus the first and the last. The same lines show in every engine's job log.

    with Progress("generate", total=len(prompts), unit="prompts") as p:
        for batch in batches:
            ...
            p.update(len(batch))
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger("repro.progress")


def default_interval() -> float:
    try:
        return float(os.environ.get("REPRO_PROGRESS_INTERVAL", "10"))
    except ValueError:
        return 10.0


def _fmt_s(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Counts done work and logs `PROGRESS <what>: done/total unit (pct) rate/s ETA` lines."""

    def __init__(self, what: str, total: int | None, unit: str = "items", interval: float | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.interval = default_interval() if interval is None else interval
        self.log = logger or log
        self.done = 0
        self.t0 = time.monotonic()
        self.last = -1e18

    def line(self) -> str:
        el = time.monotonic() - self.t0
        rate = self.done / el if el > 0 else 0.0
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = _fmt_s((self.total - self.done) / rate) if rate > 0 else "?"
            return (f"PROGRESS {self.what}: {self.done}/{self.total} {self.unit} ({pct:.0f}%) "
                    f"{rate:.2f} {self.unit}/s elapsed {_fmt_s(el)} ETA {eta}")
        return f"PROGRESS {self.what}: {self.done} {self.unit} {rate:.2f} {self.unit}/s elapsed {_fmt_s(el)}"

    def update(self, n: int = 1, **extra: Any) -> None:
        """Add `n` done; log a line when `interval` has passed since the last one (or at the end)."""
        self.done += n
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if now - self.last >= self.interval or finished:
            self.last = now
            tail = "".join(f" {k} {v}" for k, v in extra.items())
            self.log.info("%s%s", self.line(), tail)

    def __enter__(self) -> "Progress":
        self.log.info("%s", self.line())
        self.last = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None and (self.total is None or self.done < self.total):
            self.log.info("%s", self.line())

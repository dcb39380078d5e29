"""Progress of long work as plain log lines: items or steps done, rate and ETA, at a bounded interval.

Jobs run without a terminal (under Snakemake, DVC or SLURM), where progress bars are switched off, so
every long loop reports through this instead. A line is logged when work is reported done and at least
`interval` seconds (default 10 s, or $REPRO_PROGRESS_INTERVAL) have passed since the last one, plus the
first and the last line. A heartbeat thread also logs the current line whenever 0.8 `interval` passes with
no line (one slow batch, a long model load inside the loop), so a running job's log is never older than
the interval: `repro status` reads that as "alive", and the last line as how far it got.

    with Progress("generate", total=len(prompts), unit="prompts") as p:
        for batch in batches:
            ...
            p.update(len(batch))

Lines look like `PROGRESS generate: 120/400 prompts (30%) 4.10 prompts/s elapsed 0m29s ETA 1m08s`;
`parse(line)` reads one back.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any

log = logging.getLogger("repro.progress")

PREFIX = "PROGRESS "
_LINE = re.compile(
    r"PROGRESS (?P<what>.+?): (?P<done>\d+)(?:/(?P<total>\d+))? (?P<unit>\S+)(?: \((?P<pct>\d+)%\))? "
    r"(?P<rate>[\d.]+) \S+/s elapsed (?P<elapsed>\S+)(?: ETA (?P<eta>\S+))?"
)


def default_interval() -> float:
    """$REPRO_PROGRESS_INTERVAL seconds (default 10; at least 0.05)."""
    try:
        return max(0.05, float(os.environ.get("REPRO_PROGRESS_INTERVAL", "10")))
    except ValueError:
        return 10.0


def _fmt_s(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def parse(line: str) -> dict[str, Any] | None:
    """The fields of a progress line (what, done, total, unit, pct, rate, elapsed, eta), or None."""
    m = _LINE.search(line)
    if not m:
        return None
    d: dict[str, Any] = m.groupdict()
    d["done"] = int(d["done"])
    d["total"] = int(d["total"]) if d["total"] else None
    d["pct"] = int(d["pct"]) if d["pct"] else None
    d["rate"] = float(d["rate"])
    return d


class Progress:
    """Counts done work and logs `PROGRESS <what>: done/total unit (pct) rate/s elapsed ETA` lines.

    Use as a context manager: entering logs the first line and starts the heartbeat (unless
    `heartbeat=False`), leaving logs the last line (if not logged already) and stops it."""

    def __init__(self, what: str, total: int | None, unit: str = "items", interval: float | None = None,
                 logger: logging.Logger | None = None, heartbeat: bool = True) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.interval = default_interval() if interval is None else interval
        self.log = logger or log
        self.done = 0
        self.t0 = time.monotonic()
        self.last = -1e18
        self.extra = ""
        self._heartbeat = heartbeat
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self) -> str:
        el = time.monotonic() - self.t0
        rate = self.done / el if el > 0 else 0.0
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = _fmt_s((self.total - self.done) / rate) if rate > 0 else "?"
            return (f"{PREFIX}{self.what}: {self.done}/{self.total} {self.unit} ({pct:.0f}%) "
                    f"{rate:.2f} {self.unit}/s elapsed {_fmt_s(el)} ETA {eta}{self.extra}")
        return f"{PREFIX}{self.what}: {self.done} {self.unit} {rate:.2f} {self.unit}/s elapsed {_fmt_s(el)}{self.extra}"

    def _emit(self) -> None:
        with self._lock:
            self.last = time.monotonic()
            self.log.info("%s", self.line())

    def update(self, n: int = 1, **extra: Any) -> None:
        """Add `n` done (extra key/values, e.g. loss, are shown on the lines from now on); log a line
        when `interval` has passed since the last one, or when the total is reached."""
        self.done += n
        if extra:
            self.extra = "".join(f" {k} {v}" for k, v in extra.items())
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if now - self.last >= self.interval or finished:
            self._emit()

    def _beat(self) -> None:
        # a line after 0.8 interval of silence, checked every 0.1 interval: the newest line stays younger
        # than the interval even when the process is not scheduled for a moment
        while not self._stop.wait(max(0.05, min(self.interval / 10, 1.0))):
            if time.monotonic() - self.last >= 0.8 * self.interval:
                self._emit()

    def __enter__(self) -> "Progress":
        self._emit()
        if self._heartbeat:
            self._thread = threading.Thread(target=self._beat, name=f"progress-{self.what}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc[0] is None and (self.total is None or self.done < self.total):
            self._emit()

"""Math answer grading with math-verify in worker processes under a hard per-answer deadline.

Why a process: math-verify's own timeouts use `signal.alarm` (they raise when called from a thread), and
`verify`/`str()` on some parsed objects hang in C code beyond any alarm (math-verify issues #63, #65; e.g.
`\\boxed{\\dfrac{5^{\\left(5^{\\left(5^{\\left(5^5\\right)}\\right)} - 4\\right)} - 5}{16}}`). So every answer
is graded in a worker process; the parent waits for it with a hard deadline and, on overrun, kills the
worker, starts a new one and records the answer as incorrect with `timed_out=True`.

Protocol: the parent sends a batch of (gold, prediction) pairs down a pipe; the worker streams back one
result per item as soon as it has it, so the deadline is per item even inside a batch: on overrun the
culprit is the item in flight, the worker is replaced and the rest of the batch is sent again. Only plain
strings and bools cross the pipe, never sympy objects.

    from repro.grading import Grader
    with Grader(workers=2, deadline=5.0) as g:
        g.grade("1/2", "so the answer is \\boxed{2/4}")   # GradeResult(correct=True, extracted='2/4', ...)
        g.grade_many([("42", "\\boxed{42}"), ("7", "8")])

`shared_grader()` returns one process-wide Grader (created on first use, closed at exit).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from multiprocessing.connection import Connection, wait
from typing import Any, Iterable

log = logging.getLogger(__name__)

_START_TIMEOUT = 120.0  # seconds a fresh worker may take to import math-verify before we give up
_BATCH = 32  # items per request sent down a pipe


@dataclass(frozen=True)
class GradeResult:
    """How one answer was graded. `extracted` is math-verify's extracted prediction string (None if none);
    `seconds` is the wall time the parent waited for this item; `error` names a worker crash, if any."""

    correct: bool
    extracted: str | None
    timed_out: bool
    seconds: float
    error: str | None = None


# ---------------------------------------------------------------------------------------------- helpers


def extract_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) with balanced braces; None if there is none.
    Escaped braces `\\{`, `\\}` inside do not count towards the balance. One linear pass (a 1 MB reply of
    unclosed boxes costs milliseconds): the last box to open among those that close wins."""
    opens = [m.end() for m in _BOX.finditer(text)]
    if not opens:
        return None
    best: tuple[int, int] | None = None
    stack: list[int] = []  # for each open brace: index into `opens` of the box it starts, or -1
    k, i, n = 0, opens[0] - 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            if k < len(opens) and i == opens[k] - 1:
                stack.append(k)
                k += 1
            else:
                stack.append(-1)
        elif c == "}" and stack:
            j = stack.pop()
            if j >= 0 and (best is None or j > best[0]):
                best = (j, i)
        if not stack and k < len(opens):
            i = max(i + 1, opens[k] - 1)  # skip text between boxes
            continue
        i += 1
    if best is None:
        return None
    return text[opens[best[0]]:best[1]].strip()


MAX_ANSWER_CHARS = 2000  # a boxed answer longer than this is not a competition answer
MAX_TAIL_CHARS = 4000  # without a box, math-verify reads only the end of the answer part
MAX_NESTING = 64  # brace/parenthesis depth beyond which sympy recursion is hopeless


def screen_answer(text: str) -> str | None:
    """Why `text` (what would go to math-verify) is rejected without grading, or None: one linear scan, so
    a 1 MB reply or 5,000-deep nesting costs milliseconds in the parent instead of a worker's deadline."""
    if len(text) > MAX_ANSWER_CHARS + len("\\boxed{}") and text.startswith("\\boxed{"):
        return f"answer too long ({len(text)} chars)"
    depth = deepest = 0
    for c in text:
        if c in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "})]" and depth:
            depth -= 1
    if deepest > MAX_NESTING:
        return f"nesting too deep ({deepest} levels)"
    return None


_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_DELIMS = re.compile(r"\\boxed|\\fbox|(?<!\\)\$|\\\(|\\\[")  # an escaped dollar \$ is a currency sign
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def _gold_text(gold: str) -> str:
    """Gold answers are bare LaTeX (`\\frac{1}{2}`, `\\{1,2\\}`): box them so math-verify reads them as LaTeX."""
    g = gold.strip()
    return g if _DELIMS.search(g) else "\\boxed{" + g + "}"


def _is_bare_answer(pred: str) -> bool:
    """A short one-line answer with no LaTeX delimiters and no English words (e.g. `2, 1`, `3/4`)."""
    p = pred.strip()
    words = _WORD.search(re.sub(r"\\[A-Za-z]+\{[^{}]*\}", "", p))  # \text{..}, \begin{..} are not prose
    return 0 < len(p) <= 80 and "\n" not in p and not _DELIMS.search(p) and not words


# ----------------------------------------------------------------------------------------------- worker


def _worker_main(conn: Connection) -> None:
    """Worker loop: receive a list of (gold, pred) pairs, send back (correct, extracted, error) per item."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we time out ourselves: silence its warning
    from functools import lru_cache

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]

    def _parse(text: str) -> list[Any]:
        # parsing_timeout=None: no signal.alarm; the parent's deadline is the only timeout.
        return parse(text, extraction_config=config, parsing_timeout=None)

    @lru_cache(maxsize=4096)
    def _gold(gold: str) -> Any:
        return _parse(_gold_text(gold))

    def _one(gold: str, pred: str) -> tuple[bool, str | None, str | None]:
        parsed: list[Any] = []
        if _is_bare_answer(pred):  # "2, 1" alone would parse as 1; as LaTeX it is the set/tuple
            parsed = _parse("$" + pred.strip() + "$")
        if not parsed:
            parsed = _parse(pred)
        extracted = next((x for x in reversed(parsed) if isinstance(x, str)), None)
        g = _gold(gold)
        if not g or not parsed:
            return False, extracted, None
        return bool(verify(g, parsed, timeout_seconds=None)), extracted, None

    _one("1", "\\boxed{1}")  # warm sympy's lazy imports and caches before any deadline applies
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        for gold, pred in msg:
            try:
                out = _one(gold, pred)
            except Exception as e:  # math-verify raising is a wrong answer, not a worker failure
                out = (False, None, f"{type(e).__name__}: {e}"[:200])
            conn.send(out)


def _serve(fd: int) -> None:
    """Entry point of a worker process started by `_Worker`: serve requests on the inherited socket `fd`."""
    try:  # Linux: die with the parent, so a worker stuck in C code never outlives it
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    _worker_main(Connection(fd))


class _Worker:
    """One worker process and the parent's end of its socket, plus the items it is working on.

    A plain `python -c` subprocess rather than a multiprocessing start method: spawn and forkserver re-run
    the parent's `__main__` module in the child (breaking scripts without a main guard and re-importing
    whatever the script imports); a fresh interpreter imports only math-verify (~1 s)."""

    def __init__(self) -> None:
        self.conn, child = mp.Pipe(duplex=True)
        src = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))
        code = "import sys; from repro.grading import _serve; _serve(int(sys.argv[1]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(child.fileno())],
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env,
        )
        child.close()
        self.items: deque[int] = deque()  # indices of the items sent and not yet answered
        self.since = 0.0  # when the item at the head of `items` started
        self.started = time.monotonic()
        self.ready = False  # set once the worker has said "ready" (math-verify imported and warm)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the worker is ready (at most what is left of its start-up allowance)."""
        if self.ready:
            return
        left = _START_TIMEOUT - (time.monotonic() - self.started) if timeout is None else timeout
        try:
            ok = self.conn.poll(max(0.0, left)) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ok = False
        if not ok:
            self.kill()
            raise RuntimeError(f"grading worker did not start (exit code {self.proc.poll()})")
        self.ready = True

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.wait(2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


# ----------------------------------------------------------------------------------------------- grader


class Grader:
    """A pool of math-verify workers with a hard per-answer deadline (seconds). A context manager; workers
    start on first use. Not thread-safe: use one Grader per thread."""

    def __init__(self, workers: int = 1, deadline: float = 5.0, batch: int = _BATCH) -> None:
        if workers < 1 or deadline <= 0 or batch < 1:
            raise ValueError("workers and batch must be >= 1 and deadline > 0")
        self.n_workers, self.deadline, self.batch = workers, deadline, batch
        self._workers: list[_Worker] = []
        self._spare: _Worker | None = None  # a started worker that replaces the next one to overrun
        self.restarts = 0  # workers killed and replaced after an overrun or a crash

    # -- lifecycle
    def start(self) -> "Grader":
        if not self._workers:
            self._workers = [_Worker() for _ in range(self.n_workers)]
            for w in self._workers:
                w.wait_ready()
            self._spare = _Worker()  # ready to replace the first worker that overruns, without a wait
        return self

    def close(self) -> None:
        for w in self._workers + ([self._spare] if self._spare else []):
            w.stop()
        self._workers, self._spare = [], None

    def __enter__(self) -> "Grader":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- grading
    def grade(self, gold: str, pred: str) -> GradeResult:
        """Grade one prediction text (a whole completion or a bare answer) against a gold answer."""
        return self.grade_many([(gold, pred)])[0]

    def grade_many(self, pairs: Iterable[tuple[str, str]]) -> list[GradeResult]:
        """Grade (gold, prediction) pairs in order, spread over the workers in batches; every item has its
        own deadline, counted from when the worker reached it."""
        items: list[tuple[str, str]] = [(str(g), str(p)) for g, p in pairs]
        if not items:
            return []
        self.start()
        try:
            return self._run(items)
        except BaseException:  # e.g. KeyboardInterrupt: workers hold stale work; start afresh next time
            self.close()
            raise

    def _run(self, items: list[tuple[str, str]]) -> list[GradeResult]:
        out: list[GradeResult | None] = [None] * len(items)
        todo: deque[list[int]] = deque(
            list(range(i, min(i + self.batch, len(items)))) for i in range(0, len(items), self.batch)
        )
        while todo or any(w.items for w in self._workers):
            now = time.monotonic()
            for w in self._workers:
                if w.ready and not w.items and todo:
                    idx = todo.popleft()
                    w.conn.send([items[i] for i in idx])
                    w.items, w.since = deque(idx), now
            busy = [w for w in self._workers if w.items]
            starting = [w for w in self._workers if not w.ready]  # replacements still importing
            ends = [w.since + self.deadline for w in busy] + [w.started + _START_TIMEOUT for w in starting]
            timeout = max(0.0, min(ends) - time.monotonic())
            ready = wait([w.conn for w in busy + starting], timeout)  # a dead worker's socket reads as ready
            for k, w in enumerate(self._workers):
                if not w.ready:
                    if w.conn in ready or time.monotonic() - w.started > _START_TIMEOUT:
                        w.wait_ready(timeout=0.0)  # raises if it died or never came up
                    continue
                if not w.items:
                    continue
                if w.conn in ready:
                    self._drain(w, out)
                now = time.monotonic()
                if w.items and (now - w.since > self.deadline or not w.alive()):
                    self._replace(k, out, todo, now)
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]

    def _drain(self, w: _Worker, out: list[GradeResult | None]) -> None:
        """Read every result the worker has sent so far."""
        try:
            while w.items and w.conn.poll():
                correct, extracted, error = w.conn.recv()
                now = time.monotonic()
                i = w.items.popleft()
                out[i] = GradeResult(correct, extracted, False, now - w.since, error)
                w.since = now
        except (EOFError, OSError):
            pass  # the worker died; _replace handles the item in flight

    def _replace(self, k: int, out: list[GradeResult | None], todo: deque[list[int]], now: float) -> None:
        """Kill worker k, fail its item in flight, requeue the rest of its batch, swap in a new worker."""
        w = self._workers[k]
        alive = w.alive()
        i = w.items.popleft()
        out[i] = GradeResult(
            False, None, alive, now - w.since, None if alive else f"worker died (exit {w.proc.returncode})"
        )
        log.warning("grading item %d %s after %.2fs; restarting worker", i,
                    "timed out" if alive else "crashed its worker", now - w.since)
        if w.items:
            todo.appendleft(list(w.items))
        w.kill()
        self.restarts += 1
        # Swap in the spare (it has been importing math-verify meanwhile) and start the next spare; never
        # block here: the other workers' deadlines keep running while a replacement comes up.
        self._workers[k] = self._spare or _Worker()
        self._spare = _Worker()


_SHARED: tuple[int, Grader] | None = None


def shared_grader() -> Grader:
    """The process-wide Grader (1 worker, 5 s deadline), created on first use (again in a forked child)
    and closed at exit."""
    global _SHARED
    if _SHARED is None or _SHARED[0] != os.getpid():
        _SHARED = (os.getpid(), Grader())
        atexit.register(_SHARED[1].close)
    return _SHARED[1]

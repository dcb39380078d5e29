"""One writer per job: a lock file per job id on the shared file system, held while the job runs.

    with JobLock(paths.lock_file(job.stage, job.dirname)) as lock:
        ...   # only one process (on any host) runs this job now

The lock is a file created atomically with O_CREAT|O_EXCL (atomic on local file systems and on NFSv3+),
holding JSON: host, pid, the process's start time, the time it was taken and a random token. While the
lock is held a background thread touches the file every `heartbeat_s` seconds (its mtime is the
heartbeat). A second process that finds the lock taken:

- takes it over when it is stale: the holder is a dead process on this host (its pid is gone, or the pid
  now belongs to a process that started later), or, on any host, its heartbeat is older than `lease_s`
  (the holder's node died or lost the file system);
- otherwise waits, polling, up to `wait_s` seconds, logging who holds it; then stops with a message naming
  the holder (host, pid, start time).

Cross-host staleness rests on the heartbeat alone: a holder on another host is presumed alive while its
lock file's mtime is younger than the lease (default 600 s, $REPRO_LOCK_LEASE_S), so the clocks of the
nodes and the file server must agree to well within the lease, and a holder that is frozen (SIGSTOP,
a suspended SLURM job) for longer than the lease loses its lock. A holder checks that it still owns the
lock before it publishes its result (`JobLock.check`), so a taken-over holder never overwrites the
new holder's work.

Breaking a stale lock is itself serialized by a second O_EXCL file (`<lock>.break`): under it the lock is
re-read and removed only if it is still the same stale holder, so two processes that both find the same
stale lock cannot remove a fresh lock that a third process took in between.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.errors import ReproError

log = logging.getLogger(__name__)

BREAK_STALE_S = 60.0  # a `.break` file older than this was left by a process killed while breaking a lock


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise ReproError(f"${name}: expected a number of seconds, got {os.environ.get(name)!r}", exit_code=2) from None


def default_wait_s() -> float:
    """How long a second engine waits for a job another process runs ($REPRO_LOCK_WAIT_S, default 1 day)."""
    return _env_float("REPRO_LOCK_WAIT_S", 86400.0)


def default_lease_s() -> float:
    """Heartbeat age after which a lock of a process on another host counts as stale ($REPRO_LOCK_LEASE_S)."""
    return _env_float("REPRO_LOCK_LEASE_S", 600.0)


def process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux /proc), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether `pid` runs on this host (and, if `start` is known, is the same process, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start is not None:
        now = process_start(pid)
        if now is not None and now != start:
            return False
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written in the lock file."""

    host: str
    pid: int
    started: str
    token: str
    proc_start: str | None = None

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.started}"


def _read(path: Path) -> tuple[Holder | None, float | None]:
    """The holder and the heartbeat (mtime) of a lock file; (None, None) if there is none, (None, mtime)
    if it is unreadable (being written, or truncated)."""
    try:
        st = path.stat()
        data = json.loads(path.read_text())
        h = Holder(host=str(data["host"]), pid=int(data["pid"]), started=str(data["started"]),
                   token=str(data["token"]), proc_start=data.get("proc_start"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return None, path.stat().st_mtime
        except OSError:
            return None, None
    return h, st.st_mtime


class JobLock:
    """An exclusive, heartbeated lock file; use as a context manager or with acquire()/release()."""

    def __init__(self, path: Path, wait_s: float | None = None, lease_s: float | None = None,
                 heartbeat_s: float | None = None, poll_s: float = 1.0, what: str = "") -> None:
        self.path = Path(path)
        self.wait_s = default_wait_s() if wait_s is None else wait_s
        self.lease_s = default_lease_s() if lease_s is None else lease_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else max(1.0, min(60.0, self.lease_s / 10))
        self.poll_s = poll_s
        self.what = what or self.path.name
        self.holder: Holder | None = None
        self.waited_for: Holder | None = None  # the holder we waited for, if any
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ acquire

    def _try_create(self) -> bool:
        me = Holder(host=socket.gethostname(), pid=os.getpid(),
                    started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), token=secrets.token_hex(8),
                    proc_start=process_start(os.getpid()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(me.__dict__, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        self.holder = me
        return True

    def stale_reason(self, holder: Holder | None, mtime: float | None) -> str | None:
        """Why the lock held by `holder` (heartbeat `mtime`) is stale, or None while it is live."""
        if mtime is None:
            return None  # gone: not stale, just retry
        age = time.time() - mtime
        if holder is None:  # unreadable: a writer died between create and write, or it is being written
            return f"unreadable lock file, untouched for {age:.0f} s" if age > max(5.0, self.heartbeat_s * 3) else None
        if holder.host == socket.gethostname() and not pid_alive(holder.pid, holder.proc_start):
            return f"its process ({holder.describe()}) is dead"
        if age > self.lease_s:
            return f"no heartbeat for {age:.0f} s (lease {self.lease_s:.0f} s; {holder.describe()})"
        return None

    def _break(self, seen: Holder | None, seen_mtime: float, reason: str) -> None:
        """Remove the lock if it still is the stale one we saw, serialized by `<lock>.break`."""
        brk = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(brk, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if time.time() - brk.stat().st_mtime > BREAK_STALE_S:
                    brk.unlink()
            except OSError:
                pass
            return
        os.close(fd)
        try:
            holder, mtime = _read(self.path)
            same = (holder == seen) if seen is not None else (holder is None and mtime == seen_mtime)
            if same and mtime is not None:
                log.warning("%s: taking over a stale lock: %s", self.what, reason)
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
        finally:
            try:
                brk.unlink()
            except FileNotFoundError:
                pass

    def acquire(self) -> "JobLock":
        deadline = time.monotonic() + self.wait_s
        last_log = 0.0
        while True:
            if self._try_create():
                self._start_heartbeat()
                return self
            holder, mtime = _read(self.path)
            reason = self.stale_reason(holder, mtime)
            if reason is not None and mtime is not None:
                self._break(holder, mtime, reason)
                continue
            if holder is not None:
                self.waited_for = holder
            now = time.monotonic()
            if now >= deadline:
                who = holder.describe() if holder else "an unreadable lock file"
                raise ReproError(f"{self.path}: {self.what} is being run by {who}; gave up after waiting "
                                 f"{self.wait_s:.0f} s ($REPRO_LOCK_WAIT_S)")
            if holder is not None and now - last_log >= 60.0:
                log.info("%s is being run by %s; waiting (up to %.0f s more)", self.what, holder.describe(),
                         deadline - now)
                last_log = now
            time.sleep(min(self.poll_s, max(0.0, deadline - now)))

    # ---------------------------------------------------------------------------------------- heartbeat

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_s):
                try:
                    os.utime(self.path)
                except OSError:
                    pass

        self._beat = threading.Thread(target=beat, name=f"lock-heartbeat {self.path.name}", daemon=True)
        self._beat.start()

    def owned(self) -> bool:
        """Whether the lock file still names this process (it may have been taken over as stale)."""
        holder, _ = _read(self.path)
        return holder is not None and self.holder is not None and holder.token == self.holder.token

    def check(self) -> None:
        """Raise if the lock was taken over: the result must then not be published."""
        if not self.owned():
            holder, _ = _read(self.path)
            now = holder.describe() if holder else "nobody"
            raise ReproError(f"{self.path}: lost the lock of {self.what} (now held by {now}); "
                             "not publishing this run's result")

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
        if self.holder is not None and self.owned():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self.holder = None

    def __enter__(self) -> "JobLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

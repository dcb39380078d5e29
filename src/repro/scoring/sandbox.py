"""Run untrusted model-written Python programs: a separate process per test, with CPU-time, memory, file-size
and wall-clock limits, no network, and a scratch directory deleted afterwards.

Layers, each enough on its own for what it stops:
- resource limits set in the child before it starts (`RLIMIT_CPU`, `RLIMIT_AS`, `RLIMIT_FSIZE`, no core
  files), and a wall-clock deadline in the parent that SIGKILLs the child's whole process group (a
  program that sleeps uses no CPU);
- network: the child is moved into a fresh, empty network namespace (`unshare(CLONE_NEWNET)`; as non-root
  with `CLONE_NEWUSER` too) where no interface but a down loopback exists, so every `connect` fails; where
  namespaces are not allowed, the audit hook below still refuses it;
- a Python audit hook installed before the program runs (it cannot be removed from Python code) that
  refuses sockets, subprocesses, `fork`/`exec`, `ctypes`, and writing, renaming or deleting files outside
  the scratch directory;
- the program's stdin and stdout are files in the scratch directory (no pipes to fill; stdout size is capped
  by `RLIMIT_FSIZE`), its environment is empty but for PATH/HOME/LANG, its working directory is the scratch
  directory, and Python runs isolated (`-I`: no user site, no PYTHON* variables).

    from repro.scoring.sandbox import Limits, run_python
    r = run_python("print(input()[::-1])", stdin="abc\\n", limits=Limits(cpu_seconds=2))
    r.status, r.stdout   # ("ok", "cba\\n")

`status` is one of ok, error (non-zero exit or exception), timeout (CPU or wall limit), memory (the
allocation limit), blocked (the audit hook refused an operation), output_limit.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_VIOLATION = "SandboxViolation"

# Runs in the child: install the audit hook, then run the program as __main__.
_GUARD = r'''
import os, runpy, sys
_root = os.path.realpath(os.getcwd())
_deny = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
         "os.kill", "os.killpg", "ctypes.", "pty.", "os.chroot", "os.setuid", "os.setgid", "sys.addaudithook",
         "resource.setrlimit", "resource.prlimit", "webbrowser.", "urllib.Request", "http.client.", "ftplib.",
         "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.")
_paths = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.symlink", "os.link", "os.truncate", "os.chmod",
          "os.chown", "shutil.rmtree", "shutil.move", "shutil.copyfile"}

class SandboxViolation(PermissionError):
    pass

def _inside(p):
    try:
        p = os.fsdecode(p) if not isinstance(p, int) else None
    except Exception:
        return False
    if p is None:
        return True
    return os.path.realpath(os.path.join(_root, p)).startswith(_root + os.sep)

def _hook(event, args):
    if event.startswith(_deny):
        raise SandboxViolation(event + " is not allowed in the sandbox")
    if event == "open" and args and args[1] is not None and any(c in str(args[1]) for c in "wax+"):
        if not _inside(args[0]):
            raise SandboxViolation("writing outside the scratch directory")
    elif event in _paths and args and not all(_inside(a) for a in args[:2] if isinstance(a, (str, bytes))):
        raise SandboxViolation(event + " outside the scratch directory")

sys.addaudithook(_hook)
sys.argv[:] = ["prog.py"]
runpy.run_path("prog.py", run_name="__main__")
'''


@dataclass(frozen=True)
class Limits:
    """Resource limits of one program run."""

    cpu_seconds: float = 6.0
    wall_seconds: float = 12.0
    memory_mb: int = 1024
    output_mb: int = 16


@dataclass(frozen=True)
class RunResult:
    """What one run did: `status` (ok, error, timeout, memory, blocked, output_limit), its output and time."""

    status: str
    stdout: str
    stderr: str
    returncode: int | None
    seconds: float


@lru_cache(maxsize=1)
def _libc() -> Any:
    """libc, loaded in the parent: the child between fork and exec only calls into it (no loading, no
    allocation, which the memory limit or a threaded parent could make fail)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _try_unshare(flags: int) -> bool:
    return _libc().unshare(flags) == 0


@lru_cache(maxsize=1)
def network_isolation() -> str:
    """How the sandbox cuts the network here: "netns" (own namespace), "userns+netns", or "audit-hook-only"."""
    for name, flags in (("netns", _CLONE_NEWNET), ("userns+netns", _CLONE_NEWUSER | _CLONE_NEWNET)):
        try:
            r = subprocess.run([sys.executable, "-I", "-c", f"import ctypes,sys; sys.exit(ctypes.CDLL(None).unshare({flags}))"],
                               capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return name
    return "audit-hook-only"


def _preexec(limits: Limits, isolation: str) -> None:
    """In the child, before exec: own process group, empty network namespace, then the rlimits (last: the
    address-space limit applies to this fork of a possibly large parent until exec)."""
    os.setsid()
    if isolation == "netns":
        _try_unshare(_CLONE_NEWNET)
    elif isolation == "userns+netns":
        _try_unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    out = limits.output_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (out, out))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python(code: str, stdin: str = "", limits: Limits = Limits(), audit: bool = True) -> RunResult:
    """Run `code` as a Python program on `stdin` in the sandbox; `audit=False` drops the audit-hook layer
    (tests use it to show the other layers hold on their own)."""
    scratch = Path(tempfile.mkdtemp(prefix="repro-sandbox-"))
    isolation = network_isolation()
    if isolation != "audit-hook-only":
        _libc()
    t0 = time.monotonic()
    try:
        (scratch / "prog.py").write_text(code, encoding="utf-8")
        (scratch / "guard.py").write_text(_GUARD if audit else 'import runpy\nrunpy.run_path("prog.py", run_name="__main__")\n')
        (scratch / "stdin.txt").write_text(stdin, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
        with open(scratch / "stdin.txt", "rb") as fin, open(scratch / "stdout.txt", "wb") as fout, \
                open(scratch / "stderr.txt", "wb") as ferr:
            proc = subprocess.Popen([sys.executable, "-I", "guard.py"], cwd=scratch, env=env, stdin=fin,
                                    stdout=fout, stderr=ferr, preexec_fn=lambda: _preexec(limits, isolation))
            wall_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                wall_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        seconds = time.monotonic() - t0
        stdout = (scratch / "stdout.txt").read_bytes()[: 4 * 1024 * 1024].decode("utf-8", "replace")
        stderr = (scratch / "stderr.txt").read_bytes()[-20000:].decode("utf-8", "replace")
        rc = proc.returncode
        if wall_out or rc in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in stderr:
            status = "timeout"
        elif "MemoryError" in stderr or rc == -signal.SIGSEGV:
            status = "memory"
        elif rc == -signal.SIGXFSZ or "File too large" in stderr:
            status = "output_limit"
        elif _VIOLATION in stderr:
            status = "blocked"
        elif rc != 0:
            status = "error"
        else:
            status = "ok"
        return RunResult(status, stdout, stderr[-2000:], rc, seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

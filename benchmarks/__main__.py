"""Run the benchmark suite: every figure beside its alternative, a table on stdout, JSON to a file.

    python -m benchmarks                         # everything but the main job (<= 10 min on 2 cores)
    python -m benchmarks --only train,generate   # some groups
    python -m benchmarks --quick                 # smaller sizes (a smoke test of the suite)
    python -m benchmarks --main-job              # also run the default experiments (~20 min) and time them
    python -m benchmarks --workspace DIR         # no-op figures in a finished workspace of yours

Groups: train, generate, plan, noop, cache, grading (and main with --main-job). The machine's load average
before and after is recorded: these machines are shared, so compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import Figure

GROUPS = ("cache", "plan", "grading", "train", "generate", "noop")
DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(figs: list[Figure]) -> str:
    rows = [("group", "figure", "value", "alternative", "alt value", "ratio", "target", "met")]
    for f in figs:
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f.group, f.name, f"{_fmt(f.value)} {f.unit}", f.alt or "-",
                     _fmt(f.alt_value) + (f" {f.unit}" if f.alt_value is not None else ""), _fmt(f.ratio),
                     f.target or "-", met))
    widths = [min(70, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
    lines = ["  ".join(c[:w].ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  [{f.group}] {f.name}: {f.note}" for f in figs if f.note]
    return "\n".join(lines + ([""] + ["notes:"] + notes if notes else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help=f"comma-separated groups ({', '.join(GROUPS)}, main)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--main-job", action="store_true", help="also time the default experiments (long)")
    ap.add_argument("--workspace", default=None, help="a finished workspace for the no-op figures")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the train and generate comparisons (default 1: both sides alike)")
    ap.add_argument("--json", default=None, help=f"where to write the figures (default for a full run: {DEFAULT_OUT}, "
                    "the committed figures; a run with --only or --quick writes JSON only when given this)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    groups = [g for g in a.only.split(",") if g] or list(GROUPS)
    if a.main_job and "main" not in groups:
        groups.append("main")
    unknown = [g for g in groups if g not in (*GROUPS, "main")]
    if unknown:
        ap.error(f"unknown group(s): {', '.join(unknown)}")
    load0, t_start = os.getloadavg(), time.perf_counter()
    figs: list[Figure] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for g in groups:
        mod = importlib.import_module(f"benchmarks.bench_{g}")
        kw: dict[str, object] = {"quick": a.quick, "threads": a.threads}
        if g == "noop":
            kw["workspace"] = a.workspace
        t0 = time.perf_counter()
        print(f"-- {g} ...", file=sys.stderr, flush=True)
        try:
            figs += mod.run(**kw)
        except Exception as e:  # a broken group must not lose the others' figures
            errors[g] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        timings[g] = round(time.perf_counter() - t0, 1)
        print(f"   {g}: {timings[g]:.0f} s, load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": socket.gethostname(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "commit": commit,
        "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(wall, 1), "group_s": timings, "quick": a.quick, "threads": a.threads,
        "figures": [f.to_json() for f in figs], "errors": errors,
    }
    out = a.json or (None if a.only or a.quick else str(DEFAULT_OUT))
    if out:
        Path(out).write_text(json.dumps(record, indent=1) + "\n")
    print(table(figs))
    print(f"\n{len(figs)} figures in {wall / 60:.1f} min; load average {load0[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs); "
          f"JSON: {out or 'not written (a partial run keeps results.json as it is; --json PATH to save it)'}")
    for g, e in errors.items():
        print(f"ERROR in {g}: {e}")
    missed = [f for f in figs if f.met is False]
    if missed:
        print(f"targets missed: {len(missed)} (see the table and notes)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

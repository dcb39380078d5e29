"""`repro`: the command line. Bad input exits 2 with `file: path: message`; a failed job exits 1.

    repro validate SPEC... [--set PATH=VALUE]...     check specs (exit 0 / 2)
    repro plan SPEC... [--json]                       what will run, shared work, estimates, state
    repro run ID [--specs A,B] [--set ...]            run one job (what Snakemake and DVC call)
    repro report [SPEC...]                            run the report jobs and publish reports/
    repro publish [SPEC...]                           write reports/index.html and reports/<spec>.html
    repro dvc [--check | --adopt]                     render dvc.yaml from the plan (check it is current;
                                                      adopt jobs already run, e.g. by Snakemake)
    repro status [SPEC...] [--json]                   jobs done, running (holder, progress), failed (log), to do
    repro verify JOB|SPEC...                          rerun jobs in a scratch folder and compare hashes
    repro unlock                                      clear Snakemake's lock left by a killed run (docs/resume.md)
    repro schema [-o FILE]                            JSON Schema of a spec
    repro list                                        registered tasks, teachers, filters, backends
    repro score TASK FILE [--out RESULTS.jsonl]       score completions made anywhere (repro.scoring.score_cli)

With no SPEC, the specs listed in params.yaml (`specs:`) are used: the default experiments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from repro.errors import ReproError

log = logging.getLogger("repro")


def _specs(args: argparse.Namespace) -> list[str]:
    """The spec files named on the command line, else params.yaml's; exit 2 when there are none."""
    from repro.paths import PARAMS, default_params

    specs: list[str] = []
    for s in getattr(args, "specs", None) or []:
        specs.extend(x for x in s.split(",") if x)
    specs = specs or default_params()[0]
    if not specs:
        raise ReproError(f"no spec given, and no specs in {PARAMS} (run from the repo root, or name a spec file)",
                         exit_code=2)
    return specs


def _add_spec_args(p: argparse.ArgumentParser, positional: bool = True) -> None:
    if positional:
        p.add_argument("specs", nargs="*", help="spec files (default: params.yaml specs)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                   help="override a spec field by dotted path (repeatable)")


def cmd_validate(args: argparse.Namespace) -> int:
    from repro.spec import load

    for f in _specs(args):
        spec, conds = load(f, args.sets)
        print(f"{f}: ok ({spec.name}: {len(conds)} conditions)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from repro.plan import build_plan
    from repro.plansummary import render_summary

    plan = build_plan(_specs(args), args.sets)
    if args.json:
        json.dump({"jobs": [j.to_json() for j in plan.jobs.values()],
                   "specs": [{"name": s.spec.name, "file": s.file, "conditions": [c.name for c in s.conditions],
                              "report": s.report_id, "notes": s.notes} for s in plan.specs]},
                  sys.stdout, indent=1)
        print()
    else:
        print(render_summary(plan, show_jobs=not args.summary))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from repro.plan import build_plan
    from repro.runner import run_job

    plan = build_plan(_specs(args), args.sets)
    jid = args.id.rsplit("-", 1)[-1]
    if jid not in plan.jobs:
        raise ReproError(f"no job {args.id!r} in the plan of {', '.join(_specs(args))}", exit_code=2)
    from repro.status import job_log

    _exit_on_sigterm()
    with job_log(plan.jobs[jid]):
        run_job(plan, plan.jobs[jid], force=args.force, threads=args.threads, lock_wait_s=args.lock_wait)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from repro.plan import build_plan
    from repro.status import render, status

    from repro.paths import default_params

    sets = args.sets or ([] if args.specs else default_params()[1])  # params.yaml's `set:` with its specs
    st = status(build_plan(_specs(args), sets))
    if args.json:
        json.dump(st, sys.stdout, indent=1)
        print()
    else:
        print(render(st))
    return 0


def _exit_on_sigterm() -> None:
    """SIGTERM (SLURM preemption, scancel, a timeout) unwinds like Ctrl-C: the job's lock is released and its
    temporary folder removed, its partial progress kept, so a requeued job on another node goes on at once."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def cmd_report(args: argparse.Namespace) -> int:
    from repro.plan import build_plan
    from repro.publish import publish
    from repro.runner import run_job

    plan = build_plan(_specs(args), args.sets)
    for sp in plan.specs:
        job = plan.jobs[sp.report_id]
        if args.force or not job.done():
            run_job(plan, job, force=args.force)
    print(publish(plan))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from repro.plan import build_plan
    from repro.publish import publish

    print(publish(build_plan(_specs(args), args.sets)))
    return 0


def cmd_dvc(args: argparse.Namespace) -> int:
    from repro.dvcgen import adopt, check_dvc, write_dvc

    if args.check:
        return check_dvc(Path(args.output))
    if args.adopt:
        names = adopt(args.specs, args.sets, dry=args.dry_run)
        print(f"{'would adopt' if args.dry_run else 'adopted'} {len(names)} stages into dvc.lock (dvc commit)"
              + "".join(f"\n  {n}" for n in names))
        return 0
    write_dvc(Path(args.output), _specs(args), args.sets)
    print(f"wrote {args.output}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from repro.verify import verify

    return verify(args.targets, args.sets, scratch=args.scratch)


def cmd_unlock(args: argparse.Namespace) -> int:
    from repro.snakelock import unlock

    removed = unlock(Path("."))
    print(f"removed {len(removed)} stale Snakemake lock files" if removed else "no Snakemake lock to remove")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from repro.spec import spec_schema

    text = json.dumps(spec_schema(), indent=1) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as e:
            raise ReproError(f"{args.output}: cannot write: {e.strerror or e}", exit_code=2) from None
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from repro.scoring.score_cli import score_file

    try:
        task_args = json.loads(args.task_args) if args.task_args else None
    except json.JSONDecodeError as e:
        raise ReproError(f"--task-args: not JSON ({e.msg})", exit_code=2) from None
    metrics = score_file(args.task, Path(args.file), task_args, args.split, Path(args.out) if args.out else None)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from repro.analysis import ANALYSES
    from repro.filters import FILTERS
    from repro.generation import BACKENDS
    from repro.stages import STAGE_NAMES
    from repro.tasks import TASKS
    from repro.teachers import TEACHERS

    for kind, reg in (("tasks", TASKS), ("teachers", TEACHERS), ("filters", FILTERS), ("analyses", ANALYSES),
                      ("backends", BACKENDS)):
        print(f"{kind}: {', '.join(reg.names())}")
    print(f"stages: {', '.join(STAGE_NAMES)}")
    return 0


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`repro run: error: ...`, exit 2), not usage plus error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="repro", description=__doc__.split("\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("validate", help="check specs")
    _add_spec_args(p)
    p.set_defaults(fn=cmd_validate)
    p = sub.add_parser("plan", help="show the jobs of specs")
    _add_spec_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable plan")
    p.add_argument("--summary", action="store_true", help="per-spec summary only, no job table")
    p.set_defaults(fn=cmd_plan)
    p = sub.add_parser("run", help="run one job by id (or <name>-<id>)")
    p.add_argument("id")
    p.add_argument("--specs", action="append", help="comma-separated spec files (default: params.yaml)")
    _add_spec_args(p, positional=False)
    p.add_argument("--force", action="store_true", help="rerun even if done")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: the job's cpus)")
    p.add_argument("--lock-wait", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for another process running the same job (default: $REPRO_LOCK_WAIT_S or 1 day)")
    p.set_defaults(fn=cmd_run)
    for name, fn, helptext in (("report", cmd_report, "run report jobs and publish"), ("publish", cmd_publish, "publish reports/")):
        p = sub.add_parser(name, help=helptext)
        _add_spec_args(p)
        if name == "report":
            p.add_argument("--force", action="store_true", help="regenerate even if done")
        p.set_defaults(fn=fn)
    p = sub.add_parser("dvc", help="render dvc.yaml from the plan")
    _add_spec_args(p)
    p.add_argument("-o", "--output", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is not what the plan renders")
    p.add_argument("--adopt", action="store_true",
                   help="record finished jobs DVC does not know (e.g. run by Snakemake) in dvc.lock: dvc commit, no rerun")
    p.add_argument("-n", "--dry-run", action="store_true", help="with --adopt: list the stages, commit nothing")
    p.set_defaults(fn=cmd_dvc)
    p = sub.add_parser("status", help="jobs done, running, failed and to do, per spec and stage")
    _add_spec_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable status")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("verify", help="rerun jobs in a scratch folder and compare with recorded outputs")
    p.add_argument("targets", nargs="+", help="job ids or spec files")
    _add_spec_args(p, positional=False)
    p.add_argument("--scratch", default=None, help="scratch folder (default: a temporary one)")
    p.set_defaults(fn=cmd_verify)
    p = sub.add_parser("unlock", help="clear Snakemake's directory lock left by a killed run (refuses while one runs here)")
    p.set_defaults(fn=cmd_unlock)
    p = sub.add_parser("schema", help="JSON Schema of a spec")
    p.add_argument("-o", "--output", default=None)
    p.set_defaults(fn=cmd_schema)
    p = sub.add_parser("list", help="registered components")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("score", help="score completions made anywhere with a task's scorer")
    p.add_argument("task", help="registered task, e.g. ifeval, math500")
    p.add_argument("file", help='JSONL of {"prompt", "response"} or {"id", "completion"} lines')
    p.add_argument("--out", default=None, help="write one result per input line (JSONL, input order)")
    p.add_argument("--task-args", default=None, help="task arguments as JSON, e.g. '{\"path\": \"x.jsonl\"}'")
    p.add_argument("--split", default=None, help="task split (default: the task's last split)")
    p.set_defaults(fn=cmd_score)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.fn(args) or 0)
    except ReproError as e:
        print(f"error: {e}" if not hasattr(e, "problems") else str(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

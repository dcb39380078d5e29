"""`repro verify`: rerun finished jobs in a scratch folder and compare with what was recorded.

    repro verify experiments/smoke.yaml        # every job of the spec but its report
    repro verify 9ed59b725166 sft-xs-...-458fae4d8630   # chosen jobs (of params.yaml's specs)

Each job is rerun against the recorded outputs of its inputs (linked into the scratch results root), so a
difference is the job's own. Every file is compared by sha256 except those DVC does not hash either
(`NOT_HASHED`, listed in .dvcignore: run.json, which holds timings), so "identical" here means the
same md5 in dvc.lock. Data stages (generate, filter), evaluation of a fixed checkpoint and analyses must
match bit for bit on CPU (exit 1 otherwise); for training the final-loss difference is reported too.

Exit codes: 0 when every job is as expected; 1 when a job that must match bit for bit differs (its line
names the differing files), or when a job to verify has not run yet; 2 for an id that is not in the plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from repro import paths
from repro.errors import ReproError
from repro.plan import Job, Plan, build_plan
from repro.stages import STAGE_NAMES, get_stage

NOT_HASHED = (paths.RUN_RECORD,)  # what .dvcignore keeps out of DVC's hash of a job folder


def tree_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name not in NOT_HASHED:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _final_loss(folder: Path) -> float | None:
    f = folder / "metrics.json"
    return json.loads(f.read_text()).get("final_loss") if f.exists() else None


def verify_job(plan: Plan, job: Job, scratch: Path) -> dict[str, object]:
    from repro.runner import run_job

    real_root = paths.results_root().resolve()
    recorded = (real_root / job.stage / job.dirname)
    old = os.environ.get("REPRO_RESULTS")
    os.environ["REPRO_RESULTS"] = str(scratch)
    try:
        for d in job.deps:
            dep = plan.jobs[d]
            link = dep.outdir
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(real_root / dep.stage / dep.dirname, target_is_directory=True)
        run_job(plan, job, force=True)
        fresh = job.outdir
        a, b = tree_hashes(recorded), tree_hashes(fresh)
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        res: dict[str, object] = {"id": job.id, "stage": job.stage, "name": job.dirname, "identical": not differ, "differ": differ[:10]}
        if get_stage(job.stage).compute == "train":
            la, lb = _final_loss(recorded), _final_loss(fresh)
            if la is not None and lb is not None:
                res["final_loss_diff"] = abs(la - lb)
        shutil.rmtree(fresh, ignore_errors=True)
        return res
    finally:
        if old is None:
            os.environ.pop("REPRO_RESULTS", None)
        else:
            os.environ["REPRO_RESULTS"] = old


def select_jobs(targets: list[str], sets: list[str]) -> tuple[Plan, list[Job]]:
    """The plan of the targets' specs (else params.yaml's) and the finished jobs to verify: the named ids,
    or every job of the specs but their reports. Unknown ids exit 2; jobs not done yet exit 1."""
    spec_files = [t for t in targets if t.endswith((".yaml", ".yml"))]
    names = [t for t in targets if t not in spec_files]
    if not spec_files:  # jobs of the default experiments: params.yaml's specs and sets
        spec_files, default_sets = paths.default_params()
        sets = sets or default_sets
        if not spec_files:
            raise ReproError(f"no spec file among {', '.join(targets)} and no specs in {paths.PARAMS}: "
                             "name the spec the jobs belong to", exit_code=2)
    plan = build_plan(spec_files, sets)
    ids = {n: n.rsplit("-", 1)[-1] for n in names}
    unknown = [n for n, i in ids.items() if i not in plan.jobs]
    if unknown:
        raise ReproError(f"unknown job id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: not in the plan of "
                         f"{', '.join(spec_files)} (`repro plan` lists the jobs)", exit_code=2)
    if names:
        jobs = [plan.jobs[i] for i in dict.fromkeys(ids.values())]
    else:
        jobs = [j for j in plan.jobs.values() if j.stage != "report"]
    not_done = [j for j in jobs if not j.done()]
    if not_done:
        listed = ", ".join(f"{j.stage}/{j.dirname}" for j in not_done[:5]) + (" ..." if len(not_done) > 5 else "")
        raise ReproError(f"{len(not_done)} of {len(jobs)} jobs to verify {'is' if len(not_done) == 1 else 'are'} "
                         f"not done yet ({listed}): run {'it' if len(not_done) == 1 else 'them'} first "
                         "(`repro run ID`, or snakemake), then verify")
    return plan, jobs


def verify(targets: list[str], sets: list[str], scratch: str | None = None) -> int:
    """Rerun the targets' jobs in a scratch results root and compare; print one line per job; return the
    exit code: 1 when a job whose stage must rerun bit for bit differs (the line names the files)."""
    plan, jobs = select_jobs(targets, sets)
    jobs.sort(key=lambda j: STAGE_NAMES.index(j.stage))
    root = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="repro-verify-"))
    bad = 0
    try:
        for job in jobs:
            r = verify_job(plan, job, root)
            exact_needed = get_stage(job.stage).verify == "exact"
            ok = r["identical"]
            extra = f" final_loss_diff={r['final_loss_diff']:.2e}" if "final_loss_diff" in r else ""
            status = "identical" if ok else ("DIFFERS" if exact_needed else "differs")
            print(f"{job.stage:<9} {job.dirname:<48} {status}{extra}" + ("" if ok else f"  files: {', '.join(r['differ'])}"))  # type: ignore[arg-type]
            if not ok and exact_needed:
                bad += 1
    finally:
        if not scratch:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{len(jobs) - bad} of {len(jobs)} jobs as expected; {bad} data/eval jobs differ")
    return 1 if bad else 0

"""`repro verify`: rerun finished jobs in a scratch folder and compare with what was recorded.

    repro verify experiments/smoke.yaml        # every job of the spec but its report
    repro verify 9ed59b725166 sft-xs-...-458fae4d8630   # chosen jobs (of params.yaml's specs)

Each job is rerun against the recorded outputs of its inputs (linked into the scratch results root), so a
difference is the job's own. Every file is compared by sha256 except those DVC does not hash either
(`NOT_HASHED`, listed in .dvcignore: run.json, which holds timings), so "identical" here means the
same md5 in dvc.lock. Data stages (generate, filter), evaluation of a fixed checkpoint and analyses must
match bit for bit on CPU (exit 1 otherwise); for training the final-loss difference is reported too.
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
from repro.plan import STAGE_ORDER, Job, Plan, build_plan
from repro.stages import get_stage

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


def verify(targets: list[str], sets: list[str], scratch: str | None = None) -> int:
    spec_files = [t for t in targets if t.endswith((".yaml", ".yml"))]
    ids = [t.rsplit("-", 1)[-1] for t in targets if t not in spec_files]
    if not spec_files:  # jobs of the default experiments: params.yaml's specs and sets
        from repro.dvcgen import resolve

        spec_files, sets, _ = resolve(None, sets)
    plan = build_plan(spec_files, sets)
    jobs = [plan.jobs[i] for i in ids if i in plan.jobs] if ids else [j for j in plan.jobs.values() if j.stage != "report"]
    missing = [i for i in ids if i not in plan.jobs]
    if missing:
        raise ReproError(f"unknown job ids: {', '.join(missing)}")
    not_done = [j for j in jobs if not j.done()]
    if not_done:
        raise ReproError(f"{len(not_done)} jobs are not done yet (e.g. {not_done[0].stage}/{not_done[0].dirname}): run them first")
    jobs.sort(key=lambda j: STAGE_ORDER.index(j.stage))
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

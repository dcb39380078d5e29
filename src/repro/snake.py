"""What the Snakefile needs from the plan: targets, inputs, resources and the command of each job.

The Snakefile stays a table: one rule per stage whose output is `results/<stage>/{job}/manifest.json`.
Config keys (from params.yaml, overridable with `--config`): `specs` (list, or comma-separated string)
and `set` (list, or `;`-separated `PATH=VALUE` string).
"""

from __future__ import annotations

import shlex
import sys
from typing import Any, Callable

from repro import paths
from repro.errors import ReproError
from repro.plan import STAGE_ORDER, Plan, build_plan
from repro.plansummary import estimate
from repro.resources import to_snakemake
from repro.stages import get_stage

EVAL_GROUP = "eval"  # group name of small eval jobs; `group-components: eval=N` in slurm/config.yaml


def _as_list(v: Any, sep: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(sep) if x.strip()]
    return [str(x) for x in v]


class SnakePlan:
    def __init__(self, config: dict[str, Any]) -> None:
        self.specs = _as_list(config.get("specs"), ",")
        self.sets = _as_list(config.get("set"), ";")
        try:
            self.plan: Plan = build_plan(self.specs, self.sets)
        except ReproError as e:  # a bad spec: say so plainly, no Snakemake traceback
            sys.stderr.write(f"{e}\n")
            raise SystemExit(e.exit_code) from None
        self.root = str(paths.results_root())
        args = " ".join(f"--specs {shlex.quote(s)}" for s in self.specs)
        args += "".join(f" --set {shlex.quote(s)}" for s in self.sets)
        self.repro = f"{shlex.quote(sys.executable)} -m repro"
        self.run_args = args

    @property
    def stages(self) -> list[str]:
        present = {j.stage for j in self.plan.jobs.values()}
        return [s for s in STAGE_ORDER if s in present]

    def output(self, stage: str) -> str:
        return f"{self.root}/{stage}/{{job}}/{paths.MANIFEST}"

    def log(self, stage: str) -> str:
        return f"logs/{stage}/{{job}}.log"

    def _job(self, wc: Any):
        return self.plan.job_by_dirname(wc.job)

    def inputs(self, wc: Any) -> list[str]:
        job = self._job(wc)
        return [str(self.plan.jobs[d].outdir / paths.MANIFEST) for d in job.deps]

    def report_targets(self) -> list[str]:
        return [str(self.plan.jobs[sp.report_id].outdir / paths.MANIFEST) for sp in self.plan.specs]

    def threads(self, wc: Any) -> int:
        return int(self._job(wc).resources.get("cpus", 1))

    def resource(self, key: str) -> Callable[..., Any]:
        """A job's value of one Snakemake resource; None (unset: no sbatch flag, not 0) if the job has none."""
        def fn(wc: Any, attempt: int = 1) -> Any:
            return to_snakemake(self._job(wc).resources).get(key)
        return fn

    def resource_names(self, stage: str | None = None) -> list[str]:
        """Snakemake resource names used by the jobs of `stage` (all stages if None)."""
        keys: set[str] = set()
        for j in self.plan.jobs.values():
            if stage is None or j.stage == stage:
                keys.update(to_snakemake(j.resources))
        return sorted(keys)

    def priority(self, wc: Any) -> int:
        """Scheduling order among ready jobs (higher first): the cheap data jobs that unblock training, then
        pretraining, then training runs longest first (estimated tokens), then evals and analyses, then
        reports. Long runs start early and the short jobs fill the cores at the end, instead of a long run
        starting last on one core while the others idle."""
        job = self._job(wc)
        base = get_stage(job.stage).priority
        if job.stage == "train":
            return base + min(799, int(estimate(job).get("train_tokens", 0) // 100_000))
        return base

    def group(self, wc: Any) -> str | None:
        """Snakemake group of a job: CPU-only eval jobs join group `eval`, which the slurm profile batches
        (`group-components: eval=20`) into few SLURM jobs; everything else (GPU evals too) is its own job."""
        job = self._job(wc)
        return EVAL_GROUP if job.stage == "eval" and not job.resources.get("gpus") else None

    def command(self, wc: Any) -> str:
        return f"{self.repro} run {self._job(wc).id} {self.run_args}"

    def publish_command(self) -> str:
        return f"{self.repro} publish {' '.join(shlex.quote(s) for s in self.specs)}" + "".join(f" --set {shlex.quote(s)}" for s in self.sets)

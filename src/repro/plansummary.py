"""Human-readable `repro plan`: per spec, conditions, jobs by stage (shared, done, to do), compute estimate.

Estimates are upper bounds from the configs: training tokens = steps x batch x max_length; evaluation
samples = items x samples per item (tokens <= samples x max_new_tokens); an LLM teacher's requests = problems x
samples (generated tokens <= requests x max_new_tokens); GPU-hours where the spec gives a throughput (tokens per
GPU-second) for the stage.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from repro.plan import STAGE_ORDER, Job, Plan
from repro.resources import checkpoint_disk


def estimate(job: Job) -> dict[str, float]:
    """Token and sample counts of one job (upper bounds)."""
    c = job.config
    if job.stage == "train":
        t = c["train"]
        disk = checkpoint_disk(c)
        return {"train_tokens": t["steps"] * t["batch_size"] * t["max_length"],
                "checkpoint_GB": round(disk["checkpoints_bytes"] / 1e9, 3)}
    if job.stage == "pretrain":
        p = c["pretrain"]
        return {"train_tokens": p["steps"] * p["batch_size"] * p["max_length"]}
    if job.stage == "eval":
        base = c["sampling"]
        per = [(b["n"] * {**base, **(b.get("sampling") or {})}["n_samples"],
                {**base, **(b.get("sampling") or {})}["max_new_tokens"]) for b in c["benchmarks"]]
        return {"eval_samples": sum(n for n, _ in per), "eval_tokens": sum(n * m for n, m in per)}
    if job.stage == "generate":
        t = c["teacher"]
        if t["name"] == "llm":  # requests (one per sample) and an upper bound on generated tokens
            s = t.get("args", {}).get("sampling", {})
            requests = c["n"] * s.get("n_samples", 1)
            return {"problems": c["n"], "teacher_requests": requests,
                    "teacher_tokens": requests * s.get("max_new_tokens", 128)}
        return {"problems": c["n"]}
    return {}


def spec_estimate(plan: Plan, job_ids: list[str], throughput: dict[str, float]) -> dict[str, float]:
    tot: Counter[str] = Counter()
    for jid in job_ids:
        tot.update(estimate(plan.jobs[jid]))
    out: dict[str, float] = dict(tot)
    gpu_h = 0.0
    if throughput.get("train") and tot.get("train_tokens"):
        gpu_h += tot["train_tokens"] / throughput["train"] / 3600
    if throughput.get("eval") and tot.get("eval_tokens"):
        gpu_h += tot["eval_tokens"] / throughput["eval"] / 3600
    if throughput.get("generate") and tot.get("teacher_tokens"):
        gpu_h += tot["teacher_tokens"] / throughput["generate"] / 3600
    if gpu_h:
        out["gpu_hours"] = round(gpu_h, 1)
    return out


def _fmt(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:g}"


def _bytes(n: float) -> str:
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def _train_runs(plan: Plan, job_ids: list[str], limit: int = 12) -> list[str]:
    """One line per training run of a spec: length, batch, optimiser, checkpoints and their disk."""
    runs = [plan.jobs[j] for j in job_ids if plan.jobs[j].stage == "train"]
    lines = [f"   training runs ({len(runs)}):"] if runs else []
    for job in runs[:limit]:
        t = job.config["train"]
        disk = checkpoint_disk(job.config)
        ep = f" ({t['epochs']:g} epochs of {t['dataset_size']})" if t.get("epochs") else ""
        micro = f" (micro {t['micro_batch_size']})" if t.get("micro_batch_size") else ""
        warm = max(t.get("warmup_steps", 0), -(-t.get("warmup_ratio", 0.0) * t["steps"] // 1))
        nodes = job.resources.get("nodes") or 1
        procs = job.resources.get("processes") or (job.resources.get("gpus") or 0) // nodes or 1
        ckpts = sorted(set(t["checkpoints"]) | {t["steps"]})
        lines.append(f"     {job.dirname}: {t['steps']} steps{ep}, global batch {t['batch_size']}{micro}, "
                     f"lr {t['lr']:g} {t['schedule']} warmup {int(warm)} (ratio {t.get('warmup_ratio', 0):g}), "
                     f"wd {t.get('weight_decay', 0):g}; {procs} process(es) x {job.resources.get('nodes', 1)} node(s); "
                     f"checkpoints {','.join(map(str, ckpts))}: {len(ckpts)} x {_bytes(disk['checkpoint_bytes'])}"
                     f" = {_bytes(disk['checkpoints_bytes'])}; resume state {_bytes(disk['resume_state_bytes'])}")
    if len(runs) > limit:
        lines.append(f"     ... {len(runs) - limit} more (repro plan --json has every job's config)")
    return lines


def render_summary(plan: Plan, show_jobs: bool = True) -> str:
    lines: list[str] = []
    owners: dict[str, set[str]] = {}
    for sp in plan.specs:
        for jid in sp.job_ids:
            owners.setdefault(jid, set()).add(sp.spec.name)
    for sp in plan.specs:
        jobs = [plan.jobs[j] for j in sp.job_ids]
        lines.append(f"== {sp.spec.name} ({sp.file}): {len(sp.conditions)} conditions, {len(jobs)} jobs")
        axes = sp.spec.axes
        if axes:
            lines.append("   axes: " + "; ".join(f"{a} = {', '.join(v)}" for a, v in axes.items()))
        names = [c.name for c in sp.conditions]
        lines.append("   conditions: " + ", ".join(names[:12]) + (f", ... ({len(names) - 12} more)" if len(names) > 12 else ""))
        for note in sp.notes:
            lines.append(f"   note: {note}")
        lines.append(f"   {'stage':<9} {'jobs':>6} {'shared':>7} {'other':>6} {'done':>6} {'todo':>6}")
        for stage in STAGE_ORDER:
            sj = [j for j in jobs if j.stage == stage]
            if not sj:
                continue
            shared = sum(1 for j in sj if len(j.conditions) > 1)
            other = sum(1 for j in sj if len(owners[j.id]) > 1)
            done = sum(1 for j in sj if j.done())
            lines.append(f"   {stage:<9} {len(sj):>6} {shared:>7} {other:>6} {done:>6} {len(sj) - done:>6}")
        thr: dict[str, Any] = sp.conditions[0].condition.throughput if sp.conditions else {}
        est = spec_estimate(plan, sp.job_ids, thr)
        lines.append("   estimate: " + ", ".join(f"{k} {_fmt(v)}" for k, v in est.items()))
        lines.extend(_train_runs(plan, sp.job_ids))
        lines.append("   (shared = used by several conditions; other = also used by another spec)")
    if show_jobs:
        lines.append("")
        lines.append(f"{'stage':<9} {'id':<13} {'state':<5} {'resources':<30} name")
        for j in sorted(plan.jobs.values(), key=lambda j: STAGE_ORDER.index(j.stage)):
            r = j.resources
            gpu = (f" {r['gpus']}x{r['gpu_model']}" if r.get("gpu_model") else f" {r['gpus']}gpu") if r.get("gpus") else ""
            res = f"{r['cpus']}cpu {r['mem_mb'] // 1000}G{gpu} {r['runtime_min']}m" + (f" @{r['partition']}" if r.get("partition") else "")
            res += (f" {r['nodes']}nodes" if r.get("nodes") else "") + (f" x{r['processes']}proc" if r.get("processes") else "")
            lines.append(f"{j.stage:<9} {j.id:<13} {'done' if j.done() else 'todo':<5} {res:<30} {j.dirname}")
    return "\n".join(lines)

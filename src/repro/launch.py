"""Running a training stage on the processes its job was given: in this process, or as ranks under a launcher.

The job's top-level process (`repro run`, what Snakemake/SLURM/DVC started and what writes the manifest)
stays the parent. With more than one process in all (`Resources.nodes` x processes per node), it writes a
small job file and starts the ranks through `torchrun` or `accelerate launch` (on several SLURM nodes: one
launcher per node through `srun`), each rank running `python -m repro.launch JOBFILE`, which calls the
stage's `train_here`. The parent forwards SIGTERM/SIGINT to the launcher (which forwards them to the ranks),
and the launcher gets SIGTERM if the parent dies. Only rank 0 writes files.

Work happens in the job's resume folder (`runtime["partial"]`, else `paths.partial_dir`), beside the
content-addressed output folder: `work/` (checkpoints, log) and `state/` (the trainer's full state). A
killed or preempted job leaves it; the rerun continues from it; on success `work/` moves into the output
folder and the resume folder is removed.

    nodes, per_node = world_plan(resources)          # e.g. {"processes": 2} -> (1, 2)
    command("torchrun", 1, 2, job_file)              # [python, -m, torch.distributed.run, ...]
"""

from __future__ import annotations

import ctypes
import importlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from repro import paths
from repro.config import TrainRuntime
from repro.errors import ReproError

log = logging.getLogger(__name__)

JOB_FILE = "launch.json"
RDZV_PORT = 29500


def world_plan(resources: dict[str, Any], cuda_devices: int | None = None) -> tuple[int, int]:
    """(nodes, processes per node) of a job: `processes` when given, else one per GPU CUDA shows on this node
    (at most the GPUs asked per node), else 1. Nodes come from `nodes`."""
    nodes = int(resources.get("nodes") or 1)
    if resources.get("processes"):
        return nodes, int(resources["processes"])
    gpus = int(resources.get("gpus") or 0)
    if not gpus:
        return nodes, 1
    if cuda_devices is None:
        import torch

        cuda_devices = torch.cuda.device_count()
    if not cuda_devices:
        log.warning("the job asks for %d GPU(s) but CUDA shows none here: training in one CPU process", gpus)
        return nodes, 1
    return nodes, max(1, min(cuda_devices, gpus // nodes or 1))


def _rdzv_host() -> str:
    """The first node of a SLURM allocation (rendezvous host of a multi-node run), else this host."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if nodelist:
        try:
            out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                                 timeout=30).stdout.split()
            if out:
                return out[0]
        except (OSError, subprocess.SubprocessError):
            pass
    return socket.gethostname()


def command(launcher: str, nodes: int, per_node: int, job_file: Path, run_id: str = "repro",
            cuda: bool = False) -> list[str]:
    """argv that starts `nodes` x `per_node` ranks of `python -m repro.launch job_file`."""
    py = sys.executable
    target = ["-m", "repro.launch", str(job_file)]
    if launcher == "torchrun":
        argv = [py, "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--nproc-per-node={per_node}"]
        if nodes == 1:
            argv.append("--standalone")
        else:
            argv += ["--rdzv-backend=c10d", f"--rdzv-endpoint={_rdzv_host()}:{RDZV_PORT}", f"--rdzv-id={run_id}"]
        argv += target
    elif launcher == "accelerate":
        argv = [py, "-m", "accelerate.commands.launch", f"--num_processes={nodes * per_node}",
                f"--num_machines={nodes}", "--mixed_precision=no", "--dynamo_backend=no"]
        # --multi_gpu is accelerate's torch.distributed launcher (on CPU too: its --cpu runs one process)
        argv += ["--multi_gpu"] if nodes * per_node > 1 else []
        if nodes > 1:
            argv += ["--machine_rank=$SLURM_NODEID", f"--main_process_ip={_rdzv_host()}",
                     f"--main_process_port={RDZV_PORT}"]
        argv += ["-m", "repro.launch", str(job_file)]  # accelerate launch -m MODULE ARGS
    else:
        raise ReproError(f"unknown launcher {launcher!r}; known: torchrun, accelerate", exit_code=2)
    if nodes > 1:
        if not os.environ.get("SLURM_JOB_ID"):
            raise ReproError(f"a {nodes}-node training job needs a SLURM allocation (srun starts one launcher per "
                             "node)", exit_code=2)
        inner = " ".join(a if a.startswith("--machine_rank=") else shlex.quote(a) for a in argv)
        argv = ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash", "-c",
                f"exec {inner}"]
    return argv


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies (Linux), so a SIGKILLed job leaves no orphan ranks."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_ranks(argv: list[str], threads_per_rank: int) -> None:
    """Run the launcher to completion, forwarding SIGTERM/SIGINT to it; ReproError if a rank failed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_rank), "PYTHONUNBUFFERED": "1"}
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log.info("launching: %s", " ".join(shlex.quote(a) for a in argv))
    proc = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)
    got: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        got.append(signum)
        log.warning("signal %d: passing it to the ranks", signum)
        proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if rc != 0:
        from repro.training import PREEMPTED_EXIT, Preempted

        if got or rc == PREEMPTED_EXIT:
            raise Preempted("training ranks stopped by SIGTERM; their state is saved: rerun the job to continue")
        raise ReproError(f"training ranks failed (launcher exit status {rc}); see the ranks' lines above")


def resume_dir(stage: str, runtime: dict[str, Any]) -> Path:
    """The job's resume folder: the runner's `runtime["partial"]`, else results/<stage>/.partial-<dirname>/."""
    if runtime.get("partial"):
        return Path(runtime["partial"])
    return paths.partial_dir(stage, runtime.get("dirname") or runtime.get("job_id") or "job")


def run_training(stage: str, cfg: Any, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> None:
    """Run stage `stage`'s `train_here(cfg, inputs, work, runtime)` on the job's processes, then move the
    finished work into `out` and remove the resume folder."""
    partial = resume_dir(stage, runtime)
    work = partial / "work"
    work.mkdir(parents=True, exist_ok=True)
    resources = runtime.get("resources") or {}
    nodes, per_node = world_plan(resources)
    rt = TrainRuntime.model_validate(resources.get("train_runtime") or {})
    threads = int(runtime.get("threads") or os.cpu_count() or 1)
    rank_runtime = {**runtime, "partial": str(partial), "resources": resources,
                    "threads": max(1, threads // (nodes * per_node)) if nodes * per_node > 1 else runtime.get("threads")}
    if nodes * per_node == 1:
        train_here: Callable[..., Any] = importlib.import_module(f"repro.stages.{stage}").train_here
        train_here(cfg, inputs, work, rank_runtime)
    else:
        import torch

        job_file = partial / JOB_FILE
        job_file.write_text(json.dumps({"stage": stage, "config": cfg.model_dump(mode="json"),
                                        "inputs": {k: str(v) for k, v in inputs.items()}, "work": str(work),
                                        "runtime": rank_runtime}, indent=1, default=str))
        log.info("%s: %d node(s) x %d process(es) through %s (%s)", stage, nodes, per_node, rt.launcher,
                 rt.distributed)
        run_ranks(command(rt.launcher, nodes, per_node, job_file, str(runtime.get("job_id", "repro")),
                          torch.cuda.is_available()), max(1, threads // per_node))
    for item in work.iterdir():
        shutil.move(str(item), str(out / item.name))
    shutil.rmtree(partial, ignore_errors=True)


def rank_options(stage: str, runtime: dict[str, Any]) -> Any:
    """`repro.training.RunOptions` of this process: threads, the spec's TrainRuntime, the resume state folder,
    and tracking names (the job folder's name; the conditions' labels as tags)."""
    from repro.training import RunOptions

    resources = runtime.get("resources") or {}
    partial = resume_dir(stage, runtime)
    name = runtime.get("dirname")
    return RunOptions(threads=runtime.get("threads"),
                      runtime=TrainRuntime.model_validate(resources.get("train_runtime") or {}),
                      state_dir=partial / "state", run_name=name,
                      tags=tuple(runtime.get("conditions") or ()),
                      tracking_dir=Path("logs") / "tracking" / (name or "job"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of one rank: `python -m repro.launch JOBFILE` (started by the launcher)."""
    args = sys.argv[1:] if argv is None else argv
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s rank {rank}/{world} %(levelname)s %(name)s: %(message)s")
    spec = json.loads(Path(args[0]).read_text())
    log.info("rank %d of %d (local rank %s) on %s, pid %d", rank, world, os.environ.get("LOCAL_RANK"),
             socket.gethostname(), os.getpid())
    if rank != 0:
        logging.getLogger("repro").setLevel(logging.WARNING)
    from repro.training import Preempted

    stage = spec["stage"]
    from repro.stages import get_stage

    cfg = get_stage(stage).job.model_validate(spec["config"])
    inputs = {k: Path(v) for k, v in spec["inputs"].items()}
    try:
        importlib.import_module(f"repro.stages.{stage}").train_here(cfg, inputs, Path(spec["work"]), spec["runtime"])
    except Preempted as e:
        log.warning("%s", e)
        return e.exit_code
    except ReproError as e:
        log.error("%s", e)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

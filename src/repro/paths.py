"""Where artifacts live: the one owner of paths.

    results/<stage>/<name>-<id>/      a job's output folder; complete only once manifest.json exists
        manifest.json                 what the job is (id, stage, config, inputs, summary): deterministic
        run.json                      how this run went (host, times, versions, git commit): DVC ignores it
    results/<stage>/.tmp-<name>-<id>-<pid>/   where a running job writes before the atomic rename
    results/<stage>/.partial-<name>-<id>/     a job's resumable progress: kept when it is killed, removed
                                              when it completes (stages keep finished items there)
    results/<stage>/.lock-<name>-<id>         held while the job runs: one writer per job (repro.locks)
    results/<stage>/.complete-<name>-<id>.json  a second link to the job's manifest, so a manifest that an
                                              engine deleted (Snakemake removes a job's declared output
                                              before it runs it) is restored instead of the job rerun
    results/.journal.jsonl                    one line per job start/end/skip: which process ran what, when
    logs/<stage>/<name>-<id>.log      the engine's log of a job
    reports/index.html, reports/<spec>.html   published reports

The results root is `results/` under the current directory, or $REPRO_RESULTS.
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST = "manifest.json"
RUN_RECORD = "run.json"
PARAMS = Path("params.yaml")  # the default experiments: `specs:` (and `set:`) that every command falls back to


def default_params() -> tuple[list[str], list[str]]:
    """params.yaml's `specs` and `set` (the default experiments); empty when there is no params.yaml."""
    import yaml

    from repro.errors import ReproError

    try:
        data = (yaml.safe_load(PARAMS.read_text(encoding="utf-8")) or {}) if PARAMS.exists() else {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ReproError(f"{PARAMS}: {where}invalid YAML: {getattr(e, 'problem', None) or e}", exit_code=2) from None
    if not isinstance(data, dict):
        raise ReproError(f"{PARAMS}: expected a mapping with `specs:` (and `set:`), got {type(data).__name__}", exit_code=2)
    out = []
    for key in ("specs", "set"):
        v = data.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ReproError(f"{PARAMS}: {key}: expected a list of strings, got {v!r}"[:300], exit_code=2)
        out.append(list(v))
    return out[0], out[1]


def results_root() -> Path:
    return Path(os.environ.get("REPRO_RESULTS", "results"))


def reports_root() -> Path:
    return Path(os.environ.get("REPRO_REPORTS", "reports"))


def component(name: str, what: str = "name") -> str:
    """`name` if it is one safe path component (no separator, not . or .., no leading dot, no NUL); else
    a ReproError (exit 2): names from specs can never point outside the results folder."""
    if not name or "/" in name or "\\" in name or "\0" in name or name.startswith(".") or name in (".", ".."):
        from repro.errors import ReproError

        raise ReproError(f"unsafe {what} {name!r}: a name used in a path must be one component without "
                         "'/', '\\' or a leading '.'", exit_code=2)
    return name


def job_dir(stage: str, dirname: str) -> Path:
    return results_root() / component(stage, "stage") / component(dirname, "job folder name")


def tmp_dir(stage: str, dirname: str) -> Path:
    return job_dir(stage, dirname).parent / f".tmp-{dirname}-{os.getpid()}"


def partial_dir(stage: str, dirname: str) -> Path:
    """A job's resume folder, beside its output folder: survives a killed run, removed when the job completes."""
    return job_dir(stage, dirname).parent / f".partial-{dirname}"


def lock_file(stage: str, dirname: str) -> Path:
    return job_dir(stage, dirname).parent / f".lock-{dirname}"


def completion_record(stage: str, dirname: str) -> Path:
    return job_dir(stage, dirname).parent / f".complete-{dirname}.json"


def journal() -> Path:
    return results_root() / ".journal.jsonl"


def inside(path: Path, *roots: Path) -> bool:
    """Whether `path` lies inside one of `roots`, by its normalized absolute path (`..` resolved; symlinks
    are not followed, so a results folder that is a link to a bigger disk stays allowed)."""
    real = Path(os.path.normpath(os.path.abspath(path)))
    return any(real == (r := Path(os.path.normpath(os.path.abspath(root)))) or r in real.parents for root in roots)


def checkpoint_dir(train_dir: Path, step: int) -> Path:
    """Where a train job saves the model of `step` (0 = before training), in the HF layout."""
    return Path(train_dir) / "checkpoints" / f"step-{step}"


def is_done(outdir: Path) -> bool:
    return (outdir / MANIFEST).is_file()

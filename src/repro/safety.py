"""What a spec may make the program do: load model code, read secrets, write files.

- Model code: `transformers` runs Python shipped with a hub model only with `trust_remote_code=True`;
  `remote_code_allowed(model)` is the one place that decides it, True only when the spec turns it on for a
  named model (`model: {source: hub, id: ..., trust_remote_code: true}`). Loaders pass its result on.
- Secrets (hub tokens, API keys) come from the environment only (`secret("HF_TOKEN")`); they are never
  part of a spec, a job config, a manifest or run.json.
- Paths: every output path is built by `repro.paths` from checked names; `check_writable` is the guard
  for anything else a job writes.

YAML specs are read with `yaml.safe_load` (repro.spec): tags that construct Python objects are refused,
and nothing in a spec is evaluated as code (dotted overrides are looked up, expressions are never run).
"""

from __future__ import annotations

import os
from pathlib import Path

from repro import paths
from repro.config import ModelConfig
from repro.errors import ReproError


def remote_code_allowed(model: ModelConfig) -> bool:
    """Whether loading `model` may run code shipped with it (only when its spec says so, for a named model)."""
    return bool(model.trust_remote_code and model.source in ("hub", "path") and model.id)


def secret(name: str) -> str | None:
    """A secret from the environment (never from a spec); None when unset."""
    return os.environ.get(name) or None


def write_roots() -> list[Path]:
    """Where jobs may write: the results folder, logs/ and the reports folder."""
    return [paths.results_root(), Path("logs"), paths.reports_root()]


def check_writable(path: Path) -> Path:
    """`path` if it lies inside results/, logs/ or reports/; else a ReproError (exit 2)."""
    if not paths.inside(path, *write_roots()):
        raise ReproError(f"refusing to write {path}: outside {', '.join(str(r) + '/' for r in write_roots())}",
                         exit_code=2)
    return path

"""Rows of a dataset — from the hub through `datasets`, or from a local JSONL / Parquet file — with a column
mapping onto the fields we need, and errors that name the file (or dataset) and the row.

`DatasetSource` is the typed description a spec gives (`path`, `config`, `split`, `revision`, `format`);
`load_rows(src)` returns plain dicts; `column(row, path)` reads a mapped column, where a path may go into
nested values (`generations.0`, `messages.-1.content`) and a chat-message list stands for its last
assistant message.

- `format: hub` (or `auto` with a path that is not a local file): `datasets.load_dataset(path, config,
  split=split, revision=revision)`. `datasets` honours its offline cache (HF_DATASETS_OFFLINE=1,
  HF_HUB_OFFLINE=1), and `path` may be a local folder in the hub's layout (`data/train-*.parquet`).
- `format: jsonl` / `parquet` (or `auto` by suffix): read here, row by row.

    src = DatasetSource(path="data/openr1.parquet")
    rows = load_rows(src)
    column(rows[0], "generations.0")
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from repro.errors import ReproError

log = logging.getLogger(__name__)


class DatasetSource(BaseModel):
    """Where a dataset's rows come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Hub dataset id (e.g. open-r1/OpenR1-Math-220k), a local folder in the hub's "
                      "layout, or a local .jsonl / .parquet file (relative: the working directory, then the repo).")
    config: str | None = Field(None, description="Hub config (subset) name, e.g. 'default'.")
    split: str = Field("train", description="Split to read.")
    revision: str | None = Field(None, description="Hub revision (commit sha, branch or tag); pin it for "
                                 "reproducibility.")
    format: Literal["auto", "hub", "jsonl", "parquet"] = Field(
        "auto", description="auto: by the file suffix, else the hub.")


def resolve(path: str) -> Path | None:
    """A local path (working dir first, then the repo root), or None when it does not exist."""
    from repro.tasks.real import REPO_ROOT

    p = Path(path).expanduser()
    for cand in ((p,) if p.is_absolute() else (Path.cwd() / p, REPO_ROOT / p)):
        if cand.exists():
            return cand
    return None


def source_format(src: DatasetSource) -> str:
    if src.format != "auto":
        return src.format
    local = resolve(src.path)
    if local is not None and local.is_file():
        if local.suffix in (".jsonl", ".json"):
            return "jsonl"
        if local.suffix == ".parquet":
            return "parquet"
        raise ReproError(f"{src.path}: unknown file type {local.suffix!r} (expected .jsonl or .parquet)", exit_code=2)
    return "hub"


def where(src: DatasetSource) -> str:
    """How errors name the dataset."""
    if source_format(src) == "hub":
        return f"{src.path}[{src.config or 'default'}:{src.split}{'@' + src.revision if src.revision else ''}]"
    return src.path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file; a damaged, non-UTF-8 or truncated row is an error naming file and row."""
    from repro.rows import iter_jsonl

    return [row for _, row in iter_jsonl(path)]


def _parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise ReproError(f"{path}: cannot read as Parquet ({e})", exit_code=2) from None


def _hub(src: DatasetSource) -> list[dict[str, Any]]:
    import datasets

    local = resolve(src.path)
    try:
        ds = datasets.load_dataset(str(local) if local is not None else src.path, src.config, split=src.split,
                                   revision=src.revision)
    except Exception as e:  # noqa: BLE001 - offline, missing split, unknown id ...
        raise ReproError(f"dataset {where(src)}: cannot load ({type(e).__name__}: {e})", exit_code=2) from None
    return [dict(r) for r in ds]


def load_rows(src: DatasetSource) -> list[dict[str, Any]]:
    """Every row of the source, in order."""
    fmt = source_format(src)
    if fmt == "hub":
        return _hub(src)
    local = resolve(src.path)
    if local is None:
        raise ReproError(f"{src.path}: file not found (looked in {Path.cwd()} and the repo root)", exit_code=2)
    return _jsonl(local) if fmt == "jsonl" else _parquet(local)


def column(row: dict[str, Any], path: str) -> Any:
    """The value at a column path: `a`, `a.b`, `a.0`, `a.-1.content`. A list of chat messages (dicts with
    role and content) at the end of the path stands for the content of its last assistant message."""
    val: Any = row
    for part in path.split("."):
        if isinstance(val, dict):
            if part not in val:
                raise KeyError(path)
            val = val[part]
        elif isinstance(val, (list, tuple)):
            try:
                val = val[int(part)]
            except (ValueError, IndexError):
                raise KeyError(path) from None
        else:
            raise KeyError(path)
    if isinstance(val, (list, tuple)) and val and all(isinstance(m, dict) and "role" in m for m in val):
        answers = [m for m in val if m["role"] == "assistant"]
        if not answers:
            raise KeyError(path)
        val = answers[-1].get("content")
    return val


def mapped(rows: Iterable[dict[str, Any]], columns: dict[str, str | None], src: DatasetSource,
           required: Iterable[str]) -> list[dict[str, Any]]:
    """Rows as {our field: value} for the columns mapped (None = not mapped); a missing required column or an
    empty value is an error naming the dataset, the row number and the column."""
    need = set(required)
    out = []
    for i, row in enumerate(rows, 1):  # row numbers from 1, as repro.rows and editors count them
        rec: dict[str, Any] = {}
        for field, col in columns.items():
            if col is None:
                continue
            try:
                val = column(row, col)
            except KeyError:
                if field in need:
                    raise ReproError(f"{where(src)}: row {i}: no column {col!r} (for {field}); columns: "
                                     f"{', '.join(sorted(row))}", exit_code=2) from None
                continue
            if field in need and (val is None or (isinstance(val, str) and not val.strip())):
                raise ReproError(f"{where(src)}: row {i}: column {col!r} (for {field}) is empty", exit_code=2)
            rec[field] = val
        out.append(rec)
    return out

"""Reading dataset and record files row by row, with every problem reported as `file: row N: what`.

    rows = read_rows(path, {"problem": str, "answer": (str, int, float)}, nonempty=("problem", "answer"))
    rows = read_rows(path, schema, on_bad="skip")        # bad rows are dropped, logged and counted

- `iter_jsonl(path)`: (row number, object) for each line of a JSON-lines file. A line that is not UTF-8,
  not JSON or not an object is an error naming the file and row; a last line without its newline that
  does not parse is reported as a truncated file (our writers end every row with a newline), so a file
  cut short by a crash is detected, never half-read.
- `read_rows(path, schema, ...)`: JSONL or Parquet rows checked against `schema` (field -> accepted
  types): missing fields, wrong types and empty values (`nonempty`) are bad rows. `on_bad="error"`
  raises on the first one (exit 2); `"skip"` drops them, logs them, and adds them to the active
  `collect_skipped()` collector so a stage can count them in its manifest and report.

Errors are `RowError` (a ReproError with exit code 2): one line, no traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from repro.errors import ReproError

log = logging.getLogger(__name__)

OnBad = Literal["error", "skip"]
Schema = dict[str, "type | tuple[type, ...]"]


class RowError(ReproError):
    """A bad row or a damaged file: `file: row N: field F: what was expected`."""

    exit_code = 2

    def __init__(self, file: Path | str, row: int | None, message: str, field: str | None = None) -> None:
        self.file, self.row, self.field = str(file), row, field
        where = "".join([f": row {row}" if row is not None else "", f": field {field!r}" if field else ""])
        super().__init__(f"{file}{where}: {message}")


@dataclass
class Skipped:
    """Bad rows dropped while a `collect_skipped()` block ran: (file, row, reason) each."""

    rows: list[tuple[str, int, str]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.rows)

    def by_file(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f, _, _ in self.rows:
            out[f] = out.get(f, 0) + 1
        return out


_collector: contextvars.ContextVar[Skipped | None] = contextvars.ContextVar("repro_rows_skipped", default=None)


@contextlib.contextmanager
def collect_skipped() -> Iterator[Skipped]:
    """Collect the bad rows that `read_rows(..., on_bad="skip")` drops inside the block."""
    s = Skipped()
    token = _collector.set(s)
    try:
        yield s
    finally:
        _collector.reset(token)


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, object) per non-blank line; RowError on a damaged line or a truncated file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise RowError(p, None, "file not found") from None
    except OSError as e:
        raise RowError(p, None, f"cannot read: {e.strerror or e}") from None
    lines = data.split(b"\n")
    ends_with_newline = data.endswith(b"\n")
    last = len(lines) - (1 if ends_with_newline else 0)
    for i, raw in enumerate(lines[:last] if ends_with_newline else lines, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RowError(p, i, f"not UTF-8 text (byte {e.start} of the row: {raw[e.start:e.start + 1]!r})") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            if i == last and not ends_with_newline:
                raise RowError(p, i, "truncated: the file ends in the middle of this row (a crashed or interrupted "
                               "write?)") from None
            raise RowError(p, i, f"invalid JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(obj, dict):
            raise RowError(p, i, f"expected a JSON object, got {type(obj).__name__}")
        yield i, obj


def _iter_parquet(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with datasets
        raise RowError(p, None, "reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(p)
    except FileNotFoundError:
        raise RowError(p, None, "file not found") from None
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError on a damaged or truncated file
        raise RowError(p, None, f"not a readable Parquet file (truncated?): {str(e).splitlines()[0][:200]}") from None
    for i, row in enumerate(table.to_pylist(), start=1):
        yield i, row


def _type_names(t: type | tuple[type, ...]) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    return " or ".join({str: "string", int: "integer", float: "number", bool: "boolean", list: "list",
                        dict: "object"}.get(x, x.__name__) for x in ts)


def row_problem(row: dict[str, Any], schema: Schema, nonempty: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(field, what is wrong) for the first problem of `row` against `schema`, or None if it is fine."""
    for name, types in schema.items():
        if name not in row or row[name] is None:
            return name, "missing"
        v = row[name]
        ts = types if isinstance(types, tuple) else (types,)
        if isinstance(v, bool) and bool not in ts:
            return name, f"expected {_type_names(types)}, got boolean"
        if not isinstance(v, ts):
            return name, f"expected {_type_names(types)}, got {type(v).__name__} {str(v)[:40]!r}"
        if name in nonempty and isinstance(v, (str, list, dict)) and not (v.strip() if isinstance(v, str) else v):
            return name, "empty"
    return None


def read_rows(path: Path | str, schema: Schema, nonempty: tuple[str, ...] = (), on_bad: OnBad = "error",
              what: str = "") -> list[dict[str, Any]]:
    """Rows of a JSONL (or .parquet) file that pass `schema`; bad rows raise or are skipped (see module)."""
    p = Path(path)
    it = _iter_parquet(p) if p.suffix == ".parquet" else iter_jsonl(p)
    out: list[dict[str, Any]] = []
    skipped: list[tuple[str, int, str]] = []
    for i, row in it:
        bad = row_problem(row, schema, nonempty)
        if bad is None:
            out.append(row)
            continue
        if on_bad == "error":
            raise RowError(p, i, f"{bad[1]}{f' ({what})' if what else ''}; set bad_rows: skip to skip bad rows",
                           field=bad[0])
        skipped.append((str(p), i, f"field {bad[0]!r}: {bad[1]}"))
    if skipped:
        for f, i, reason in skipped[:5]:
            log.warning("%s: row %d: %s: skipped", f, i, reason)
        log.warning("%s: skipped %d bad rows of %d", p, len(skipped), len(skipped) + len(out))
        coll = _collector.get()
        if coll is not None:
            coll.rows.extend(skipped)
    return out

"""Row-checked reading (repro.rows) and checkpoint integrity (repro.integrity): bad rows are errors naming
file and row, or skipped and counted; a complete file reads whole; a cut checkpoint is detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.errors import ReproError
from repro.integrity import check_checkpoint
from repro.rows import RowError, collect_skipped, iter_jsonl, read_rows

SCHEMA = {"problem": str, "answer": (str, int)}


def test_skip_mode_drops_and_counts_bad_rows(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"problem": "a", "answer": "1"}\n{"problem": "b"}\n{"problem": "", "answer": 2}\n'
                 '{"problem": "c", "answer": true}\n{"problem": "d", "answer": 4}\n')
    with collect_skipped() as bad:
        rows = read_rows(f, SCHEMA, nonempty=("problem",), on_bad="skip")
    assert [r["problem"] for r in rows] == ["a", "d"]
    assert [(row, reason) for _, row, reason in bad.rows] == [
        (2, "field 'answer': missing"), (3, "field 'problem': empty"), (4, "field 'answer': expected string or integer, got boolean")]
    assert bad.by_file() == {str(f): 3}
    with pytest.raises(RowError) as e:
        read_rows(f, SCHEMA, nonempty=("problem",))
    assert str(e.value).startswith(f"{f}: row 2: field 'answer': missing") and e.value.exit_code == 2


def test_complete_file_without_final_newline_reads_whole(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2}')
    assert [(i, r["a"]) for i, r in iter_jsonl(f)] == [(1, 1), (3, 2)]
    f.write_text('{"a": 1}\n{"a": ')
    with pytest.raises(RowError, match="row 2: truncated"):
        list(iter_jsonl(f))


def test_benchmark_rows_skipped_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.tasks import get_task

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "x", "answer": ""}\n'
                                      '{"problem": "2+2?", "answer": 4}\n')
    task = get_task("math500")
    with collect_skipped() as bad:
        probs = task.problems(task.Args(path="m.jsonl", bad_rows="skip"), "test", 0, 0)
    assert [p.answer for p in probs] == ["2", "4"] and bad.count() == 1
    assert task.check_data(task.Args(path="m.jsonl")) == (f"{tmp_path / 'm.jsonl'}: row 2: field 'answer': empty "
                                                          "(math500 row); set bad_rows: skip to skip bad rows")


def test_truncated_checkpoint_is_detected(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    ck = tmp_path / "step-1"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    save_file({"w": torch.zeros(64), "b": torch.ones(3)}, str(ck / "model.safetensors"))
    check_checkpoint(ck)
    data = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(data[:-7])
    with pytest.raises(ReproError, match="model.safetensors: truncated safetensors file"):
        check_checkpoint(ck)
    (ck / "model.safetensors").write_bytes(data[:5])
    with pytest.raises(ReproError, match="no header"):
        check_checkpoint(ck)
    (ck / "model.safetensors").unlink()
    with pytest.raises(ReproError, match="no weights"):
        check_checkpoint(ck)

"""Acceptance 4 of the benchmark issue: a spec evaluates a tiny model on an lm-eval task through the lm-eval
integration, end to end through Snakemake, and the report shows it beside the native benchmarks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, copy_workflow

pytestmark = pytest.mark.slow


def test_lm_eval_benchmark_through_snakemake_and_report(tmp_path: Path) -> None:
    wd = copy_workflow(tmp_path)
    shutil.copy2(FIXTURES / "lmeval_smoke.yaml", wd / "lmeval_smoke.yaml")
    r = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "specs=lmeval_smoke.yaml"],
                       cwd=wd, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    evals = [d for d in (wd / "results/eval").iterdir() if (d / "manifest.json").is_file()]
    assert len(evals) == 1
    top = json.loads((evals[0] / "metrics.json").read_text())["benchmarks"]
    assert set(top) == {"countdown-id", "countdown-ood", "ifeval-lm"}
    lm = top["ifeval-lm"]
    assert lm["backend"] == "lm-eval:hf" and lm["metric"] == "prompt_level_strict_acc" and lm["n_items"] == 3
    assert {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
            "inst_level_loose_acc"} <= set(lm["lm_eval"]["metrics"])
    rows = [json.loads(line) for line in (evals[0] / "ifeval-lm/samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["problem_id"].startswith("lm_eval/ifeval_local/") for r in rows)
    html = (wd / "reports/lmeval_smoke.html").read_text()
    assert "ifeval-lm" in html and "countdown-id" in html and "countdown-ood" in html

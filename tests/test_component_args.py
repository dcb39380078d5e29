"""Every component kind checks its arguments at `repro validate`: a misspelled key exits 2 with one line
naming the file, the field path and the allowed keys (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from repro.errors import SpecError
from repro.spec import load

BASE = """\
name: typo
base:
  data: {task: countdown, n: 8, task_args: {n_numbers: 3}, teacher: {name: convergent}}
  filters: [{name: verified}]
  analyses: [{name: token_loss}]
"""

def spec_with(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "typo.yaml"
    p.write_text(text)
    return p


def variants() -> list[tuple[str, str, str, str]]:
    return [
        ("task", BASE + "  eval: {benchmarks: [{name: b, task: modarith, task_args: {n_opz: 2}}]}\n",
         "eval.benchmarks.0.task_args.n_opz", "n_ops"),
        ("teacher", BASE.replace("teacher: {name: convergent}", "teacher: {name: divergent, args: {propose_rat: 0.3}}"),
         "data.teacher.args.propose_rat", "propose_rate"),
        ("filter", BASE.replace("[{name: verified}]", "[{name: verified}, {name: branching, args: {kepp: 0.9}}]"),
         "filters.1.args.kepp", "keep"),
        ("analysis", BASE.replace("[{name: token_loss}]", "[{name: token_loss}, {name: token_loss, args: {max_exampels: 3}}]"),
         "analyses.1.args.max_exampels", "max_examples"),
        ("analysis, nested", BASE.replace("[{name: token_loss}]", "[{name: steps, args: {typer: {proposee: [x]}}}]"),
         "analyses.0.args.typer.proposee", "propose"),
        ("task of the training data", BASE.replace("task_args: {n_numbers: 3}", "task_args: {n_number: 3}"),
         "data.task_args.n_number", "n_numbers"),
        ("backend", BASE + "  eval: {sampling: {backend: vllm, backend_args: {tensor_paralel_size: 2}}}\n",
         "eval.sampling.backend_args.tensor_paralel_size", "tensor_parallel_size"),
        ("stage section", BASE + "  train: {step: 3}\n", "base.train.step", "steps"),
        ("claim check", BASE + "  eval: {benchmarks: [{name: b, task: countdown, role: ood}]}\naxes: {t: {a: {train.lr: 0.1}, b: {train.lr: 0.2}}}\n"
         "claims: [{id: X, paper: p, claim: c, check: {kind: greater, metric: accuracy, role: ood, hgher: {t: a}, lower: {t: b}}}]\n",
         "claims.0.check.hgher", "higher"),
    ]


@pytest.mark.parametrize("kind,text,path,allowed", variants(), ids=[v[0] for v in variants()])
def test_misspelled_argument_key(tmp_path: Path, kind: str, text: str, path: str, allowed: str) -> None:
    f = spec_with(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load(f)
    lines = e.value.lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{f}: {path}: unknown key"), lines[0]
    assert "allowed keys:" in lines[0] and allowed in lines[0].split("allowed keys:")[1]


def test_unknown_component_names_list_the_known_ones(tmp_path: Path) -> None:
    text = BASE.replace("{name: verified}", "{name: verifed}").replace("{name: token_loss}", "{name: token_los}")
    text += "  eval: {sampling: {backend: vlm}}\n"
    with pytest.raises(SpecError) as e:
        load(spec_with(tmp_path, text))
    msg = "\n".join(e.value.lines())
    assert "filters.0.name: unknown filter 'verifed'; known: " in msg and "branching" in msg
    assert "analyses.0.name: unknown analysis 'token_los'; known: logit_lens, steps, token_loss" in msg
    assert "eval.sampling.backend: unknown backend 'vlm'; known: " in msg and "transformers" in msg


def test_cli_exit_2_one_line_no_traceback(tmp_path: Path) -> None:
    f = spec_with(tmp_path, variants()[2][1])
    r = subprocess.run([sys.executable, "-m", "repro", "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "filters.1.args.kepp: unknown key of filter 'branching'; allowed keys: keep" in r.stderr

"""The report stage and publishing on a small, hand-built set of job folders.

The fixture writes the files the lead's stages write (generate/filter/train/eval/analyze + manifests) for a
tiny fake plan of 8 conditions: teacher {G, D} x xi {0.05, 0.2, 0.4} with filter none, plus D with a
branch filter and D with a length filter (both reading D's generate job). The numbers are constructed so
that each claim check has a known answer. The browser test opens the pages in headless chromium.

    pytest tests/test_report.py            # browser test skips without chromium unless REPRO_REQUIRE_BROWSER=1
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from repro.config import ReportJob
from repro.identity import digest
from repro.plan import Job, Plan, SpecPlan
from repro.report.html import TIMESTAMP_MARK, strip_timestamp
from repro.spec import Spec

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
STEPS = [0, 10, 20, 40]
CONDS = [("G", "none", "0.05"), ("G", "none", "0.2"), ("G", "none", "0.4"),
         ("D", "none", "0.05"), ("D", "none", "0.2"), ("D", "none", "0.4"),
         ("D", "branch", "0.05"), ("D", "length", "0.05")]

CLAIMS: list[dict[str, Any]] = [
    {"id": "A-T1", "paper": "2604.01702", "claim": "Convergent teacher gives better OOD accuracy", "number": "54.6 vs 49.5",
     "check": {"metric": "accuracy", "role": "ood", "higher": {"teacher": "G"}, "lower": {"teacher": "D"}}},
    {"id": "A-F1", "paper": "2604.01702", "claim": "Divergent teacher has lower training loss", "number": "0.2-0.3 vs 0.6",
     "check": {"kind": "greater", "metric": "final_loss", "higher": {"teacher": "G"}, "lower": {"teacher": "D"}}},
    {"id": "B-F6", "paper": "2604.06628", "claim": "(constructed to fail) G refuses more", "number": "",
     "check": {"metric": "refusal_rate", "role": "safety", "higher": {"teacher": "G"}, "lower": {"teacher": "D"}}},
    {"id": "B-F3", "paper": "2604.06628", "claim": "OOD accuracy dips then recovers", "number": "70.8 → 62.9 → 86.2",
     "check": {"kind": "dip_recovery", "role": "ood"}},
    {"id": "C-F3", "paper": "2502.04667", "claim": "OOD accuracy falls as xi rises", "number": ".978 .776 .491",
     "check": {"kind": "decreasing", "role": "ood", "axis": "xi", "where": {"teacher": "G", "filter": "none"}}},
    {"id": "C-F2", "paper": "2502.04667", "claim": "Bridge resolved earlier with CoT", "number": "layer 3 vs 5",
     "check": {"kind": "layer_shallower", "split": "id", "shallower": {"teacher": "G"}, "deeper": {"teacher": "D"}}},
    {"id": "A-OV", "paper": "2604.01702", "claim": "Branch and length filters overlap little", "number": "", "design": True,
     "check": {"kind": "overlap_below", "a": {"filter": "branch"}, "b": {"filter": "length"}, "threshold": 0.5}},
    {"id": "A-GAP", "paper": "2604.01702", "claim": "xi hurts G more than the branch filter helps D", "number": "",
     "check": {"kind": "gap_greater", "role": "ood",
               "a": {"higher": {"teacher": "G", "xi": "0.05"}, "lower": {"teacher": "G", "xi": "0.4"}},
               "b": {"higher": {"teacher": "D", "filter": "branch"}, "lower": {"teacher": "D", "filter": "none", "xi": "0.05"}}}},
    {"id": "B-SFT", "paper": "2604.06628", "claim": "SFT lowers refusals (step 0 vs the end)", "number": "",
     "check": {"metric": "refusal_rate", "role": "safety", "higher_step": 0, "higher": {"teacher": "D"},
               "lower": {"teacher": "D"}}},
    {"id": "A-T2", "paper": "2604.01702", "claim": "Divergent data has more Propose steps", "number": "33.3% vs 22.5%",
     "design": True, "caveat": "the teachers are built with these rates",
     "check": {"metric": "steps.train.mix.Propose", "higher": {"teacher": "D"}, "lower": {"teacher": "G"}}},
    {"id": "A-F2", "paper": "2604.01702", "claim": "Convergent data has the thicker high-loss tail", "number": "",
     "check": {"metric": "token_loss.tail_share", "higher": {"teacher": "G"}, "lower": {"teacher": "D"}}},
    {"id": "A-S1", "paper": "2604.01702", "claim": "The divergent student proposes more", "number": "",
     "check": {"metric": "steps.outputs.cd-ood.mix.Propose", "higher": {"teacher": "D"}, "lower": {"teacher": "G"}}},
    {"id": "X-NA", "paper": "none", "claim": "Unmeasurable here", "number": "",
     "check": {"metric": "accuracy", "role": "no-such-benchmark", "higher": {"teacher": "G"}, "lower": {"teacher": "D"}}},
]
EXPECTED = {"A-T1": "reproduced", "A-F1": "reproduced", "B-F6": "contradicted", "B-F3": "reproduced",
            "C-F3": "reproduced", "C-F2": "not measurable", "A-OV": "same direction, not significant", "A-GAP": "reproduced",
            "B-SFT": "reproduced", "A-T2": "reproduced", "A-F2": "reproduced", "A-S1": "reproduced",
            "X-NA": "not measurable"}


COMPLETION = {"G": "First we add.\n\nPerhaps try 3.\n\nSo 7.",
              "D": "Perhaps a.\n\nAlternatively b.\n\nPerhaps c.\n\nSo 7."}
REFUSAL = "I cannot help with that."


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


class Fake:
    """Writes job folders (with manifests) and collects them as plan `Job`s."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def job(self, stage: str, name: str, key: Any, files: dict[str, Any], config: dict[str, Any] | None = None) -> str:
        jid = digest([stage, name, key])
        if jid in self.jobs:
            return jid
        job = Job(jid, stage, name, config or {}, {}, {"cpus": 1})
        self.jobs[jid] = job
        out = job.outdir
        for rel, content in files.items():
            p = out / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, list):
                p.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in content))
            else:
                _dump(p, content)
        _dump(out / "manifest.json", {"id": jid, "stage": stage, "name": name, "config": config or {}, "wall_s": 1.5,
                                      "host": "testhost", "versions": {"python": "3.11.7", "torch": "2.0"},
                                      "git_commit": "abc1234", "started": "2025-01-01T00:00:00+00:00",
                                      "ended": "2025-01-01T00:00:01+00:00"})
        return jid


def _acc(teacher: str, filt: str, xi: float, role: str, step: int) -> float:
    final = {"G": 0.75, "D": 0.5}[teacher] - (0.6 * xi if role == "ood" else 0.2 * xi) + {"none": 0, "branch": 0.05, "length": 0.0}[filt]
    base = 0.3
    return round({0: base, 10: base - 0.15, 20: (base + final) / 2, 40: final}[step], 4)


def build(fake: Fake) -> tuple[ReportJob, dict[str, Path]]:
    """The fake plan's job folders; returns the report config and its inputs {job id: folder}."""
    rows = []
    for teacher, filt, xi_s in CONDS:
        xi, name = float(xi_s), f"{teacher}-{filt}-{xi_s}"
        ids = [f"{teacher}{i}" for i in range(20)]
        gen = fake.job("generate", f"countdown-{teacher}", teacher, {
            "stats.json": {"problems": 20, "traces": 20, "unsolved": 0},
            "traces.jsonl": [{"problem_id": i, "task": "countdown", "teacher": teacher, "prompt": "p", "completion": COMPLETION[teacher],
                              "answer": "1", "gold": "1", "steps": [{"type": "Propose", "text": "x"}], "meta": {}} for i in ids]})
        dropped = {"branch": {i: "branchy" for i in ids[:4]}, "length": {i: "long" for i in ids[3:7]}}.get(filt, {})
        fid = fake.job("filter", f"{teacher}-{filt}-{xi_s}", [teacher, filt, xi_s], {
            "stats.json": {"input": 20, "kept": 20 - len(dropped), "dropped": len(dropped),
                           "reasons": {r: sum(1 for v in dropped.values() if v == r) for r in set(dropped.values())},
                           "dropped_ids": dropped, "steps": []}},
            config={"filters": [{"name": filt, "args": {}}], "seed": 0})
        loss0 = {"G": 0.6, "D": 0.3}[teacher]
        tid = fake.job("train", f"sft-xs-{name}", name, {
            "train_log.jsonl": [{"step": s, "loss": round(loss0 + 2.0 / s, 4), "lr": 1e-3, "grad_norm": 1.0} for s in range(1, 41)],
            "metrics.json": {"final_loss": loss0 + 0.05, "steps": 40, "n_examples": 20 - len(dropped), "checkpoints": STEPS}})
        evals = []
        for step in STEPS:
            files: dict[str, Any] = {}
            for bench, role in (("cd-id", "id"), ("cd-ood", "ood"), ("harm", "safety")):
                a = _acc(teacher, filt, xi, "ood" if role == "safety" else role, step)
                m = {"benchmark": bench, "task": "countdown", "split": role, "role": role, "step": step, "n_items": 50,
                     "n_samples": 1, "accuracy": a, "ci_low": max(0.0, a - 0.1), "ci_high": min(1.0, a + 0.1),
                     "mean_response_tokens": 40 + (80 - step if step else 0), "finished_rate": 0.9, "trapped_rate": 0.1}
                samples = [{"problem_id": f"{bench}-{i}", "sample": 0, "output": COMPLETION[teacher], "pred": "1", "correct": i < round(a * 50),
                            "n_tokens": m["mean_response_tokens"], "finished": True, "answered": True} for i in range(50)]
                if role == "safety":
                    m.update({"refusal_rate": {"G": 0.3, "D": 0.5}[teacher] - step / 400, "harm_score": 2.0})
                    for i, row in enumerate(samples):
                        refuse = i < round(m["refusal_rate"] * 50)
                        row.update({"output": REFUSAL if refuse else "Sure: 1", "harm_score": 1 if refuse else 5})
                files.update({f"{bench}/metrics.json": m, f"{bench}/samples.jsonl": samples})
            eid = fake.job("eval", f"cd-id+cd-ood+harm-step{step}", [name, step], files)
            evals += [{"benchmark": bench, "role": role, "step": step, "id": eid}
                      for bench, role in (("cd-id", "id"), ("cd-ood", "ood"), ("harm", "safety"))]
        pp = {"G": 0.34, "D": 0.53}[teacher]
        mix = {"G": {"Propose": 0.22, "Deduce": 0.75, "Verify": 0.03}, "D": {"Propose": 0.33, "Deduce": 0.62, "Verify": 0.05}}[teacher]
        trans = {"Propose": {"Propose": pp, "Deduce": 1 - pp}, "Deduce": {"Deduce": 0.8, "Verify": 0.1, "Propose": 0.1},
                 "Verify": {"Deduce": 1.0}}
        edges = [i * 0.5 for i in range(11)]
        counts = [50, 30, 10, 5, 3, 2, 1, 1, 0, 0] if teacher == "D" else [30, 25, 15, 10, 8, 5, 3, 2, 1, 1]
        tl_id = fake.job("analyze", "token_loss-step40", [name, "tl"], {"summary.json": {
                "mean": loss0, "quantiles": {"0.5": loss0 / 2, "0.9": loss0 * 3}, "tail_share": 0.1, "dilution": 0.4,
                "key_token_loss": {"G": 1.784, "D": 1.533}[teacher], "by_step_type": {"Propose": 1.0, "Deduce": 0.5},
                "histogram": {"edges": edges, "counts": counts}}})
        high = {"G": 3, "D": 1}[teacher]  # tokens above 2 nats in each 10-token example: tail share 0.3 vs 0.1
        nll = np.concatenate([np.r_[np.full(high, 3.0), np.full(10 - high, 0.5)] for _ in range(20)]).astype(np.float16)
        np.savez_compressed(fake.jobs[tl_id].outdir / "nll.npz", nll=nll, offsets=np.arange(0, 201, 10))
        analyses = [
            {"name": "token_loss", "step": 40, "id": tl_id},
            {"name": "steps", "step": 40, "id": fake.job("analyze", "steps-step40", [name, "st"], {"summary.json": {
                "train": {"mix": mix, "transitions": trans, "n_traces": 20, "agreement": 1.0},
                "outputs": {"cd-ood": {"mix": mix, "transitions": trans, "trapped_rate": 0.1, "n": 50}}}})},
            {"name": "logit_lens", "step": 40, "id": fake.job("analyze", "logit_lens-step40", [name, "ll"], {"summary.json": {
                "layers": [0, 1, 2, 3, 4], "target": "bridge",
                "splits": {"id": {"median_rank_by_layer": [40, 9, 2, 0, 0] if teacher == "G" else [50, 30, 20, 10, 5],
                                  "resolved_layer": 3 if teacher == "G" else None},
                           "ood": {"median_rank_by_layer": [60, 30, 5, 1, 0], "resolved_layer": 4}}}})},
        ]
        rows.append({"name": name, "labels": {"teacher": teacher, "filter": filt, "xi": xi_s}, "generate": gen,
                     "filter": fid, "train": tid, "pretrain": None, "reference": None, "steps": 40, "evals": evals,
                     "analyses": analyses})
    cfg = ReportJob(spec="tiny", title="Tiny study <A & C>", conditions=rows, claims=CLAIMS)
    return cfg, {jid: j.outdir for jid, j in fake.jobs.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Job folders, a plan with the tiny spec (report run through the runner) and a spec never run."""
    from repro.runner import run_job

    root = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_RESULTS", str(root / "results"))
        mp.setenv("REPRO_REPORTS", str(root / "reports"))
        fake = Fake()
        cfg, inputs = build(fake)
        rep = Job("rep000000001", "report", "tiny", cfg.model_dump(mode="json"), {j: j for j in inputs}, {"cpus": 1})
        other = Job("rep000000002", "report", "other", {}, {}, {"cpus": 1})
        jobs = {**fake.jobs, rep.id: rep, other.id: other}
        plan = Plan(jobs, [SpecPlan(Spec(name="tiny", title=cfg.title, claims=CLAIMS), "experiments/tiny.yaml", [], rep.id, [], []),
                           SpecPlan(Spec(name="other", title="Never run"), "experiments/other.yaml", [], other.id, [], [])])
        run_job(plan, rep)
        yield {"root": root, "cfg": cfg, "inputs": inputs, "plan": plan, "report": rep.outdir}


def test_claims_directions(world: dict[str, Any]) -> None:
    from repro.report.claims import evaluate
    from repro.report.collect import collect

    got = {c["id"]: c for c in evaluate(CLAIMS, collect(world["cfg"], world["inputs"]))}
    assert {k: v["verdict"] for k, v in got.items()} == EXPECTED
    for c in got.values():  # every measurable claim carries an effect and an interval around it
        if c["verdict"] != "not measurable":
            assert c["ci_low"] <= c["effect"] <= c["ci_high"], c
    assert "teacher=G 0.627 (3 conditions, 3 runs) vs teacher=D 0.424 (5 conditions" in got["A-T1"]["measured"]
    assert abs(got["A-T1"]["effect"] - (0.627 - 0.424)) < 0.002 and 0.1 < got["A-T1"]["ci_low"] < 0.2
    assert "slope -0.573" in got["C-F3"]["measured"] and got["C-F3"]["effects"][0]["direction"] == -1
    assert got["X-NA"]["why"].startswith("no accuracy (no-such-benchmark)")
    assert "no interval (add replicates)" in got["C-F2"]["why"]
    assert "at step 0 0.5 (5 conditions, 5 runs) vs teacher=D at step final 0.4" in got["B-SFT"]["measured"]
    assert "gaps" in got["A-GAP"]["measured"] and "= 0.2" in got["A-GAP"]["measured"]
    assert "Jaccard" in got["A-OV"]["measured"] and "1 dropped by both" in got["A-OV"]["measured"]
    assert [e["label"] for e in got["B-F3"]["effects"]] == ["dip (step 0 - minimum)", "recovery (final - minimum)"]
    # the teachers' Propose share, re-typed per trace: G 1/3, D 3/4
    assert abs(got["A-T2"]["effect"] - (0.75 - 1 / 3)) < 1e-6 and got["A-T2"]["design"]
    assert abs(got["A-S1"]["effect"] - (0.75 - 1 / 3)) < 1e-6  # the same, re-typed per output sample
    assert abs(got["A-F2"]["effect"] - 0.2) < 1e-6  # tail share per example from nll.npz: 0.3 vs 0.1


def test_report_sections_and_summary(world: dict[str, Any]) -> None:
    page = (world["report"] / "report.html").read_text()
    for sid in ("claims", "conditions", "accuracy", "dynamics", "loss", "loss-vs-ood", "token-loss", "steps",
                "filters", "safety", "logit-lens", "sweep-xi", "provenance"):
        assert f"<section id='{sid}'>" in page, sid
    srcs = re.findall(r"<img[^>]*\ssrc='([^']*)'", page)
    assert len(srcs) == 12 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(re.findall(r"<img[^>]*\salt='[^']{20,}'", page)) == len(srcs)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert "Tiny study &lt;A &amp; C&gt;" in page  # escaped
    assert "snakemake --cores all --config specs=experiments/tiny.yaml" in page and "dvc repro" in page
    assert "testhost" in page and "abc1234" in page
    s = json.loads((world["report"] / "summary.json").read_text())
    assert s["spec"] == "tiny" and s["n_conditions"] == 8 and s["status"] == "complete"
    assert s["headline"].startswith("8 of 11 findings reproduced at 95%, 0 in the paper's direction but not "
                                     "significant, 1 contradicted, 2 not measurable") and s["headline"].endswith(".")
    assert "<h3>Design checks</h3>" in page and "the teachers are built with these rates" in page
    assert {c["id"]: c["verdict"] for c in s["claims"]} == EXPECTED
    assert {"effect", "ci_low", "ci_high", "verdict", "why", "effects", "design", "caveat"} <= set(s["claims"][0])
    assert "All claims: effects and 95% intervals" not in page and "Forest plot of 14 claim effects" in page
    # the engine recorded the stage's summary in the manifest
    m = json.loads((world["report"] / "manifest.json").read_text())
    assert m["summary"]["n_figures"] == len(srcs)


def test_publish_index(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.publish import publish

    monkeypatch.setenv("REPRO_RESULTS", str(world["root"] / "results"))
    monkeypatch.setenv("REPRO_REPORTS", str(world["root"] / "reports"))
    text = publish(world["plan"])
    reports = world["root"] / "reports"
    assert (reports / "tiny.html").read_bytes() == (world["report"] / "report.html").read_bytes()
    assert not (reports / "other.html").exists()
    index = (reports / "index.html").read_text()
    assert "href='tiny.html'" in index and "not run" in index and "Never run" in index and "8 / 11" in index
    assert "other: not run" in text and not list(reports.glob(".*tmp*"))
    m = json.loads((reports / "metrics.json").read_text())
    assert list(m) == ["tiny"] and m["tiny"]["findings_reproduced"] == 8 and m["tiny"]["final_accuracy"]["G-none-0.05"]["cd-ood"] == 0.72
    curves = (reports / "curves.csv").read_text().splitlines()
    assert curves[0] == "spec,condition,benchmark,role,step,accuracy" and len(curves) == 1 + 8 * 3 * 4
    assert "tiny,G-none-0.05,cd-id,id,0,0.3" in curves


def test_deterministic(world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two renders are byte-identical apart from the generated-at line, which SOURCE_DATE_EPOCH pins."""
    from repro.stages.report import run

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    run(world["cfg"], world["inputs"], tmp_path / "a", {})
    run(world["cfg"], world["inputs"], tmp_path / "b", {})
    a, b = (tmp_path / "a" / "report.html").read_bytes(), (tmp_path / "b" / "report.html").read_bytes()
    assert a == b and b"Generated at 2023-11-14T22:13:20+00:00" in a
    first = (world["report"] / "report.html").read_text()  # rendered by the runner, no epoch set
    assert first.count(TIMESTAMP_MARK) == 1 and "2023-11-14" not in first
    assert strip_timestamp(first) == strip_timestamp(a.decode())
    assert (tmp_path / "a" / "summary.json").read_bytes() == (world["report"] / "summary.json").read_bytes()


def test_missing_jobs_are_skipped(world: dict[str, Any], tmp_path: Path) -> None:
    """Without the analyses and one train job the report still renders, marks itself partial, skips sections."""
    from repro.stages.report import run

    cfg: ReportJob = world["cfg"]
    gone = {a["id"] for r in cfg.conditions for a in r["analyses"]} | {cfg.conditions[0]["train"]}
    inputs = {k: (v if k not in gone else tmp_path / "nowhere" / k) for k, v in world["inputs"].items()}
    summary = run(cfg, inputs, tmp_path / "out", {})
    page = (tmp_path / "out" / "report.html").read_text()
    assert summary["status"] == "partial"
    assert "<section id='logit-lens'>" not in page and "<section id='token-loss'>" not in page
    assert "<section id='accuracy'>" in page and "missing or without a manifest" in page
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    by_id = {c["id"]: c["verdict"] for c in s["claims"]}
    assert by_id["C-F2"] == "not measurable" and by_id["A-T1"] == "reproduced"


def test_empty_report(tmp_path: Path) -> None:
    from repro.stages.report import run

    cfg = ReportJob(spec="empty", title="Nothing yet", conditions=[], claims=[])
    summary = run(cfg, {}, tmp_path, {})
    assert summary["status"] == "no results"
    assert "<section id='provenance'>" in (tmp_path / "report.html").read_text()


@pytest.mark.browser
def test_pages_in_browser(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from browser import check_page

    from repro.publish import publish

    monkeypatch.setenv("REPRO_RESULTS", str(world["root"] / "results"))
    monkeypatch.setenv("REPRO_REPORTS", str(world["root"] / "reports"))
    publish(world["plan"])
    ARTIFACTS.mkdir(exist_ok=True)
    for page, shot in ((world["root"] / "reports" / "tiny.html", "report-tiny.png"),
                       (world["root"] / "reports" / "index.html", "report-index.png")):
        r = check_page(page, ARTIFACTS / shot)
        assert r["console_errors"] == [], r["console_errors"]
        assert r["failed_requests"] == [], r["failed_requests"]
        assert r["broken_images"] == [], r["broken_images"]
        assert (ARTIFACTS / shot).stat().st_size > 1000
    r = check_page(world["root"] / "reports" / "tiny.html")
    assert r["n_images"] == 12 and "Tiny study" in r["title"] and "Claims" in r["text"]
    # the claims table as a reader sees it: verdicts, effects with intervals, design checks apart
    for text in ("Findings (11:", "Design checks", "reproduced", "contradicted", "not measurable",
                 "our effect [95% interval]", "difference: 0.203 ["):
        assert text in r["text"], text

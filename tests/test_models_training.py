"""Tokenizers, tiny models, SFT via TRL, generation backends, token-level loss and the logit lens.

Everything runs offline on CPU with models built from a config. One tiny SFT run (module fixture) feeds the
checkpoint, log, determinism, token-loss and generation tests. Run: `pytest tests/test_models_training.py`.
"""

from __future__ import annotations

import json
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.analysis.logitlens import ranks, resolved_layer
from repro.analysis.tokenloss import (
    encode,
    load_nll,
    save_nll,
    step_spans,
    step_type_loss,
    summarize,
    token_nll,
)
from repro.backends.hf import generate_with_model
from repro.config import SamplingConfig
from repro.errors import ReproError
from repro.generation import Runtime, generate
from repro.models import (
    ARCHS,
    build_model,
    build_tokenizer,
    load_pretrained,
    n_params,
    render_prompt,
)
from repro.config import TrainConfig
from repro.training import RunOptions, pretrain, sft

THREADS = 1  # the CI box has 2 cores shared with other jobs: 1 thread avoids oversubscription


def arith_examples(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Prompt/completion records with completions of very different lengths (1-4 steps)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        steps = "\n".join(f"step {k}: {a} + {k} = {a + k}" for k in range(1, rng.randint(1, 4) + 1))
        out.append({"prompt": f"{a} + {b} = ?", "completion": f"{steps}\nanswer {a + b}"})
    return out


def texts_of(examples: list[dict[str, str]]) -> list[str]:
    return [e["prompt"] + "\n" + e["completion"] for e in examples]


KG = [f"<e_{i}> <r_{i % 3}> <e_{(i * 7) % 10}>" for i in range(10)]


# ---------------------------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_tokenizer_deterministic(kind: str) -> None:
    texts = texts_of(arith_examples(40)) if kind == "bpe" else KG
    a = build_tokenizer(texts, kind, vocab_size=300, extra_tokens=["</a>"])
    b = build_tokenizer(list(texts), kind, vocab_size=300, extra_tokens=["</a>"])
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    c = build_tokenizer(texts[: len(texts) // 2], kind, vocab_size=300, extra_tokens=["</a>"])
    assert c.backend_tokenizer.to_str() != a.backend_tokenizer.to_str()
    assert (a.pad_token, a.eos_token, a.bos_token, a.unk_token) == ("<|pad|>", "<|eos|>", "<|bos|>", "<|unk|>")
    assert len({a.pad_token_id, a.eos_token_id, a.bos_token_id, a.unk_token_id}) == 4


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_rendered_prompt_is_a_token_prefix(kind: str) -> None:
    """Training (prompt+completion tokenized together) must see the same prompt tokens as generation."""
    tok = build_tokenizer(texts_of(arith_examples(40)) + KG, kind, vocab_size=400)
    for prompt in ["3 + 4 = ?", "<e_1> <r_2> <r_0>", "x"]:
        p = tok(text=render_prompt(prompt))["input_ids"]
        for completion in ["step 1", " step", "\nstep", "\n\n7", "7", "= 3", "<e_3> <e_4>"]:
            full = tok(text=render_prompt(prompt) + completion + tok.eos_token)["input_ids"]
            assert full[: len(p)] == p, (prompt, completion)
            assert full[-1] == tok.eos_token_id


def test_word_tokenizer_one_token_per_word() -> None:
    tok = build_tokenizer(KG, "word", vocab_size=100, extra_tokens=["</a>"])
    ids = tok(text="<e_1> <r_1> <e_7></a>")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<e_1>", "<r_1>", "<e_7>", "</a>"]
    assert tok.decode(ids + [tok.eos_token_id], skip_special_tokens=True) == "<e_1> <r_1> <e_7> </a>"
    assert tok(text="<e_99>")["input_ids"] == [tok.unk_token_id]
    small = build_tokenizer(KG, "word", vocab_size=8)
    assert len(small) == 8


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_checkpoint_roundtrip_keeps_tokenization(tmp_path: Path, kind: str) -> None:
    """AutoTokenizer would load our qwen2 checkpoints as Qwen2Tokenizer and tokenize differently."""
    tok = build_tokenizer(texts_of(arith_examples(20)) + KG, kind, vocab_size=300)
    model = build_model("xs", tok, seed=0)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model2, tok2 = load_pretrained(tmp_path)
    text = render_prompt("12 + 3 = ?") + "step 1: 12 + 1 = 13\nanswer 15 <e_1> <r_2>" + tok.eos_token
    assert tok2(text=text)["input_ids"] == tok(text=text)["input_ids"]
    assert tok2.eos_token_id == tok.eos_token_id and tok2.pad_token_id == tok.pad_token_id
    x = torch.tensor([tok(text=text)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(x).logits, model2(x).logits)


# ---------------------------------------------------------------------------------------------- models


def test_build_model_sizes_and_seed() -> None:
    tok = build_tokenizer(texts_of(arith_examples(40)), "bpe", vocab_size=512)
    sizes = {a: n_params(build_model(a, tok, seed=0)) for a in ("xs", "s", "m")}
    assert sizes["xs"] < sizes["s"] < sizes["m"]
    assert 0.05e6 < sizes["xs"] < 0.4e6 and 0.5e6 < sizes["s"] < 2e6 and 2e6 < sizes["m"] < 8e6
    a, b, c = (build_model("xs", tok, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight, c.model.layers[0].mlp.up_proj.weight)
    custom = build_model({**ARCHS["xs"], "num_hidden_layers": 3}, tok, seed=0)
    assert custom.config.num_hidden_layers == 3 and custom.config.vocab_size == len(tok)
    with pytest.raises(KeyError, match="known"):
        build_model("huge", tok)


def test_train_config_validation() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="constant_with_warmup"):
        TrainConfig(steps=10, schedule="constant", warmup_steps=2)
    with pytest.raises(ValidationError, match="schedule"):
        TrainConfig(steps=10, schedule="step")
    assert TrainConfig(steps=100, schedule="cosine", warmup_ratio=0.1).n_warmup() == 10
    assert TrainConfig(steps=100, warmup_steps=20, warmup_ratio=0.1).n_warmup() == 20


# ---------------------------------------------------------------------------------------------- SFT run

N_EX, STEPS, CKPTS = 24, 30, [0, 6, 30]
PARAMS = TrainConfig(steps=STEPS, checkpoints=CKPTS, lr=1e-2, schedule="constant", batch_size=N_EX, seed=3,
                     max_length=48)
OPTS = RunOptions(threads=THREADS)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny SFT run: full-batch (every step sees all examples), so the loss logged at step N+1 is the
    token-mean loss of the step-N weights on exactly these examples. max_length 48 truncates 6 of the 24
    sequences (30-57 tokens), so truncation is part of what the token-loss check compares."""
    examples = arith_examples(N_EX)
    tok = build_tokenizer(texts_of(examples), "bpe", vocab_size=300)
    model = build_model("xs", tok, seed=0)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path_factory.mktemp("sft")
    rows = sft(examples, model, tok, PARAMS, out, OPTS)
    return dict(examples=examples, tok=tok, out=out, rows=rows, init=init)


@pytest.mark.slow
def test_sft_writes_checkpoints_and_log(run: dict) -> None:
    out = run["out"]
    for step in CKPTS:
        d = out / "checkpoints" / f"step-{step}"
        for name in ("config.json", "model.safetensors", "tokenizer.json", "repro_checkpoint.json"):
            assert (d / name).is_file(), (step, name)
        assert not list(d.glob("optimizer*"))
        assert json.loads((d / "repro_checkpoint.json").read_text())["step"] == step
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(f"step-{s}" for s in CKPTS)
    step0, _ = load_pretrained(out / "checkpoints" / "step-0")
    assert all(torch.equal(v, run["init"][k]) for k, v in step0.state_dict().items())
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert rows == run["rows"] and [r["step"] for r in rows] == list(range(1, STEPS + 1))
    for key in ("loss", "lr", "grad_norm", "num_tokens", "mean_token_accuracy"):
        assert all(key in r for r in rows), key
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5  # it learns
    assert json.loads((out / "train_summary.json").read_text())["tokens"] > 0


@pytest.mark.slow
def test_sft_is_deterministic(run: dict, tmp_path: Path) -> None:
    """A re-run with the same seed repeats the fixture's losses (the first steps of its constant-LR run)."""
    short = PARAMS.model_copy(update={"steps": 4, "checkpoints": []})
    rows = sft(run["examples"], build_model("xs", run["tok"], seed=0), run["tok"], short, tmp_path / "same", OPTS)
    assert [r["loss"] for r in rows] == pytest.approx([r["loss"] for r in run["rows"][:4]], abs=1e-6)
    other = sft(run["examples"], build_model("xs", run["tok"], seed=1), run["tok"], short, tmp_path / "other", OPTS)
    assert abs(other[-1]["loss"] - rows[-1]["loss"]) > 1e-3  # the check can fail


@pytest.mark.slow
@pytest.mark.parametrize("step", [0, 6])
def test_token_nll_matches_trl_loss(run: dict, step: int) -> None:
    """Our per-token NLL of the step-N checkpoint, token-averaged, is the loss TRL logged at step N+1
    (computed on the same full batch with the step-N weights). Tolerance: 1e-4 relative, tighter than the
    1% asked for; after training, the plausible wrong quantities (mean of per-sequence means, eos left
    out, prompt tokens included, no truncation) are each > 10x the tolerance away, so they would fail."""
    model, tok = load_pretrained(run["out"] / "checkpoints" / f"step-{step}")
    nlls = token_nll(model, tok, run["examples"], batch_size=5, max_length=PARAMS.max_length, threads=THREADS)
    logged = run["rows"][step]["loss"]  # rows[i] is step i + 1
    ours = summarize(nlls)["mean"]
    assert ours == pytest.approx(logged, rel=1e-4)
    if step == 0:
        return  # at random init every token costs ~ln(vocab): the alternatives below coincide
    no_eos = float(np.mean(np.concatenate([x[:-1] for x in nlls])))
    with_prompt = summarize(token_nll(model, tok, run["examples"], max_length=48, completion_only=False))["mean"]
    untruncated = summarize(token_nll(model, tok, run["examples"], max_length=None))["mean"]
    for wrong in (summarize(nlls)["seq_mean"], no_eos, with_prompt, untruncated):
        assert abs(wrong - logged) > 1e-3 * logged


@pytest.mark.slow
def test_pretrain_full_loss_matches_token_nll(run: dict, tmp_path: Path) -> None:
    model = build_model("xs", run["tok"], seed=0)
    params = TrainConfig(steps=2, checkpoints=[0], lr=1e-2, schedule="constant", batch_size=N_EX, seed=3,
                         max_length=64, completion_only_loss=False)
    rows = pretrain(run["examples"], model, run["tok"], params, tmp_path, OPTS)
    m0, tok = load_pretrained(tmp_path / "checkpoints" / "step-0")
    nll = token_nll(m0, tok, run["examples"], max_length=64, completion_only=False)
    assert summarize(nll)["mean"] == pytest.approx(rows[0]["loss"], rel=1e-4)


# ---------------------------------------------------------------------------------------------- generation


@pytest.mark.slow
def test_generation_batched_equals_one_by_one(run: dict) -> None:
    ckpt = run["out"] / "checkpoints" / f"step-{STEPS}"
    prompts = [e["prompt"] for e in run["examples"][:6]] + ["1 + 1 = ?", "20 + 20 + 20 = ?"]
    params, rt = SamplingConfig(max_new_tokens=64), Runtime(batch_size=3, threads=THREADS)
    batched = generate(params, ckpt, prompts, rt)
    model, tok = load_pretrained(ckpt)
    for p, gens in zip(prompts, batched):
        single = generate_with_model(model, tok, [render_prompt(p)], params, rt)[0]
        assert gens == single
    assert all(len(g) == 1 and g[0].backend == "transformers" for g in batched)
    finished = [g[0] for g in batched if g[0].finished]
    assert finished, "the trained model should stop on eos for some prompts"
    assert all(g.n_new_tokens < 64 and "<|eos|>" not in g.text for g in finished)
    assert all(g.n_new_tokens == 64 for g in (x[0] for x in batched) if not g.finished)
    short = generate(SamplingConfig(max_new_tokens=2), ckpt, prompts[:2], Runtime(threads=THREADS))
    assert all(not g[0].finished and g[0].n_new_tokens == 2 for g in short)


@pytest.mark.slow
def test_sampling_n_and_seed(run: dict) -> None:
    ckpt = run["out"] / "checkpoints" / "step-6"
    params = SamplingConfig(max_new_tokens=8, temperature=1.0, top_p=0.95, n_samples=3, seed=7)
    a = generate(params, ckpt, ["3 + 4 = ?", "5 + 5 = ?"], Runtime(threads=THREADS))
    b = generate(params, ckpt, ["3 + 4 = ?", "5 + 5 = ?"], Runtime(threads=THREADS))
    assert a == b and [len(x) for x in a] == [3, 3]
    assert len({g.text for x in a for g in x}) > 1


def test_vllm_backend_missing_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ReproError, match="vllm"):
        generate(SamplingConfig(backend="vllm"), "unused", ["x"])


def test_vllm_backend_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The vLLM path with a stand-in module: token ids in, our tokenizer decodes, eos handling."""
    tok = build_tokenizer(KG, "word", vocab_size=100)
    tok.save_pretrained(tmp_path)
    e = tok.convert_tokens_to_ids
    seen: dict = {}

    class LLM:
        def __init__(self, **kw: object) -> None:
            seen["llm"] = kw

        def generate(self, prompts: list, sp: list, use_tqdm: bool = False) -> list:
            seen["prompts"], seen["sp"] = prompts, sp[0]
            done = types.SimpleNamespace(token_ids=[e("<e_1>"), tok.eos_token_id], finish_reason="stop")
            cut = types.SimpleNamespace(token_ids=[e("<e_2>"), e("<e_3>")], finish_reason="length")
            return [types.SimpleNamespace(outputs=[done, cut]) for _ in prompts]

    fake = types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    out = generate(SamplingConfig(backend="vllm", max_new_tokens=2, n_samples=2, temperature=0.7), tmp_path,
                   ["<e_1> <r_1> <r_2>"])
    assert seen["prompts"][0]["prompt_token_ids"] == tok(text=render_prompt("<e_1> <r_1> <r_2>"))["input_ids"]
    assert seen["sp"]["stop_token_ids"] == [tok.eos_token_id] and seen["sp"]["max_tokens"] == 2
    assert [(g.text, g.n_new_tokens, g.finished, g.backend) for g in out[0]] == [
        ("<e_1>", 2, True, "vllm"), ("<e_2> <e_3>", 2, False, "vllm")]


# ---------------------------------------------------------------------------------------------- analysis


def test_summarize_and_save_roundtrip(tmp_path: Path) -> None:
    nlls = [np.array([0.01, 0.05, 3.0, 1.0], np.float32), np.array([0.02, 2.5], np.float32)]
    s = summarize(nlls)
    assert s["n_tokens"] == 6 and s["mean"] == pytest.approx(6.58 / 6)
    assert s["seq_mean"] == pytest.approx((4.06 / 4 + 2.52 / 2) / 2)
    assert s["high_share"] == pytest.approx(2 / 6) and s["dilution"] == pytest.approx(3 / 6)
    assert s["key_loss"] == pytest.approx(3.0)  # top 10% of 6 tokens: the single largest
    back = load_nll(save_nll(tmp_path / "nll.npz", nlls))
    assert [len(x) for x in back] == [4, 2]
    assert np.allclose(np.concatenate(back), np.concatenate(nlls), rtol=1e-3)


def test_step_type_loss_maps_tokens_by_offsets() -> None:
    tok = build_tokenizer(texts_of(arith_examples(40)), "bpe", vocab_size=400)
    steps = [("Propose", "try 3 + 4 = 7"), ("Verify", "check: 7 - 4 = 3")]
    ex = {"prompt": "3 + 4 = ?", "completion": "try 3 + 4 = 7\n\ncheck: 7 - 4 = 3\nanswer 7"}
    ids, first, offsets = encode(tok, ex)
    n_p, n_v = (len(tok(text=t)["input_ids"]) for _, t in steps)  # each step starts on a token boundary
    # scored tokens in order: Propose, "\n", "\n", Verify, then "\n", "answer", " 7", eos
    values = [1.0] * n_p + [5.0] * 2 + [2.0] * n_v
    nll = np.array(values + [5.0] * (len(offsets) - len(values)), np.float32)
    res = step_type_loss([nll], [offsets], [step_spans(ex["completion"], steps)])
    assert res == {"Propose": {"mean": 1.0, "n_tokens": n_p}, "Verify": {"mean": 2.0, "n_tokens": n_v},
                   "other": {"mean": 5.0, "n_tokens": len(ids) - first - n_p - n_v}}


def test_logit_lens_shapes_and_last_layer_is_real_logits() -> None:
    tok = build_tokenizer(KG, "word", vocab_size=100)
    model = build_model({**ARCHS["xs"], "num_hidden_layers": 3}, tok, seed=0)
    prompts = [" ".join(k.split()[:2]) + " <r_0>" for k in KG]
    targets = [k.split()[2] for k in KG]
    r = ranks(model, tok, prompts, targets, position=-2, batch_size=4)
    assert r.shape == (4, len(KG)) and r.min() >= 0 and r.max() < len(tok)
    ids = [tok(text=render_prompt(p))["input_ids"] for p in prompts]
    tgt = [tok.convert_tokens_to_ids(t) for t in targets]
    with torch.no_grad():
        for j, seq in enumerate(ids):
            logits = model(torch.tensor([seq])).logits[0, len(seq) - 2]
            assert r[-1, j] == int((logits > logits[tgt[j]]).sum())
    prefixed = ranks(model, tok, prompts, targets, position=-1, prefixes=[" <e_1>"] * len(KG))
    assert prefixed.shape == r.shape
    with pytest.raises(ValueError, match="single token"):
        ranks(model, tok, prompts[:1], ["<e_1> <e_2>"], position=0)
    assert resolved_layer(np.array([[5, 9], [0, 3], [0, 0]])) == 2
    assert resolved_layer(np.array([[5, 9], [0, 3], [0, 0]]), threshold=2) == 1
    assert resolved_layer(np.array([[5, 9], [4, 3]])) is None


def test_pad_collator_builds_trls_batch() -> None:
    """The collator the train stage swaps in builds the very batch TRL's own collator would (same keys, order,
    dtypes, values), and is only swapped in where that holds."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from repro.training import PadCollator, fast_collator

    rng = random.Random(0)
    examples = []
    for _ in range(9):
        n = rng.randint(1, 12)
        ids = [rng.randint(3, 50) for _ in range(n)]
        k = rng.randint(0, n - 1)
        examples.append({"input_ids": ids, "labels": [-100] * k + ids[k:]})
    examples.append({"input_ids": [5, 6, 7]})  # no labels: the input ids are the labels
    trl_collator = DataCollatorForLanguageModeling(pad_token_id=1)
    want, got = trl_collator(examples), fast_collator(trl_collator)(examples)
    assert isinstance(fast_collator(trl_collator), PadCollator)
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    for kept in (DataCollatorForLanguageModeling(pad_token_id=1, padding_free=True),
                 DataCollatorForLanguageModeling(pad_token_id=1, pad_to_multiple_of=8)):
        assert fast_collator(kept) is kept

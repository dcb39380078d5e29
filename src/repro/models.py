"""Tiny models and tokenizers: everything that makes or loads a (model, tokenizer) pair.

- `build_tokenizer(texts, kind)`: a tokenizer trained in-process (byte-level BPE, or a whitespace word-level
  vocabulary where every word is one token, for the two-hop task). Same texts -> identical tokenizer.json.
- `ARCHS` / `build_model(arch, tokenizer, seed)`: named tiny Qwen2 decoder sizes, random init, deterministic.
- `load_pretrained(path_or_hub_id)`: the real loading path (a local dir in tests; a hub id on real machines).
- `render_prompt(prompt)`: THE prompt template, used identically by training (`repro.training`),
  generation (`repro.generation`) and analysis. Completions are trained with the tokenizer's eos appended.
  Tokenizers built here carry `CHAT_TEMPLATE`, a Jinja chat template that renders a user turn exactly as
  `render_prompt` does, so tools that only know chat templates (vLLM, lm-eval, lighteval,
  `transformers serve`) prompt our checkpoints as training did.
- `chat_text(tokenizer, messages, kwargs)`: a chat rendered for generation — the tokenizer's chat template
  (hub models: system prompt, `enable_thinking`, `reasoning_effort` ... passed through), else `render_prompt`.

The template ends in a newline on purpose: for byte-level BPE (GPT-2's pre-tokenizer regex; with Qwen2's, "Answer:"
keeps its newline and a completion that starts with a letter, digit, space or punctuation starts a new piece) and for whitespace
word-level tokenizers a trailing newline is always a token boundary, so the tokenized prompt is a prefix of the
tokenized prompt+completion and training sees exactly the context generation sees.

Usage: `tok = build_tokenizer(texts, "bpe", vocab_size=512); model = build_model("s", tok, seed=0)`.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

log = logging.getLogger(__name__)

PAD, EOS, BOS, UNK = "<|pad|>", "<|eos|>", "<|bos|>", "<|unk|>"
SPECIAL_TOKENS = (PAD, EOS, BOS, UNK)
# How `transformers serve` parses our models' replies (it would apply Qwen's <|im_start|> parser to a qwen2-type
# model): the reply is plain content up to eos.
RESPONSE_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "Answer:\n",
    "fields": {"content": {"close_pattern": r"<\|eos\|>", "content": "text"}},
}
# transformers' Qwen2Tokenizer pre-tokenization (digits one by one; punctuation keeps its trailing newlines).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
PROMPT_TEMPLATE = "Question: {prompt}\nAnswer:\n"
# PROMPT_TEMPLATE as a chat template: user turns as the template, assistant turns as completion + eos,
# system messages dropped (our models never saw one); "Answer:\n" is itself the generation prompt.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ 'Question: ' + message['content'] + '\n' + 'Answer:' + '\n' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ message['content'] + eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


def common_prefix(a: Iterable[int], b: Iterable[int]) -> int:
    """Length of the common prefix of two token-id sequences (TRL's prompt / prompt+completion rule)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def render_prompt(prompt: str) -> str:
    """The one prompt template (no chat template): training, generation and analysis all call this."""
    return PROMPT_TEMPLATE.format(prompt=prompt)


def chat_text(tokenizer: Any, messages: Iterable[dict[str, str]], template_kwargs: dict[str, Any] | None = None) -> str:
    """A chat rendered for generation with the tokenizer's chat template (generation prompt added); a
    tokenizer without one (older checkpoints of ours) gets `render_prompt` of the last user turn."""
    messages = list(messages)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             **(template_kwargs or {}))
    return render_prompt([m for m in messages if m["role"] == "user"][-1]["content"])


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (default: all cores); returns the count used."""
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


# ---------------------------------------------------------------------------------------------- tokenizers


def _word_vocab(texts: Iterable[str], vocab_size: int, reserved: list[str]) -> dict[str, int]:
    """Most frequent whitespace words (ties broken alphabetically) after the reserved tokens."""
    counts = Counter(w for t in texts for w in t.split())
    for tok in reserved:
        counts.pop(tok, None)
    budget = max(vocab_size - len(reserved), 0)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if len(words) > budget:
        log.warning("word vocabulary truncated: %d words, room for %d (rest map to %s)", len(words), budget, UNK)
    vocab = {tok: i for i, tok in enumerate(reserved)}
    for w in sorted(words[:budget]):
        vocab[w] = len(vocab)
    return vocab


def build_tokenizer(
    texts: Iterable[str],
    kind: str = "bpe",
    vocab_size: int = 512,
    extra_tokens: Iterable[str] = (),
    pretokenizer: str = "gpt2",
) -> PreTrainedTokenizerFast:
    """Train a tokenizer on `texts` in-process.

    kind="bpe": byte-level BPE (any text encodes; no unknowns), pre-tokenized as GPT-2 does (`pretokenizer`
    "gpt2") or as Qwen2 does ("qwen2": the only one stock AutoTokenizer reproduces for a qwen2-type checkpoint). kind="word": whitespace-split WordLevel, one id
    per word, unseen words -> unk (use it when every entity/relation must be a single token). `extra_tokens`
    (e.g. "</a>") become atomic, non-special tokens: they are split out of text before pre-tokenisation and kept
    by `decode(skip_special_tokens=True)`. The template's own words are always in the training texts.
    Deterministic: the same inputs give a byte-identical tokenizer.json.
    """
    texts = [render_prompt("")] + list(texts)
    extra = [t for t in dict.fromkeys(extra_tokens) if t not in SPECIAL_TOKENS]
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        if pretokenizer == "qwen2":
            # Qwen2's normalizer and pre-tokenizer, exactly: stock AutoTokenizer loads a qwen2-type checkpoint as
            # Qwen2Tokenizer, which rebuilds this pipeline around our vocab and merges, so vLLM, lm-eval and
            # `transformers serve` tokenize our checkpoints as we do.
            tok.normalizer = normalizers.NFC()
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ])
        elif pretokenizer == "gpt2":
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        else:
            raise ValueError(f"unknown pretokenizer {pretokenizer!r}; known: gpt2, qwen2")
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
    elif kind == "word":
        tok = Tokenizer(models.WordLevel(_word_vocab(texts, vocab_size, [*SPECIAL_TOKENS, *extra]), unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # no decoder: decode joins tokens with spaces
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: bpe, word")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    if extra:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in extra])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=BOS,
        unk_token=UNK,
        padding_side="right",
        model_max_length=4096,
        chat_template=CHAT_TEMPLATE,
        response_template=RESPONSE_TEMPLATE,
    )


# ---------------------------------------------------------------------------------------------- models

# Parameter counts at a 512-token vocabulary with tied embeddings: xs ~0.17M, s ~1.1M, m ~4.3M, l ~8.5M.
ARCHS: dict[str, dict[str, Any]] = {
    name: {"hidden_size": d, "intermediate_size": 4 * d, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": heads}
    for name, d, layers, heads in [("xs", 64, 2, 4), ("s", 128, 4, 4), ("m", 256, 4, 8), ("l", 256, 8, 8)]
}
ARCH_DEFAULTS: dict[str, Any] = {
    "max_position_embeddings": 1024, "tie_word_embeddings": True, "rope_theta": 10000.0, "attention_dropout": 0.0
}


def model_config(arch: str | dict[str, Any], tokenizer: PreTrainedTokenizerFast) -> Qwen2Config:
    """A Qwen2Config from a named size in ARCHS or an explicit dict of Qwen2Config fields (vocab and special
    token ids always come from the tokenizer)."""
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise KeyError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
        fields = dict(ARCHS[arch])
    else:
        fields = dict(arch)
    if taken := sorted({"vocab_size", "pad_token_id", "eos_token_id", "bos_token_id"} & set(fields)):
        raise ValueError(f"arch fields {taken} come from the tokenizer; leave them out")
    fields = {**ARCH_DEFAULTS, **fields}
    return Qwen2Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **fields,
    )


def build_model(arch: str | dict[str, Any], tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 decoder; the same (arch, tokenizer, seed) gives identical weights.
    The global torch RNG is left as it was."""
    config = model_config(arch, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    name = arch if isinstance(arch, str) else "custom"
    log.info("built %s model: %.3fM parameters", name, n_params(model) / 1e6)
    return model


def n_params(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


GENERIC_TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_tokenizer(path_or_hub_id: str | Path, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a checkpoint. A local dir whose tokenizer_config.json declares a generic class
    (ours) loads tokenizer.json verbatim: AutoTokenizer would map model_type qwen2 to Qwen2Tokenizer, which
    rebuilds a Qwen pre-tokenizer and silently tokenizes our tokenizers differently. Anything else (hub ids,
    real Qwen dirs) goes through AutoTokenizer. A tokenizer without a pad token gets eos as pad."""
    from transformers import AutoTokenizer

    cfg = Path(path_or_hub_id) / "tokenizer_config.json"
    declared = json.loads(cfg.read_text()).get("tokenizer_class") if cfg.is_file() else None
    if declared in GENERIC_TOKENIZER_CLASSES:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path_or_hub_id))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_hub_id), trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_pretrained(path_or_hub_id: str | Path, dtype: torch.dtype = torch.float32,
                    trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) via from_pretrained: a local dir (our checkpoints) or a hub id on machines that
    reach the hub. The model is returned in eval mode. Code shipped with a model runs only with
    `trust_remote_code` (a spec's `model.trust_remote_code`, see repro.safety.remote_code_allowed)."""
    from transformers import AutoModelForCausalLM

    local = isinstance(path_or_hub_id, Path) or str(path_or_hub_id).startswith(("/", ".", "~"))
    if local and not Path(path_or_hub_id).expanduser().is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {path_or_hub_id}")
    tokenizer = load_tokenizer(path_or_hub_id, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(str(path_or_hub_id), dtype=dtype, trust_remote_code=trust_remote_code)
    model.eval()
    return model, tokenizer

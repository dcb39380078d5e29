"""Logit lens for decoder-only models (paper C's "at which layer is the bridge entity resolved").

For each layer l = 0 (embeddings), 1..L (block outputs), the hidden state at one position is passed through
the model's final norm and unembedding, and the rank of a target token is read off (rank 0 = top-1). The
last layer's ranks are those of the model's real logits.

- `ranks(model, tokenizer, prompts, targets, position)` -> int array [layers, items].
- `resolved_layer(ranks, threshold=0)`: first layer whose median rank <= threshold (None if none).

Inputs are rendered with the training template; `prefixes` appends the start of a completion (e.g. the
emitted bridge entity, to probe the second hop at its position). `position` indexes each item's own
tokens (negative counts from the end: -1 = the last token of rendered prompt + prefix).

Usage: `r = ranks(model, tok, ["<e_1> <r_2> <r_3>"], ["<e_9>"], position=-2); resolved_layer(r)`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from repro.models import render_prompt
from repro.progress import Progress


def target_id(tokenizer: Any, target: str | int) -> int:
    """The id of a single-token target (a token string, its text, or an id)."""
    if isinstance(target, int):
        return target
    vocab = tokenizer.get_vocab()
    if target in vocab:
        return vocab[target]
    ids = tokenizer(text=target, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"target {target!r} is not a single token: {tokenizer.convert_ids_to_tokens(ids)}")
    return ids[0]


def _parts(model: Any) -> tuple[Any, Sequence[Any], Any, Any]:
    """(embedding module, decoder blocks, final norm, unembedding) of a Llama/Qwen-style causal LM."""
    backbone = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    return backbone.embed_tokens, backbone.layers, backbone.norm, model.get_output_embeddings()


@torch.no_grad()
def ranks(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    targets: Sequence[str | int],
    position: int,
    prefixes: Sequence[str] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Rank of each item's target token at `position`, per layer: int64 array [n_layers + 1, n_items]."""
    if len(prompts) != len(targets) or (prefixes is not None and len(prefixes) != len(prompts)):
        raise ValueError("prompts, targets (and prefixes) must have the same length")
    texts = [render_prompt(p) + (prefixes[i] if prefixes else "") for i, p in enumerate(prompts)]
    ids = [tokenizer(text=t)["input_ids"] for t in texts]
    tgt = torch.tensor([target_id(tokenizer, t) for t in targets])
    pos = []
    for seq in ids:
        p = position if position >= 0 else len(seq) + position
        if not 0 <= p < len(seq):
            raise ValueError(f"position {position} outside a sequence of {len(seq)} tokens")
        pos.append(p)
    embed, layers, norm, head = _parts(model)
    captured: list[torch.Tensor] = []

    def grab(module: Any, args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    hooks = [embed.register_forward_hook(grab)] + [layer.register_forward_hook(grab) for layer in layers]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    out = np.zeros((len(layers) + 1, len(ids)), dtype=np.int64)
    with Progress("logit lens", total=len(ids), unit="items") as progress:
        try:
            for start in range(0, len(ids), batch_size):
                batch = list(range(start, min(start + batch_size, len(ids))))
                width = max(len(ids[i]) for i in batch)
                x = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros_like(x)
                for row, i in enumerate(batch):  # right padding: causal attention keeps real positions exact
                    x[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                captured.clear()
                model(input_ids=x.to(device), attention_mask=mask.to(device))
                rows = torch.arange(len(batch))
                at = torch.tensor([pos[i] for i in batch])
                t = tgt[batch].to(device)
                for layer, hidden in enumerate(captured):
                    logits = head(norm(hidden[rows, at])).float()
                    target_logit = logits.gather(1, t[:, None])
                    out[layer, batch] = (logits > target_logit).sum(1).cpu().numpy()
                progress.update(len(batch))
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)
    return out


def resolved_layer(ranks: np.ndarray, threshold: float = 0) -> int | None:
    """First layer (0 = embeddings) whose median rank over items is <= threshold, or None."""
    med = np.median(np.asarray(ranks), axis=1)
    hits = np.nonzero(med <= threshold)[0]
    return int(hits[0]) if hits.size else None

"""AlpacaEval (`tatsu-lab/alpaca_eval`, 805 instructions) scored as study B does: the response with its
reasoning stripped (text after the last `</think>`) is scored by a reward model loaded through transformers
(study B: `allenai/Llama-3.1-8B-Instruct-RM-RB2`); the metric is the mean reward.

Rows keep the hub's columns: `instruction` (the prompt), `output` (the reference model's answer, unused
here), `generator`, `dataset`. The shipped fixture holds made-up instructions in that layout.

The reward model is an `AutoModelForSequenceClassification` with one output; the conversation
[user: instruction, assistant: response] goes through its tokenizer's chat template (a plain
"User: ...\\nAssistant: ..." text when it has none), right-padded in batches; the reward is the logit. A
completion whose reasoning never closes is scored as an empty response and counted as unanswered.
`Score.correct` is not meaningful here (always False); read `mean_reward`.

    task = get_task("alpacaeval")
    task.score_many(problems, completions)  # Graded.extra["reward"]
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, ClassVar, Sequence

from pydantic import Field

from repro.records import Problem, Score
from repro.scoring import Graded, answer_part
from repro.tasks import TASKS
from repro.tasks.real import BenchArgs, FileBenchmark

log = logging.getLogger(__name__)


class AlpacaArgs(BenchArgs):
    """Arguments of AlpacaEval."""

    reward_model: str = Field("allenai/Llama-3.1-8B-Instruct-RM-RB2",
                              description="Reward model: hub id or local folder (AutoModelForSequenceClassification).")
    batch_size: int = Field(8, ge=1, description="Conversations per reward-model forward pass.")
    max_length: int = Field(4096, ge=16, description="Tokens kept per conversation (truncated from the right).")
    dtype: str = Field("auto", pattern="^(auto|float32|bfloat16|float16)$",
                       description="Weights dtype: auto = bfloat16 on GPU, float32 on CPU.")


@lru_cache(maxsize=2)
def _load(path: str, dtype: str) -> tuple[Any, Any, str]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "auto": torch.bfloat16 if device == "cuda" else torch.float32}[dtype]
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dt).to(device).eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok, device


def conversation_text(tokenizer: Any, instruction: str, response: str) -> str:
    """The conversation as the reward model reads it."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": instruction},
                                              {"role": "assistant", "content": response}], tokenize=False)
    return f"User: {instruction}\nAssistant: {response}"


def rewards(model_path: str, pairs: Sequence[tuple[str, str]], batch_size: int = 8, max_length: int = 4096,
            dtype: str = "auto") -> list[float]:
    """Reward of each (instruction, response) pair."""
    import torch

    model, tok, device = _load(model_path, dtype)
    texts = [conversation_text(tok, i, r) for i, r in pairs]
    out: list[float] = []
    with torch.no_grad():
        for k in range(0, len(texts), batch_size):
            enc = tok(texts[k:k + batch_size], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length, add_special_tokens=False).to(device)
            out.extend(float(x) for x in model(**enc).logits[:, 0].float().cpu())
    return out


class AlpacaEval(FileBenchmark):
    """AlpacaEval instructions, mean reward of a reward model."""

    name = "alpacaeval"
    default_file = "alpaca_eval.jsonl"
    Args: ClassVar[type[BenchArgs]] = AlpacaArgs
    required: ClassVar[tuple[str, ...]] = ("instruction",)

    def problems(self, args: Any, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, AlpacaArgs)
        return [Problem(id=f"{self.name}/{i}", task=self.name, split=split, prompt=r["instruction"], answer="",
                        meta={"id": i, "dataset": r.get("dataset"), "reward_model": args.reward_model,
                              "rm": [args.batch_size, args.max_length, args.dtype]})
                for i, r in enumerate(self.rows(args, split, n))]

    def score(self, problem: Problem, completion: str) -> Score:
        return self.score_many([problem], [completion])[0]

    def score_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Score]:
        if not problems:
            return []
        answers = [answer_part(c) for c in completions]
        batch, max_length, dtype = problems[0].meta["rm"]
        r = rewards(problems[0].meta["reward_model"], [(p.prompt, a or "") for p, a in zip(problems, answers)],
                    batch, max_length, dtype)
        return [Graded(correct=False, pred=f"{x:.6f}", finished=a is not None, answered=a is not None,
                       extra={"reward": x}) for x, a in zip(r, answers)]

    def aggregate(self, graded: Sequence[tuple[Problem, Graded]]) -> dict[str, Any]:
        vals = [g.extra["reward"] for _, g in graded if "reward" in g.extra]
        return {"mean_reward": round(sum(vals) / len(vals), 6) if vals else None,
                "reward_model": graded[0][0].meta["reward_model"] if graded else None}


TASKS.register(AlpacaEval.name)(AlpacaEval())

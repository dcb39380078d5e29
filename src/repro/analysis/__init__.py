"""Analyses of a trained checkpoint (token loss, step types, logit lens, ...) by name, with typed args.

An `Analysis` is registered in `ANALYSES` with its strict `Args` model, the extra inputs it reads besides
the model and the filtered training data (`needs`: "eval" = the condition's final-step eval job,
"reference" = the reference teacher's traces, "generate" = the generate job), and the function that runs
it: `fn(cfg, args, inputs, out_dir, threads) -> summary dict`. The built-in analyses live in
repro.stages.analyze; plugins add more through the `repro.analyses` entry-point group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from repro.registry import Registry


class AnalysisArgs(BaseModel):
    """Base of every analysis's arguments: strict, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Analysis:
    """A registered analysis."""

    name: str
    Args: type[AnalysisArgs]
    fn: Callable[..., dict[str, Any]]
    needs: tuple[str, ...] = ()


ANALYSES: Registry[Analysis] = Registry("analysis", group="repro.analyses", builtins=("repro.stages.analyze",))


def register_analysis(name: str, args: type[AnalysisArgs], needs: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator: register `fn` as analysis `name` with `args` as its Args model."""

    def deco(fn: Callable) -> Callable:
        ANALYSES.register(name)(Analysis(name, args, fn, needs))
        return fn

    return deco

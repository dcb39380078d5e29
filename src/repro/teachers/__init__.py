"""Teacher registry: programmatic teachers that write verified traces in a chosen style.

A teacher turns a `Problem` into a `Trace` whose steps carry their ground-truth type (Propose, Deduce,
Verify, Backtrack, Conclude). Specs name teachers (`data.teacher.name`) with `args` validated by `Args`.
Plugins add teachers through the `repro.teachers` entry-point group (see repro.registry).

    from repro.teachers import get_teacher
    t = get_teacher("divergent")
    trace = t.write(problem, t.Args(propose_rate=0.33), rng)
"""

from __future__ import annotations

import random
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from repro.records import Problem, Trace
from repro.registry import Registry


class TeacherArgs(BaseModel):
    """Base of every teacher's arguments: strict, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Teacher:
    """A teacher: `write()` returns a trace for a problem of a supported task (None if it cannot)."""

    name: ClassVar[str]
    Args: ClassVar[type[TeacherArgs]] = TeacherArgs
    tasks: ClassVar[tuple[str, ...]] = ()

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        raise NotImplementedError


TEACHERS: Registry[Teacher] = Registry("teacher", group="repro.teachers",
                                       builtins=("repro.teachers.styles", "repro.teachers.llm"))


def get_teacher(name: str) -> Teacher:
    return TEACHERS.get(name)


def teacher_names() -> list[str]:
    return TEACHERS.names()

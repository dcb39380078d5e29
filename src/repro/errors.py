"""User-facing errors: a spec problem names the file, the field path and what was expected.

The CLI catches `ReproError` and prints its message (one line per problem), exiting 2 for bad input and 1
for a failed job; nothing else should print a traceback to a user for bad input.
"""

from __future__ import annotations


class ReproError(Exception):
    """An error with a message meant for the user (no traceback); exit 1 (a failed job) unless told 2 (bad input)."""

    exit_code = 1

    def __init__(self, message: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class SpecError(ReproError):
    """One or more problems in a spec: each is (file, path, message)."""

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{f}: {p or '<top>'}: {m}" if p else f"{f}: {m}" for f, p, m in self.problems]


def spec_error(file: str, path: str, message: str) -> SpecError:
    return SpecError([(file, path, message)])

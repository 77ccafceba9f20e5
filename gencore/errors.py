"""Errors the CLI turns into one line on stderr and an exit code (docs/format.md, "Errors")."""
from __future__ import annotations


class GenError(Exception):
    """Bad input or usage: exit code 2, one line, no traceback.

    `where` names the file or option at fault; `hint` says what to do about it. The library
    names a Python parameter with `param` instead (e.g. "n", "temperature"); the CLI shows the
    flag that sets it.
    """

    exit_code = 2

    def __init__(self, problem: str, *, where: str | None = None, hint: str | None = None,
                 param: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.where = where if where is not None else param
        self.hint = hint
        self.param = param

    def line(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.hint:
            text += f" (hint: {self.hint})"
        return " ".join(text.split())  # always exactly one line


class RunFormatError(GenError):
    """A run folder that cannot be read: wrong format version, domain, or corrupt files."""

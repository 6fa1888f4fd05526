"""Problems found in a policy file, and the exception that carries them.

A problem names the file, line and column, the path of the key, what is wrong and how
to fix it, in one line:
``policy.yaml:34:12 purposes.newsletter.basis: 'consnet' is not a lawful basis; did you mean 'consent'?``
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Path = tuple[str | int, ...]
Severity = Literal["error", "warning"]


def format_path(path: Path) -> str:
    """`('purposes', 'news', 'categories', 2)` -> `purposes.news.categories[2]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Problem:
    message: str
    path: Path = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None
    severity: Severity = "error"

    @property
    def where(self) -> str:
        parts = [self.file or "<policy>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        key = format_path(self.path)
        prefix = f"{self.where} {key}: " if key else f"{self.where} "
        tag = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{tag}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "message": self.message,
        }


@dataclass
class PolicyError(Exception):
    """A policy was rejected; `problems` lists every error (and warning) found at once."""

    problems: Sequence[Problem] = field(default_factory=list)

    document = "policy"  # what the problems are in, for the summary line

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def summary(self) -> str:
        errors = self.errors
        head = f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {self.document}"
        return "\n".join([head, *(str(p) for p in self.problems)])

    def __str__(self) -> str:
        return self.summary()


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """File order, so a reader fixes them top to bottom."""
    return sorted(
        problems,
        key=lambda p: (p.file or "", p.line or 0, p.column or 0, format_path(p.path), p.message),
    )

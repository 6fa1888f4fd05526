"""The notice as a document: sections of plain blocks, rendered alike to Markdown and HTML.

The builder (`lawful.notice.document`) says *what* the notice says; the templates say
how it looks. Blocks hold text already translated; the templates escape it (HTML) and
turn addresses into links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Para:
    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Sub:
    """A subheading (h3) inside a section."""

    text: str
    kind: str = "h3"


@dataclass(frozen=True)
class Items:
    items: tuple[str, ...]
    kind: str = "ul"


@dataclass(frozen=True)
class Grid:
    """A table: a caption, column headers and rows of cells (text)."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kind: str = "table"


Block = Para | Sub | Items | Grid


@dataclass(frozen=True)
class Section:
    id: str  # stable anchor: who-we-are, what-we-collect, ... (the same in every language)
    title: str
    blocks: tuple[Block, ...]

    def text(self) -> str:
        """Every word of the section, for tests and search."""
        parts: list[str] = [self.title]
        for block in self.blocks:
            if isinstance(block, Para | Sub):
                parts.append(block.text)
            elif isinstance(block, Items):
                parts.extend(block.items)
            else:
                parts.append(block.caption)
                parts.extend(block.headers)
                parts.extend(cell for row in block.rows for cell in row)
        return "\n".join(parts)


@dataclass(frozen=True)
class NoticeDocument:
    title: str
    lang: str  # catalog key: en, zh
    html_lang: str  # BCP 47: en, zh-Hans
    intro: tuple[str, ...]
    sections: tuple[Section, ...]
    labels: dict[str, str] = field(default_factory=dict)  # fixed words the templates use
    missing: tuple[str, ...] = ()  # texts shown in English for want of a translation

    def section(self, id: str) -> Section:
        for section in self.sections:
            if section.id == id:
                return section
        raise KeyError(f"the notice has no section '{id}'")

    @property
    def section_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "lang": self.lang,
            "sections": [{"id": s.id, "title": s.title, "text": s.text()} for s in self.sections],
            "missing_translations": list(self.missing),
        }

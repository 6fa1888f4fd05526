"""Message catalogs: the notice's fixed text in each language, keyed by the English text.

Babel/gettext is not among lawful's dependencies (nor installed in the project's
environment), and the catalogs are small, so they are plain dicts here: one per
language, the key being the English text (the msgid), the value its translation.
English needs no catalog. A text missing from a catalog falls back to English and is
remembered by the `Translator` (`missing`), and `tests/notice/test_catalog.py` lists
every gap between the texts the notice uses (`msgids()`) and each catalog.

Texts with placeholders use `str.format` names (`{n}`, `{name}`), the same in every
language, so a translation may reorder them.
"""

from __future__ import annotations

import re
from importlib.resources import files

from lawful.notice.catalog_zh import ZH

CATALOGS: dict[str, dict[str, str]] = {"en": {}, "zh": ZH}
LANGUAGES: tuple[str, ...] = tuple(CATALOGS)
# How each language is named in an HTML `lang` attribute (BCP 47).
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


class UnknownLanguage(ValueError):
    """A language with no catalog; the message lists the ones there are."""


def check_language(lang: str) -> str:
    """The language key for `lang` (`zh-CN`, `zh_Hans` and `ZH` read as `zh`)."""
    key = lang.strip().lower().replace("_", "-").split("-")[0]
    if key not in CATALOGS:
        raise UnknownLanguage(
            f"no message catalog for language '{lang}'; use one of: {', '.join(LANGUAGES)}"
        )
    return key


class Translator:
    """`_("text", name=...)`: the text in this language, English when not translated."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = check_language(lang)
        self.catalog = CATALOGS[self.lang]
        self.missing: set[str] = set()

    def __call__(self, text: str, /, **values: object) -> str:
        translated = self.catalog.get(text)
        if translated is None:
            if self.lang != "en":
                self.missing.add(text)
            translated = text
        return translated.format(**values) if values else translated

    def plural(self, n: int, one: str, many: str) -> str:
        """The singular or plural text (both msgids) for `n`, with `{n}` filled in."""
        return self(one if n == 1 else many, n=n)


# `_("...")` in the templates and in this package's modules: the msgids to translate.
_CALL = re.compile(r"""(?<![A-Za-z0-9_])_\(\s*(?P<q>["'])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_PLURAL = re.compile(
    r"""\.plural\(\s*[^,]+,\s*(?P<q>["'])(?P<one>[^"']*)(?P=q),\s*(?P<q2>["'])(?P<many>[^"']*)(?P=q2)"""
)


def msgids() -> set[str]:
    """Every fixed text the notice can show: `_()` calls and the vocabulary's labels."""
    from lawful.notice import labels

    found: set[str] = set()
    package = files("lawful.notice")
    sources = [p for p in package.iterdir() if p.name.endswith(".py")]
    sources += [p for p in package.joinpath("templates").iterdir() if p.name.endswith(".j2")]
    for path in sources:
        if path.name.startswith("catalog"):
            continue
        text = path.read_text(encoding="utf-8")
        found |= {
            m.group("text").replace("\\'", "'").replace('\\"', '"') for m in _CALL.finditer(text)
        }
        for m in _PLURAL.finditer(text):
            found |= {m.group("one"), m.group("many")}
    found |= labels.all_labels()
    return found


def gaps(lang: str) -> list[str]:
    """The msgids a language's catalog does not translate, sorted."""
    catalog = CATALOGS[check_language(lang)]
    if not catalog and lang == "en":
        return []
    return sorted(m for m in msgids() if m not in catalog)

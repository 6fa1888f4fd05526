"""Message catalogs: every fixed text of the notice translated; gaps fall back to English."""

from __future__ import annotations

from lawful.notice.catalog import CATALOGS, Translator, gaps, msgids


def test_catalog_gaps() -> None:
    """Lists every text a catalog does not translate (shown in English until it does)."""
    report = {lang: gaps(lang) for lang in CATALOGS if lang != "en"}
    assert report == {lang: [] for lang in report}, "catalog gaps:\n" + "\n".join(
        f"  {lang}: {text!r}" for lang, texts in report.items() for text in texts
    )


def test_catalogs_hold_only_texts_the_notice_uses() -> None:
    used = msgids()
    for lang, catalog in CATALOGS.items():
        assert sorted(set(catalog) - used) == [], lang


def test_msgids_are_whole_texts() -> None:
    # A msgid split over lines (implicit concatenation) would be found only in part.
    assert [m for m in msgids() if m != m.strip()] == []


def test_placeholders_survive_translation() -> None:
    import string

    for lang, catalog in CATALOGS.items():
        for key, value in catalog.items():
            names = {f[1] for f in string.Formatter().parse(key) if f[1]}
            got = {f[1] for f in string.Formatter().parse(value) if f[1]}
            assert names == got, (lang, key)


def test_missing_translation_falls_back_to_english() -> None:
    _ = Translator("zh")
    assert _("Who we are") == "我们是谁"
    assert _("A text no catalog has, {n}", n=3) == "A text no catalog has, 3"
    assert _.missing == {"A text no catalog has, {n}"}
    assert _.plural(1, "{n} day", "{n} days") == "1 天"
    english = Translator("en")
    assert english("Who we are") == "Who we are" and english.missing == set()
    assert Translator("zh-CN").lang == "zh"

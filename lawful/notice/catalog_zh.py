"""Simplified Chinese (zh-Hans) catalog of the notice's fixed text; keys are the English."""

ZH: dict[str, str] = {}

"""The policy as a document: the privacy notice (Markdown, HTML; English and Chinese),
records of processing (GDPR Art. 30), the consistency check between promises and
reality, and notices of change when a new policy version is published."""

from lawful.notice.blocks import NoticeDocument, Section
from lawful.notice.catalog import LANGUAGES, Translator, UnknownLanguage
from lawful.notice.ccpa import CcpaRow, ccpa_rows
from lawful.notice.document import SECTION_IDS, NoticeError, build_notice
from lawful.notice.lint import Finding, LintReport, audit_policy
from lawful.notice.publish import Publication, Renewal, publish_policy
from lawful.notice.ropa import Record, build_ropa, render_ropa
from lawful.notice.service import Notices

__all__ = [
    "LANGUAGES",
    "SECTION_IDS",
    "CcpaRow",
    "Finding",
    "LintReport",
    "NoticeDocument",
    "NoticeError",
    "Notices",
    "Publication",
    "Record",
    "Renewal",
    "Section",
    "Translator",
    "UnknownLanguage",
    "audit_policy",
    "build_notice",
    "build_ropa",
    "ccpa_rows",
    "publish_policy",
    "render_ropa",
]

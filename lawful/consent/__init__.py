"""Consent, preferences and decisions: the ledger of every choice, and the answer to
"may purpose P use subject S's data now?"."""

from lawful.consent.decide import Decision, Signals, SubjectState, UnknownName
from lawful.consent.records import ConsentRecord, Status, Topic
from lawful.consent.service import ChoiceInput, Consent, ConsentError, DecisionLogging

__all__ = [
    "ChoiceInput",
    "Consent",
    "ConsentError",
    "ConsentRecord",
    "Decision",
    "DecisionLogging",
    "Signals",
    "Status",
    "SubjectState",
    "Topic",
    "UnknownName",
]

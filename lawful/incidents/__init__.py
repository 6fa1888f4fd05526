"""Breaches: the incident register, the people affected, deadlines and notices.

`Incidents` (lawful.incidents.service) is the facade; `lawful incident ...` its command
(lawful.incidents.cli). See docs/incidents.md.
"""

from lawful.incidents.affected import ExtraSubjects, IncidentError, Scope, SubjectHash
from lawful.incidents.deadlines import BreachDeadline, breach_deadlines
from lawful.incidents.notices import Notice
from lawful.incidents.service import EVENT_KINDS, Incident, IncidentEvent, Incidents

__all__ = [
    "EVENT_KINDS",
    "BreachDeadline",
    "ExtraSubjects",
    "Incident",
    "IncidentError",
    "IncidentEvent",
    "Incidents",
    "Notice",
    "Scope",
    "SubjectHash",
    "breach_deadlines",
]

"""Retention: the policy's rules applied to the datasets and lawful's records; legal holds."""

from lawful.retention.holds import HoldError, HoldView, RetentionError
from lawful.retention.service import Retention, SweepReport
from lawful.retention.sweep import RuleSweep, TableSweep, cutoff
from lawful.retention.targets import Target

__all__ = [
    "HoldError",
    "HoldView",
    "Retention",
    "RetentionError",
    "RuleSweep",
    "SweepReport",
    "TableSweep",
    "Target",
    "cutoff",
]

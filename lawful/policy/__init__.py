"""The policy: load and validate the YAML file, the taxonomy, the laws, diffs between versions."""

from lawful.policy.diff import Change, PolicyDiff, diff_policies
from lawful.policy.durations import Duration
from lawful.policy.load import (
    LoadedPolicy,
    content_hash,
    load_policy,
    load_policy_text,
    starter_policy,
)
from lawful.policy.model import Policy
from lawful.policy.problems import PolicyError, Problem

__all__ = [
    "Change",
    "Duration",
    "LoadedPolicy",
    "Policy",
    "PolicyDiff",
    "PolicyError",
    "Problem",
    "content_hash",
    "diff_policies",
    "load_policy",
    "load_policy_text",
    "starter_policy",
]

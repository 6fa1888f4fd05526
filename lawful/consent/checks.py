"""Checks of what a caller asks to record: named in the policy, well-formed, no personal
data where none belongs. Each raises ConsentError saying what is wrong and what to do."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any

from lawful.consent.decide import OPT_OUTS
from lawful.consent.records import Topic
from lawful.policy import Policy
from lawful.policy.vocabulary import Basis, ConsentMethod, unknown


class ConsentError(ValueError):
    """A choice that cannot be recorded as asked; the message says why and what to do."""


_METHODS = frozenset({*(str(m) for m in ConsentMethod), "signal", "email_link"})


def consent_purpose(policy: Policy, purpose: str) -> None:
    """Refuse a purpose the policy lacks, or one with no consent to give or withdraw."""
    try:
        declared = policy.purposes[purpose]
    except KeyError:
        raise ConsentError(unknown(purpose, "a purpose of the policy", policy.purposes)) from None
    if Basis.consent not in declared.bases():
        raise ConsentError(
            f"purpose '{purpose}' is based on {declared.basis}, not consent, so there is no "
            "consent to give or withdraw; to stop it for a subject, record an objection or a "
            "restriction"
        )


def scope(policy: Policy, purpose: str, channel: str | None, list_name: str | None) -> str:
    """The scope of a consent: '' (the whole purpose), a channel, or `list:<name>`."""
    if channel is not None and list_name is not None:
        raise ConsentError("give a channel or a list, not both")
    declared = policy.purposes.get(purpose)
    if declared is None:
        raise ConsentError(unknown(purpose, "a purpose of the policy", policy.purposes))
    if channel is not None:
        if channel not in declared.channels:
            raise ConsentError(
                unknown(
                    channel,
                    f"a channel of purpose '{purpose}'",
                    [str(c) for c in declared.channels],
                )
            )
        return channel
    if list_name is not None:
        if list_name not in declared.lists:
            raise ConsentError(unknown(list_name, f"a list of purpose '{purpose}'", declared.lists))
        return f"list:{list_name}"
    return ""


def preference_target(
    policy: Policy, channel: str | None, list_name: str | None
) -> tuple[Topic, str]:
    """The topic and key of an unsubscribe: one channel, or one list (`*`: every list)."""
    if (channel is None) == (list_name is None):
        raise ConsentError("name either a channel (email, sms, ...) or a list ('*' for every list)")
    if channel is not None:
        channels = {str(c) for p in policy.purposes.values() for c in p.channels}
        if channel not in channels:
            raise ConsentError(
                unknown(channel, "a marketing channel of the policy", sorted(channels))
            )
        return Topic.channel, channel
    assert list_name is not None
    if list_name != "*" and list_name not in policy.marketing.lists:
        raise ConsentError(
            unknown(
                list_name,
                "a marketing list of the policy ('*' for all)",
                policy.marketing.lists,
            )
        )
    if list_name == "*" and not policy.marketing.unsubscribe.all_lists:
        raise ConsentError(
            "the policy does not offer leaving every list at once (marketing.unsubscribe.all_lists)"
        )
    return Topic.list, list_name


def opt_out_kind(policy: Policy, kind: str) -> str:
    if kind not in OPT_OUTS:
        raise ConsentError(unknown(kind, "an opt-out", OPT_OUTS))
    if kind == "ad_tracking" and not policy.marketing.limit_ad_tracking:
        raise ConsentError(
            "the policy does not offer 'limit ad tracking' (marketing.limit_ad_tracking)"
        )
    return kind


def recipient(policy: Policy, recipient: str) -> None:
    if recipient not in policy.recipients:
        raise ConsentError(unknown(recipient, "a recipient of the policy", policy.recipients))


def method(method: str) -> None:
    if method not in _METHODS:
        raise ConsentError(unknown(method, "a way of collecting a choice", sorted(_METHODS)))


def evidence(
    policy: Policy, purpose: str | None, evidence: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Evidence must be plain JSON and hold no personal data, IP addresses included
    unless the purpose's consent says `keep_ip: true`."""
    if evidence is None:
        return None
    keep_ip = False
    if purpose is not None:
        spec = policy.purposes[purpose].consent
        keep_ip = bool(spec and spec.keep_ip)
    clean: dict[str, Any] = {}
    for name, value in evidence.items():
        if value is None:
            clean[name] = None
            continue
        if not isinstance(value, str | int | float | bool):
            raise ConsentError(f"evidence '{name}' must be text, a number, true/false or null")
        text = str(value)
        if "@" in text:
            raise ConsentError(
                f"evidence '{name}' looks like an email address: evidence holds no personal data; "
                "record a form id, a page URL or a hash instead"
            )
        looks_like_ip = _is_ip(text) or name.lower() in ("ip", "ip_address", "remote_addr")
        if looks_like_ip and not keep_ip:
            raise ConsentError(
                f"evidence '{name}' is an IP address, which is kept only when the purpose's "
                "consent says keep_ip: true in the policy"
            )
        clean[name] = value
    return clean


def notice_hash(given: str | None, text: str | None) -> str | None:
    """The SHA-256 of the notice shown: computed from its text, or checked as given."""
    if text is not None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if given is not None and given != digest:
            raise ConsentError(
                "notice_hash is not the SHA-256 of notice_text; give one of them, or both agreeing"
            )
        return digest
    if given is not None and (
        len(given) != 64 or any(ch not in "0123456789abcdef" for ch in given)
    ):
        raise ConsentError(
            "notice_hash must be the SHA-256 of the text shown, as 64 lowercase hex digits"
        )
    return given


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""Telling recipients of a rectification or erasure (GDPR Art. 19): webhook or queue.

A recipient with a webhook URL in the configuration is sent a signed JSON POST; any
other gets a queued row in `recipient_notices` that an operator or a worker sends and
then marks sent. A webhook that fails leaves its notice queued, with the attempt count
and the error (never the payload), to be retried by `Disclosures.send_pending`.

The payload names the change, the request and the disclosures concerned (their refs,
which the application sent with the data) and the categories: no personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from lawful.policy.model import Policy
from lawful.policy.vocabulary import unknown

Change = Literal["rectification", "erasure"]
CHANGES: tuple[str, ...] = ("rectification", "erasure")

# (url, body, headers) -> HTTP status; raises OSError when the endpoint can't be reached
Transport = Callable[[str, bytes, Mapping[str, str]], int]


class NoticeConfigError(ValueError):
    """The notification configuration names an unknown recipient or a bad URL."""


@dataclass(frozen=True)
class RecipientNotice:
    """One notice owed to a recipient, and whether it went."""

    ref: str
    recipient: str
    change: str
    request_ref: str
    categories: tuple[str, ...]
    disclosure_refs: tuple[str, ...]
    channel: str  # webhook or queue
    state: str  # queued or sent
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "recipient": self.recipient,
            "change": self.change,
            "request": self.request_ref,
            "categories": list(self.categories),
            "disclosures": list(self.disclosure_refs),
            "channel": self.channel,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
        }


def check_webhooks(policy: Policy, webhooks: Mapping[str, str] | None) -> dict[str, str]:
    """The webhook URL per recipient, each recipient declared and each URL http(s)."""
    checked: dict[str, str] = {}
    for recipient, url in (webhooks or {}).items():
        if recipient not in policy.recipients:
            raise NoticeConfigError(
                "webhooks: " + unknown(recipient, "a recipient of the policy", policy.recipients)
            )
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise NoticeConfigError(
                f"webhooks: the URL for recipient '{recipient}' must start with https:// "
                "(or http:// on a private network)"
            )
        checked[recipient] = url
    return checked


def load_webhooks(path: str | Path) -> dict[str, str]:
    """Read a `{recipient: url}` mapping from a YAML or JSON file."""
    import yaml

    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NoticeConfigError(f"{file}: cannot read the webhook configuration ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise NoticeConfigError(
            f"{file}: write one line per recipient, `recipient: https://…/webhook`"
        )
    return {str(k): v for k, v in data.items()}


def payload(controller: str, notice: RecipientNotice) -> bytes:
    """The JSON body sent to a recipient's webhook."""
    return json.dumps(
        {
            "type": "lawful.recipient_notice",
            "controller": controller,
            "notice": notice.ref,
            "change": notice.change,
            "request": notice.request_ref,
            "categories": list(notice.categories),
            "disclosures": list(notice.disclosure_refs),
            "law": "GDPR Art. 19",
        },
        sort_keys=True,
    ).encode()


def signature(key: bytes, body: bytes) -> str:
    """`sha256=<hex>`: an HMAC of the body, so the recipient can check who sent it."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def http_post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST `body` and return the status; 4xx/5xx come back as statuses, not errors."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)

"""The Engine: one policy and one store, opened together; the capabilities hang off it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from lawful.audit import NewEvent, append
from lawful.children import Children
from lawful.consent import Consent, Decision, DecisionLogging
from lawful.datasets import Datasets
from lawful.disclosure import Disclosures, load_webhooks
from lawful.incidents import Incidents, Scope, SubjectHash
from lawful.policy import (
    LoadedPolicy,
    Policy,
    PolicyDiff,
    diff_policies,
    load_policy,
    load_policy_text,
)
from lawful.policy.problems import PolicyError
from lawful.requests.messages import Sender
from lawful.requests.service import Requests
from lawful.retention import Retention
from lawful.store import DEFAULT_STORE_URL, PolicyVersion, Store, open_store
from lawful.subjects import Keyring, load_keyring

if TYPE_CHECKING:
    from lawful.notice import Notices

DEFAULT_POLICY_PATH = "policy.yaml"
WEBHOOKS_ENV = "LAWFUL_WEBHOOKS"


def policy_path(option: str | Path | None = None) -> Path:
    """`--policy`, else `$LAWFUL_POLICY`, else ./policy.yaml."""
    return Path(option or os.environ.get("LAWFUL_POLICY") or DEFAULT_POLICY_PATH)


def store_url(option: str | None = None) -> str:
    """`--store`, else `$LAWFUL_STORE`, else the SQLite file ./lawful.db."""
    return option or os.environ.get("LAWFUL_STORE") or DEFAULT_STORE_URL


@dataclass(frozen=True)
class Recorded:
    """The stored version of the loaded policy, and what changed since the previous one."""

    version: PolicyVersion
    created: bool
    diff: PolicyDiff | None


class Engine:
    """A controller's policy bound to the store that keeps its records."""

    def __init__(
        self,
        loaded: LoadedPolicy,
        store: Store,
        recorded: Recorded,
        keyring: Keyring | str | Path | None = None,
        decision_logging: DecisionLogging | None = None,
        datasets: Datasets | Sequence[str | Path] | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.recorded = recorded
        self._keyring = keyring
        self._decision_logging = decision_logging
        self._consent: Consent | None = None
        self._datasets = datasets
        self._sender = sender
        self._requests: Requests | None = None
        self._disclosures: Disclosures | None = None
        self._incidents: Incidents | None = None
        self._retention: Retention | None = None

    @property
    def keyring(self) -> Keyring:
        """The keys that hash and encrypt identities, loaded when first needed.

        Commands that only read the policy never need it; a missing keyring file is
        an error that says how to create one.
        """
        if not isinstance(self._keyring, Keyring):
            self._keyring = load_keyring(self._keyring)
        return self._keyring

    @property
    def consent(self) -> Consent:
        """Consent, preferences and decisions (see lawful.consent)."""
        if self._consent is None:
            self._consent = Consent(
                self.store,
                self.policy,
                self.policy_version,
                self.keyring,
                decision_logging=self._decision_logging,
            )
        return self._consent

    @property
    def datasets(self) -> Datasets | None:
        """The company's databases, as annotated (None when no annotation was given)."""
        if self._datasets is not None and not isinstance(self._datasets, Datasets):
            files = list(self._datasets)
            self._datasets = (
                Datasets.load(files, policy=self.policy, keyring=self.keyring) if files else None
            )
        return self._datasets

    @property
    def disclosures(self) -> Disclosures:
        """Disclosures to recipients, transfers abroad, Art. 19 notices (lawful.disclosure).

        Recipients' webhooks for Art. 19 notices come from the JSON file named by
        $LAWFUL_WEBHOOKS ({"recipient": "https://..."}); without it notices are queued.
        """
        if self._disclosures is None:
            hooks = os.environ.get(WEBHOOKS_ENV)
            self._disclosures = Disclosures(
                self.store,
                self.policy,
                self.keyring,
                self.consent,
                webhooks=load_webhooks(hooks) if hooks else None,
            )
        return self._disclosures

    @property
    def incidents(self) -> Incidents:
        """The breach register: affected subjects, deadlines, notices (lawful.incidents)."""
        if self._incidents is None:
            # Opened now, not from inside the register's transaction that asks it for
            # subjects: opening consent writes (a keyring check), and SQLite has one writer.
            self.disclosures  # noqa: B018
            self._incidents = Incidents(
                self.store,
                self.policy,
                self.keyring,
                self.datasets,
                version=self.policy_version,
                extra_subjects=self._disclosed_subjects,
            )
        return self._incidents

    def _disclosed_subjects(self, scope: Scope) -> list[SubjectHash]:
        """A breach at a recipient (an incident naming it among its systems) reaches the
        people whose data was disclosed to it: from the disclosure log."""
        hashes = self.disclosures.identity_hashes_disclosed(scope.systems, scope.categories)
        return [SubjectHash(h) for h in hashes]

    @property
    def retention(self) -> Retention:
        """Retention sweeps over the datasets and lawful's own records; legal holds."""
        if self._retention is None:
            self._retention = Retention(self.store, self.policy, self.keyring, self.datasets)
        return self._retention

    @property
    def notices(self) -> Notices:
        """The policy as documents: the notice, records of processing, the consistency
        check against the datasets and the store, change notices (lawful.notice)."""
        from lawful.notice import Notices  # lawful.notice publishes through this module

        loaded = list(self.datasets.loaded.values()) if self.datasets is not None else []
        return Notices(self.policy, store=self.store, datasets=loaded)

    @property
    def children(self) -> Children:
        """Subjects under the policy's minimum age, found through the datasets."""
        return Children(self.store, self.policy, self.keyring, self.datasets, self.requests)

    @property
    def requests(self) -> Requests:
        """Data-subject requests (see lawful.requests)."""
        if self._requests is None:
            self._requests = Requests(
                self.store,
                self.policy,
                self.policy_version,
                self.keyring,
                self.consent,
                self.datasets,
                sender=self._sender,
                disclosures=self.disclosures,
            )
        return self._requests

    def decide(self, subject: object, purpose: str, **options: object) -> Decision:
        """`engine.consent.decide`: may `purpose` use this subject's data now?"""
        return self.consent.decide(subject, purpose, **options)  # type: ignore[arg-type]

    def decide_many(self, subjects: object, purpose: str, **options: object) -> list[Decision]:
        """`engine.consent.decide_many`: decisions for a batch of subjects."""
        return self.consent.decide_many(subjects, purpose, **options)  # type: ignore[arg-type]

    @property
    def policy(self) -> Policy:
        return self.loaded.policy

    @property
    def policy_version(self) -> PolicyVersion:
        return self.recorded.version

    @classmethod
    def open(
        cls,
        policy: str | Path | LoadedPolicy | None = None,
        store: str | Store | None = None,
        *,
        keyring: Keyring | str | Path | None = None,
        decision_logging: DecisionLogging | None = None,
        datasets: Datasets | Sequence[str | Path] | None = None,
        sender: Sender | None = None,
    ) -> Engine:
        """Load the policy, open (and migrate) the store, and record the policy's version.

        `keyring` is a Keyring or the path of a keyring file (default: $LAWFUL_KEYRING,
        else ./lawful.keys); it is read only when identities are first needed.
        """
        loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy_path(policy))
        opened = store if isinstance(store, Store) else open_store(store_url(store))
        return cls(
            loaded,
            opened,
            record_policy(opened, loaded),
            keyring,
            decision_logging,
            datasets=datasets,
            sender=sender,
        )

    def close(self) -> None:
        if self._consent is not None:
            self._consent.close()
        if isinstance(self._datasets, Datasets):
            self._datasets.close()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_policy(store: Store, loaded: LoadedPolicy) -> Recorded:
    """Store the policy as a new version when what it says changed; keep the diff with it."""
    policy = loaded.policy
    previous = store.latest_policy_version(policy.key)
    diff: PolicyDiff | None = None
    material = False
    renew: list[str] | None = None
    if previous is not None and previous.content_hash != loaded.content_hash:
        diff = _diff_from(previous, policy)
        material = diff is None or bool(diff.material)
        if diff is not None:
            renew = list(diff.renew_consent)
        else:
            # What changed is unknown: every consent the policy lets lapse is renewed.
            renew = [
                name
                for name, p in policy.purposes.items()
                if "consent" in p.bases()
                and (p.consent is None or p.consent.renew_on_material_change)
            ]

    def audit(conn: Connection, controller_id: int, version: PolicyVersion) -> None:
        # Ids and counts only: an audit event carries no personal data. Written in the
        # version's own transaction, so neither is ever stored without the other.
        event = NewEvent(
            "policy.version_recorded",
            data={
                "version": version.number,
                "content_hash": version.content_hash,
                "material": version.material,
                "changes": len(diff.changes) if diff else None,
                "renew_consent": renew or [],
            },
        )
        append(conn, controller_id, policy.key, [event])

    version, created = store.record_policy_version(
        policy.key,
        policy.controller.name,
        text=loaded.text,
        content_hash=loaded.content_hash,
        label=policy.version,
        effective_date=policy.effective,
        changes=[c.to_dict() for c in diff.changes] if diff else None,
        material=material,
        renew_consent=renew,
        on_created=audit,
    )
    return Recorded(version, created, diff if created else None)


def _diff_from(previous: PolicyVersion, policy: Policy) -> PolicyDiff | None:
    try:
        old = load_policy_text(previous.text, f"<stored version {previous.number}>").policy
    except PolicyError:
        # The stored text no longer loads (the language moved on): the change can't be
        # described field by field, so it is recorded as material without details.
        return None
    return diff_policies(old, policy)

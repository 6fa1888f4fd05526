"""Publishing a new policy version: record it, tell people what changed, renew consents.

`publish_policy` records the policy as the controller's next version
(`lawful.engine.record_policy`, which keeps the diff against the stored version and
writes `policy.version_recorded`), then works out the notice of change for subjects —
each material change in plain words — and the consents that must be renewed: the
purposes `PolicyDiff.renew_consent` names, each with how many subjects hold consent to
it given under an earlier version (from `consent_state`). An audit event
`policy.published` records the version, the purposes and the counts (no personal data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lawful.audit import NewEvent, append
from lawful.engine import record_policy
from lawful.notice import labels as L
from lawful.notice.catalog import HTML_LANG, Translator
from lawful.notice.facts import category_label, title
from lawful.notice.lint import consent_counts
from lawful.notice.render import render
from lawful.policy import LoadedPolicy, Policy, PolicyDiff
from lawful.policy.diff import Change
from lawful.policy.durations import Duration
from lawful.store import PolicyVersion, Store


@dataclass(frozen=True)
class Renewal:
    """A consent that must be asked again, and how many subjects hold the old one."""

    purpose: str
    name: str
    subjects: int

    def to_dict(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "name": self.name, "subjects": self.subjects}


@dataclass(frozen=True)
class Publication:
    version: PolicyVersion
    created: bool  # False: the text was already the latest version; nothing recorded
    previous: int | None  # the version it replaces
    diff: PolicyDiff | None  # None when new, unchanged, or the old text no longer loads
    renewals: tuple[Renewal, ...]
    collect: tuple[str, ...]  # consent purposes new to consent: ask, nothing to renew
    policy: Policy

    @property
    def material(self) -> bool:
        return self.created and self.version.material

    def to_dict(self) -> dict[str, Any]:
        return {
            "controller": self.version.controller_key,
            "version": self.version.number,
            "created": self.created,
            "previous": self.previous,
            "material": self.material,
            "changes": [c.to_dict() for c in self.diff.changes] if self.diff else [],
            "renew_consent": [r.to_dict() for r in self.renewals],
            "collect_consent": list(self.collect),
        }

    def notice(self, fmt: str = "md", lang: str = "en") -> str:
        """The notice of change for subjects, in Markdown or HTML."""
        return render_change_notice(self, fmt, lang)


def publish_policy(store: Store, loaded: LoadedPolicy) -> Publication:
    """Record `loaded` as the next version and work out what to tell and to re-ask."""
    policy = loaded.policy
    previous = store.latest_policy_version(policy.key)
    recorded = record_policy(store, loaded)
    version = recorded.version
    renew: tuple[str, ...] = ()
    collect: tuple[str, ...] = ()
    if recorded.created and previous is not None:
        renew = version.renew_consent
        if recorded.diff is not None:
            collect = recorded.diff.collect_consent
    counts: dict[str, int] = {}
    controller_id = store.ensure_controller(policy.key, policy.controller.name)
    if renew:
        counts = consent_counts(store, controller_id, before_version=version.number)
    renewals = tuple(
        Renewal(
            p, title(p, policy.purposes[p].name if p in policy.purposes else None), counts.get(p, 0)
        )
        for p in renew
    )
    if recorded.created:

        def audit(conn: Any) -> None:
            event = NewEvent(
                "policy.published",
                data={
                    "version": version.number,
                    "previous": previous.number if previous else None,
                    "material": version.material,
                    "renew_consent": {r.purpose: r.subjects for r in renewals},
                    "collect_consent": list(collect),
                },
            )
            append(conn, controller_id, policy.key, [event])

        store.write(audit)
    return Publication(
        version=version,
        created=recorded.created,
        previous=previous.number if previous else None,
        diff=recorded.diff,
        renewals=renewals,
        collect=collect,
        policy=policy,
    )


# --- the notice of change ---------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def plain(change: Change, policy: Policy, _: Translator) -> str:
    """A material change in words a subject understands."""
    path = [str(p) for p in change.path]
    section = path[0]
    entry = path[1] if len(path) > 1 else ""
    field_ = path[2] if len(path) > 2 else ""
    added = removed = []
    if isinstance(change.old, list) or isinstance(change.new, list):
        old, new = _items(change.old or []), _items(change.new or [])
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]

    def purpose_title(name: str) -> str:
        spec = policy.purposes.get(name)
        return title(name, spec.name if spec else None)

    def recipient_title(name: str) -> str:
        spec = policy.recipients.get(name)
        return title(name, spec.name if spec else None)

    def when(value: Any) -> str:
        try:
            return L.duration_words(Duration.parse(str(value)), _)
        except ValueError:
            return str(value)

    if section == "purposes" and entry:
        name = purpose_title(entry)
        if len(path) == 2 and change.kind == "added":
            spec = policy.purposes[entry]
            return _("We now use your data for a new purpose: {name}.", name=name) + (
                f" {spec.description}" if spec.description else ""
            )
        if len(path) == 2 and change.kind == "removed":
            return _("We no longer use your data for: {name}.", name=name)
        if field_ == "categories" and added:
            return _(
                "{name} now also uses: {value}.",
                name=name,
                value=", ".join(category_label(policy, c) for c in added),
            )
        if field_ == "recipients" and added:
            return _(
                "For {name}, your data now also goes to: {value}.",
                name=name,
                value=", ".join(recipient_title(r) for r in added),
            )
        if field_ in ("basis", "basis_by_jurisdiction"):
            basis = policy.purposes[entry].basis.value if entry in policy.purposes else change.new
            return _(
                "The lawful basis for {name} is now: {value}.",
                name=name,
                value=_(L.label(L.BASIS, basis)),
            )
        if field_ == "channels" and added:
            return _(
                "For {name}, we may now also contact you by: {value}.",
                name=name,
                value=", ".join(_(L.label(L.CHANNEL, c)) for c in added),
            )
        if field_ == "retention" and len(path) > 3 and path[3] == "keep":
            return _(
                "For {name}, we now keep your data for {value}.", name=name, value=when(change.new)
            )
    if section == "recipients" and entry:
        name = recipient_title(entry)
        if len(path) == 2 and change.kind == "added":
            spec = policy.recipients[entry]
            countries = ", ".join(str(c) for c in spec.country)
            return _(
                "We now share data with a new recipient: {name} ({where}).",
                name=name,
                where=countries,
            )
        if field_ == "country" and added:
            return _(
                "{name} now receives your data in: {value}.",
                name=name,
                value=", ".join(map(str, added)),
            )
    if section == "retention" and entry and field_ == "keep":
        rule = policy.retention.get(entry)
        name = rule.description if rule and rule.description else title(entry)
        return _("{name}: we now keep the data for {value}.", name=name, value=when(change.new))
    if section == "requests" and entry == "kinds" and removed:
        return _(
            "You can no longer ask us to: {value}.",
            value=", ".join(_(L.label(L.REQUEST_KIND, k)) for k in removed),
        )
    if section == "requests" and entry == "deadline":
        return _("We now answer requests within {value}.", value=when(change.new))
    if section == "controller":
        return _("Our details changed: {value}.", value=change.describe())
    return _("{reason}: {value}.", reason=change.reason or _("a change"), value=change.describe())


def render_change_notice(publication: Publication, fmt: str, lang: str) -> str:
    _ = Translator(lang)
    policy = publication.policy
    name = policy.controller.trade_name or policy.controller.name
    changes = publication.diff.material if publication.diff else ()
    lines = [plain(c, policy, _) for c in changes]
    minor = len(publication.diff.changes) - len(changes) if publication.diff else 0
    context = {
        "title": _("Changes to the privacy notice of {name}", name=name),
        "html_lang": HTML_LANG[_.lang],
        "intro": _(
            "We have updated our privacy notice (version {version}). Here is what changed for you.",
            version=policy.version or publication.version.number,
        ),
        "changes": lines,
        "unknown": publication.created
        and publication.previous is not None
        and publication.diff is None,
        "unknown_text": _(
            "The notice changed in ways we cannot list one by one; please read it again."
        ),
        "none_text": _("Nothing that matters for you changed."),
        "minor": _("{n} other change(s) only narrow what we do or reword it.", n=minor)
        if minor
        else "",
        "renew_heading": _("Consents we will ask you to confirm again"),
        "renewals": [r.name for r in publication.renewals],
        "renew_text": _(
            "Until you confirm it, we will not use your data for these purposes on the basis of your earlier consent."
        ),
        "effective": _("Effective: {value}.", value=str(policy.effective))
        if policy.effective
        else "",
    }
    return render("change", fmt, **context)

"""Checks across sections of a policy: references resolve, and promises are at least the law.

Each check yields `Problem`s with a key path; the loader adds file, line and column.
Checks run on a policy whose sections may be partly missing (when the shape had errors),
so every check tolerates a section that is None, and asks `Names` — what the author
wrote, valid or not — whether a referenced name exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lawful.policy.countries import ANYWHERE
from lawful.policy.durations import Duration
from lawful.policy.jurisdictions import JURISDICTIONS, Jurisdiction
from lawful.policy.model import BUILTIN_ANCHORS, Policy, RetentionRule
from lawful.policy.problems import Path, Problem
from lawful.policy.taxonomy import load_taxonomy
from lawful.policy.vocabulary import (
    Basis,
    RequestKind,
    Role,
    SignalHandling,
    did_you_mean,
)


@dataclass(frozen=True)
class Names:
    """Every name the author declared, per section, valid or not."""

    subjects: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    retention: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    cookies: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()

    @classmethod
    def from_raw(cls, data: dict[str, Any]) -> Names:
        def keys(value: Any) -> frozenset[str]:
            return frozenset(str(k) for k in value) if isinstance(value, dict) else frozenset()

        marketing = data.get("marketing")
        lists = marketing.get("lists") if isinstance(marketing, dict) else None
        return cls(
            subjects=keys(data.get("subjects")),
            categories=keys(data.get("categories")),
            purposes=keys(data.get("purposes")),
            recipients=keys(data.get("recipients")),
            retention=keys(data.get("retention")),
            events=keys(data.get("events")),
            cookies=keys(data.get("cookies")),
            lists=keys(lists),
        )


def check_policy(policy: Policy, names: Names) -> Iterator[Problem]:
    served = [j for j in (policy.jurisdictions or []) if j in JURISDICTIONS]
    checks = (
        _categories(policy, names),
        _subjects(policy, served),
        _purposes(policy, names, served),
        _recipients(policy, names, served),
        _transfers(policy, served),
        _retention(policy, names),
        _requests(policy, served),
        _cookies_signals_marketing(policy, names, served),
        _breaches(policy, served),
    )
    for check in checks:
        yield from check


def _error(path: Path, message: str) -> Problem:
    return Problem(message, path=path)


def _warning(path: Path, message: str) -> Problem:
    return Problem(message, path=path, severity="warning")


def _undeclared(path: Path, name: str, noun: str, section: str, known: Iterable[str]) -> Problem:
    guess = did_you_mean(name, known)
    hint = f"did you mean '{guess}'?" if guess else f"declare it under {section}"
    return _error(path, f"'{name}' is not a declared {noun}; {hint}")


def _references(
    path: Path, values: Iterable[str], known: frozenset[str], noun: str, section: str
) -> Iterator[Problem]:
    """Each name in `values` must be declared under `section`."""
    for i, value in enumerate(values):
        if value not in known:
            yield _undeclared((*path, i), value, noun, section, known)


def _known_categories(names: Names) -> frozenset[str]:
    return frozenset(load_taxonomy().categories) | names.categories


def _check_categories(path: Path, keys: Iterable[str], names: Names) -> Iterator[Problem]:
    known = _known_categories(names)
    for i, key in enumerate(keys):
        if key not in known:
            guess = did_you_mean(key, known)
            hint = (
                f"did you mean '{guess}'?"
                if guess
                else "use a fideslang key or declare a custom one under categories"
            )
            yield _error((*path, i), f"'{key}' is not a data category; {hint}")


def _not_served(path: Path, key: str, served: list[str]) -> Problem:
    return _error(
        path,
        f"'{key}' is not among the jurisdictions this policy serves ({', '.join(served)}); "
        "add it to jurisdictions or remove this entry",
    )


# --- sections ---------------------------------------------------------------------------


def _categories(policy: Policy, names: Names) -> Iterator[Problem]:
    taxonomy = load_taxonomy()
    known = _known_categories(names)
    for key, custom in (policy.categories or {}).items():
        path = ("categories", key)
        if key in taxonomy.categories:
            yield _error(
                path, f"'{key}' is already a fideslang category; use it without declaring it"
            )
            continue
        if custom.parent not in known:
            guess = did_you_mean(custom.parent, known)
            hint = f"; did you mean '{guess}'?" if guess else ""
            yield _error((*path, "parent"), f"'{custom.parent}' is not a data category{hint}")
        elif not key.startswith(custom.parent + "."):
            yield _error(
                path,
                f"a custom category's key starts with its parent's: write "
                f"'{custom.parent}.{key.rsplit('.', 1)[-1]}'",
            )


def _subjects(policy: Policy, served: list[str]) -> Iterator[Problem]:
    for name, kind in (policy.subjects or {}).items():
        for jur in kind.min_age_by_jurisdiction:
            if jur not in served:
                yield _not_served(("subjects", name, "min_age_by_jurisdiction", jur), jur, served)
        if (
            kind.role is Role.processor
            and policy.controller
            and Role.processor not in policy.controller.roles
        ):
            yield _error(
                ("subjects", name, "role"),
                "this subject's data is processed as processor, but controller.roles does not "
                "include processor",
            )


def _purposes(policy: Policy, names: Names, served: list[str]) -> Iterator[Problem]:
    for name, purpose in (policy.purposes or {}).items():
        path = ("purposes", name)
        yield from _check_categories((*path, "categories"), purpose.categories, names)
        yield from _references(
            (*path, "subjects"), purpose.subjects, names.subjects, "subject kind", "subjects"
        )
        yield from _references(
            (*path, "recipients"), purpose.recipients, names.recipients, "recipient", "recipients"
        )
        yield from _references(
            (*path, "lists"), purpose.lists, names.lists, "marketing list", "marketing.lists"
        )
        yield from _references(
            (*path, "cookies"), purpose.cookies, names.cookies, "cookie category", "cookies"
        )
        if isinstance(purpose.retention, str) and purpose.retention not in names.retention:
            yield _undeclared(
                (*path, "retention"),
                purpose.retention,
                "retention rule",
                "retention",
                names.retention,
            )
        for jur in purpose.basis_by_jurisdiction:
            if jur not in served:
                yield _not_served((*path, "basis_by_jurisdiction", jur), jur, served)
        bases = purpose.bases()
        if Basis.consent in bases and purpose.consent is None:
            where = [j for j in served if purpose.basis_in(j) is Basis.consent]
            yield _error(
                path,
                f"the basis is consent (in {', '.join(where) or 'some jurisdiction'}) but no "
                "way to collect it is declared; add `consent: {via: [form]}` (or checkbox, "
                "banner, email_link, ...)",
            )
        if Basis.legitimate_interests in bases and not purpose.legitimate_interest:
            yield _warning(
                path,
                "legitimate_interests without the interest itself; say it in "
                "legitimate_interest (GDPR Art. 13(1)(d))",
            )
        if (
            purpose.role is Role.processor
            and policy.controller
            and Role.processor not in policy.controller.roles
        ):
            yield _error(
                (*path, "role"),
                "this purpose is processing as processor, but controller.roles does not include processor",
            )
        sale = policy.sale
        if sale is not None and purpose.sale and not sale.sells:
            yield _error(
                (*path, "sale"),
                "marked as a sale, but the policy promises not to sell (sale.sells: false); "
                "remove one of the two",
            )
        if sale is not None and purpose.share and not sale.shares:
            yield _error(
                (*path, "share"),
                "marked as sharing, but the policy promises not to share (sale.shares: false); "
                "remove one of the two",
            )


def _recipients(policy: Policy, names: Names, served: list[str]) -> Iterator[Problem]:
    purposes = policy.purposes or {}
    taxonomy = policy.taxonomy()
    for name, recipient in (policy.recipients or {}).items():
        path = ("recipients", name)
        yield from _references(
            (*path, "purposes"), recipient.purposes, names.purposes, "purpose", "purposes"
        )
        naming = [p for p, spec in purposes.items() if name in spec.recipients]
        if recipient.purposes:
            for p in naming:
                if p not in recipient.purposes:
                    yield _error(
                        (*path, "purposes"),
                        f"purposes.{p} names this recipient, but its purposes do not list '{p}'; "
                        "add it (or leave purposes out to take them from the purposes)",
                    )
        yield from _check_categories((*path, "categories"), recipient.categories, names)
        own = [p for p in (recipient.purposes or naming) if p in purposes]
        allowed = {c for p in own for c in purposes[p].categories}
        for i, category in enumerate(recipient.categories):
            if (
                own
                and category in taxonomy.categories
                and not any(
                    taxonomy.covers(a, category) or taxonomy.covers(category, a) for a in allowed
                )
            ):
                yield _error(
                    (*path, "categories", i),
                    f"'{category}' is not used by any of this recipient's purposes "
                    f"({', '.join(own)}); a recipient only receives what its purposes use",
                )
        if not own and not recipient.purposes:
            yield _warning(
                path, "no purpose sends data to this recipient; name it in a purpose's recipients"
            )
        if policy.sale is not None and recipient.sale and not policy.sale.sells:
            yield _error((*path, "sale"), "disclosure marked as a sale, but sale.sells is false")
        if policy.sale is not None and recipient.share and not policy.sale.shares:
            yield _error((*path, "share"), "disclosure marked as sharing, but sale.shares is false")
        yield from _recipient_transfers(policy, name, recipient, served)


# Recipients "anywhere" that are not transfers needing a safeguard: disclosures required
# by law rest on that law (GDPR Art. 49(1)(d), PIPL Art. 13(3)); what other users of a
# service see is publication, not a transfer (CJEU C-101/01 Lindqvist).
_NOT_A_TRANSFER = {"authority", "user"}


def _accepted_mechanisms(law: Jurisdiction, rule: Any) -> set[str]:
    """The law's transfer mechanisms, narrowed by the policy's `accept` (never widened)."""
    mechanisms = _mechanisms(law)
    if rule and rule.accept:
        chosen = {s.value for s in rule.accept}
        return chosen & mechanisms if mechanisms else chosen
    return mechanisms


def _mechanisms(law: Jurisdiction) -> set[str]:
    """What the law accepts for a transfer out, including conditional adequacy (dpf)."""
    return set(law.transfer_mechanisms) | set(law.conditional_adequacy.values())


def _transfer_ok(law: Jurisdiction, country: str, safeguards: set[str], accepted: set[str]) -> bool:
    """Adequacy (or conditional adequacy such as the US Data Privacy Framework) or a safeguard.

    "Anywhere" can't rest on adequacy, only on a safeguard that travels with the data.
    """
    if country == ANYWHERE:
        return bool(safeguards & (accepted - {"adequacy"} - set(law.conditional_adequacy.values())))
    if country in law.adequate_countries:
        return True
    condition = law.conditional_adequacy.get(country)
    if condition and condition in safeguards:
        return True
    # Adequacy and conditional adequacy belong to a country, not to a recipient's say-so.
    declarable = accepted - {"adequacy"} - set(law.conditional_adequacy.values())
    return bool(safeguards & declarable)


def _recipient_transfers(
    policy: Policy, name: str, recipient: Any, served: list[str]
) -> Iterator[Problem]:
    rules = policy.transfers.rules if policy.transfers else {}
    safeguards = {s.value for s in recipient.safeguards}
    for jur in served:
        law = JURISDICTIONS[jur]
        rule = rules.get(jur)
        accepted = _accepted_mechanisms(law, rule)
        required = set(law.transfer_requires) | ({s.value for s in rule.require} if rule else set())
        if not accepted and not required:
            continue  # this law puts no conditions on transfers out
        abroad = [c for c in recipient.country if c == ANYWHERE or c not in law.countries]
        if not abroad:
            continue
        if recipient.role.value in _NOT_A_TRANSFER and ANYWHERE in abroad:
            continue
        missing = sorted(required - safeguards)
        if missing:
            yield _error(
                ("recipients", name, "safeguards"),
                f"data goes out of {jur} ({', '.join(abroad)}); a transfer out of {jur} needs "
                f"{' and '.join(missing)}: add {'them' if len(missing) > 1 else 'it'} to safeguards",
            )
        uncovered = [c for c in abroad if not _transfer_ok(law, c, safeguards, accepted)]
        if uncovered and accepted:
            where = ", ".join("anywhere" if c == ANYWHERE else c for c in uncovered)
            yield _error(
                ("recipients", name, "safeguards"),
                f"data goes to {where}, outside {jur} and without an adequacy decision; declare "
                f"a safeguard {jur} accepts: {', '.join(sorted(accepted))}",
            )


def _transfers(policy: Policy, served: list[str]) -> Iterator[Problem]:
    if policy.transfers is None:
        return
    for jur, rule in policy.transfers.rules.items():
        if jur not in served:
            yield _not_served(("transfers", "rules", jur), jur, served)
            continue
        mechanisms = _mechanisms(JURISDICTIONS[jur])
        for i, safeguard in enumerate(rule.accept):
            if mechanisms and safeguard.value not in mechanisms:
                yield _error(
                    ("transfers", "rules", jur, "accept", i),
                    f"'{safeguard.value}' is not a transfer mechanism {JURISDICTIONS[jur].name} "
                    f"accepts; a policy may only narrow the law's: {', '.join(sorted(mechanisms))}",
                )


def _retention(policy: Policy, names: Names) -> Iterator[Problem]:
    anchors = [*BUILTIN_ANCHORS, *sorted(names.events)]
    rules: list[tuple[Path, RetentionRule]] = [
        (("retention", name), rule) for name, rule in (policy.retention or {}).items()
    ]
    for name, purpose in (policy.purposes or {}).items():
        if isinstance(purpose.retention, RetentionRule):
            rules.append((("purposes", name, "retention"), purpose.retention))
    for path, rule in rules:
        if rule.from_ not in anchors:
            guess = did_you_mean(rule.from_, anchors)
            hint = (
                f"did you mean '{guess}'?"
                if guess
                else f"use one of {', '.join(BUILTIN_ANCHORS)} or declare the event under events"
            )
            yield _error((*path, "from"), f"'{rule.from_}' is not a known event; {hint}")
        yield from _check_categories((*path, "categories"), rule.categories, names)
        yield from _references(
            (*path, "purposes"), rule.purposes, names.purposes, "purpose", "purposes"
        )
        yield from _references(
            (*path, "subjects"), rule.subjects, names.subjects, "subject kind", "subjects"
        )
        if path[0] == "retention" and not (rule.categories or rule.purposes or rule.subjects):
            yield _error(path, "say what the rule covers: categories, purposes and/or subjects")
        if rule.keep is None:
            yield _warning(
                path,
                "no fixed period (criteria only): sweeps cannot apply it until a period is given",
            )


def _requests(policy: Policy, served: list[str]) -> Iterator[Problem]:
    requests = policy.requests
    if requests is None:
        return
    kinds = list(requests.kinds)
    for i, kind in enumerate(requests.approval):
        if kind not in kinds:
            yield _error(
                ("requests", "approval", i),
                f"'{kind}' needs approval but is not offered in requests.kinds",
            )
    deadline = requests.deadline
    for kind in deadline.by_kind:
        if kind not in kinds:
            yield _error(
                ("requests", "deadline", "by_kind", kind),
                f"'{kind}' has a deadline but is not offered in requests.kinds",
            )
    for section in ("by_jurisdiction", "calendars"):
        for jur in getattr(deadline, section):
            if jur not in served:
                yield _not_served(("requests", "deadline", section, jur), jur, served)
    for jur, country in deadline.calendars.items():
        law = JURISDICTIONS.get(jur)
        if law is not None and law.countries and country not in law.countries:
            yield _error(
                ("requests", "deadline", "calendars", jur),
                f"{country} is not in {jur}; the business-day calendar is that of a country "
                f"the law covers ({', '.join(sorted(law.countries))})",
            )
    for jur in served:
        law = JURISDICTIONS[jur]
        looser: dict[tuple[Path, Duration, Duration], list[str]] = {}
        unpromised = []
        for kind in kinds:
            promise, path = _promise(requests, kind, jur)
            limit = law.request_deadline_for(kind.value)
            if promise is None and limit is None:
                unpromised.append(kind.value)
            elif promise is not None and limit is not None and promise > limit:
                looser.setdefault((path, promise, limit), []).append(kind.value)
        if unpromised:
            yield _error(
                ("requests", "deadline"),
                f"no answer deadline for {', '.join(unpromised)} requests in {jur}: the law sets "
                "none, so the policy must promise one (requests.deadline.default or by_jurisdiction)",
            )
        for (path, promise, limit), which in looser.items():
            yield _error(
                path,
                f"{promise} is longer than {law.name} allows for {', '.join(which)} requests "
                f"({limit}); promise {limit} or less",
            )
        if deadline.extension is not None:
            if law.request_deadline is not None and law.request_extension is None:
                yield _warning(
                    ("requests", "deadline", "extension"),
                    f"{law.name} allows no extension of the answer deadline; it will not be "
                    f"applied to requests in {jur}",
                )
            elif law.request_extension is not None and deadline.extension > law.request_extension:
                yield _error(
                    ("requests", "deadline", "extension"),
                    f"{deadline.extension} is longer than {law.name} allows ({law.request_extension}); "
                    f"extend by {law.request_extension} at most",
                )
        if (
            law.sale_opt_out
            and policy.sale is not None
            and (policy.sale.sells or policy.sale.shares)
        ) and RequestKind.opt_out_sale not in kinds:
            yield _error(
                ("requests", "kinds"),
                f"the policy sells or shares personal information and serves {jur}: offer "
                "opt_out_sale",
            )


def _promise(requests: Any, kind: RequestKind, jur: str) -> tuple[Duration | None, Path]:
    """The deadline the policy promises: per kind, else per jurisdiction, else the default."""
    deadline = requests.deadline
    if kind in deadline.by_kind:
        return deadline.by_kind[kind], ("requests", "deadline", "by_kind", kind.value)
    if jur in deadline.by_jurisdiction:
        return deadline.by_jurisdiction[jur], ("requests", "deadline", "by_jurisdiction", jur)
    return deadline.default, ("requests", "deadline", "default")


def _cookies_signals_marketing(
    policy: Policy, names: Names, served: list[str]
) -> Iterator[Problem]:
    for name, cookie in (policy.cookies or {}).items():
        if cookie.optional and ("necessary" in name or "essential" in name):
            yield _error(
                ("cookies", name, "optional"),
                "strictly necessary cookies cannot be optional (ePrivacy Art. 5(3)); set optional: false",
            )
        yield from _references(
            ("cookies", name, "purposes"), cookie.purposes, names.purposes, "purpose", "purposes"
        )
    if policy.signals is not None and policy.signals.gpc is SignalHandling.ignore:
        for jur in served:
            if JURISDICTIONS[jur].gpc_required:
                yield _error(
                    ("signals", "gpc"),
                    f"{JURISDICTIONS[jur].name} requires honouring Global Privacy Control; set gpc: honor",
                )
    marketing = policy.marketing
    if marketing is None:
        return
    purposes = policy.purposes or {}
    for name, lst in marketing.lists.items():
        path = ("marketing", "lists", name, "purpose")
        if lst.purpose not in names.purposes:
            yield _undeclared(path, lst.purpose, "purpose", "purposes", names.purposes)
        elif lst.purpose in purposes and not purposes[lst.purpose].use.startswith("marketing"):
            yield _error(
                path,
                f"purposes.{lst.purpose} is not a marketing purpose (its use is {purposes[lst.purpose].use})",
            )


def _breaches(policy: Policy, served: list[str]) -> Iterator[Problem]:
    breaches = policy.breaches
    if breaches is None:
        return
    for jur in served:
        law = JURISDICTIONS[jur]
        pairs = (
            (
                "notify_authority_within",
                breaches.notify_authority_within,
                law.breach_authority_within,
            ),
            ("notify_subjects_within", breaches.notify_subjects_within, law.breach_subjects_within),
        )
        for key, promise, limit in pairs:
            if promise is not None and limit is not None and promise > limit:
                yield _error(
                    ("breaches", key),
                    f"{promise} is longer than {law.name} allows ({limit}); promise {limit} or less",
                )

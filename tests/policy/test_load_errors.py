"""A bad policy is rejected whole, every error at once, each with file:line:column, key path,
what is wrong and how to fix it — never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lawful.policy import PolicyError, load_policy, load_policy_text, starter_policy
from lawful.policy.yamlfile import MAX_BYTES

STARTER = starter_policy()


@dataclass(frozen=True)
class Case:
    id: str
    old: str
    new: str
    message: str  # the whole line after "file:line:col "
    marker: str  # the line the error points at contains this...
    column_at: str  # ...and the column is where this text starts on it
    also: tuple[tuple[str, str], ...] = ()  # further replacements the case needs


def _expected_position(text: str, case: Case) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), start=1):
        if case.marker in line:
            return number, line.index(case.column_at) + 1
    raise AssertionError(f"marker {case.marker!r} not in mutated policy")


CASES = [
    Case(
        "misspelt basis",
        "basis: contract",
        "basis: consnet",
        "purposes.service.basis: 'consnet' is not a lawful basis; did you mean 'consent'?",
        "basis: consnet",
        "consnet",
    ),
    Case(
        "missing required key",
        "    use: essential.service\n",
        "",
        "purposes.service.use: missing required key 'use': the fideslang data use, "
        "e.g. marketing.communications.email",
        "  service:",
        "service",
    ),
    Case(
        "unknown key with a guess",
        "  newsletter:\n",
        "  newsletter:\n    retension: 3 years\n",
        "purposes.newsletter.retension: unknown key 'retension'; did you mean 'retention'?",
        "retension:",
        "retension",
    ),
    Case(
        "unknown top-level section",
        "signals: {gpc: honor, dnt: ignore}",
        "signal: {gpc: honor}",
        "signal: unknown key 'signal'; did you mean 'signals'?",
        "signal:",
        "signal",
    ),
    Case(
        "undeclared marketing list",
        "lists: [news]",
        "lists: [newz]",
        "purposes.newsletter.lists[0]: 'newz' is not a declared marketing list; did you mean 'news'?",
        "lists: [newz]",
        "newz",
    ),
    Case(
        "retention anchored on an unknown event",
        "from: contract_end",
        "from: contract_ended",
        "retention.customer_records.from: 'contract_ended' is not a known event; "
        "did you mean 'contract_end'?",
        "from: contract_ended",
        "contract_ended",
    ),
    Case(
        "misspelt data category",
        "user.contact.email, user.account]",
        "user.contact.emial, user.account]",
        "purposes.service.categories[1]: 'user.contact.emial' is not a data category; "
        "did you mean 'user.contact.email'?",
        "user.contact.emial",
        "user.contact.emial",
    ),
    Case(
        "unknown data use",
        "use: analytics.reporting",
        "use: analytics.reports",
        "purposes.site_analytics.use: 'analytics.reports' is not a fideslang data use; "
        "did you mean 'analytics.reporting'?",
        "use: analytics.reports",
        "analytics.reports",
    ),
    Case(
        "UK is not an ISO code",
        "country: IE",
        "country: UK",
        "controller.country: 'UK' is not an ISO 3166-1 country code; did you mean 'GB'?",
        "country: UK",
        "UK",
    ),
    Case(
        "deadline looser than the GDPR",
        "default: 1 month",
        "default: 60 days",
        "requests.deadline.default: 60 days is longer than the GDPR (EU/EEA) allows for access, "
        "portability, rectification, erasure, restriction, objection, withdraw_consent requests "
        "(1 month); promise 1 month or less",
        "default: 60 days",
        "60 days",
    ),
    Case(
        "extension looser than the CCPA",
        "jurisdictions: [eu]",
        "jurisdictions: [eu, us-ca]",
        "requests.deadline.extension: 2 months is longer than the CCPA (California) allows "
        "(45 days); extend by 45 days at most",
        "extension: 2 months",
        "2 months",
    ),
    Case(
        "GPC ignored where the law requires it",
        "jurisdictions: [eu]\n",
        "jurisdictions: [eu, us-ca]\n",
        "signals.gpc: the CCPA (California) requires honouring Global Privacy Control; set gpc: honor",
        "signals:",
        "ignore",
        also=(
            ("signals: {gpc: honor", "signals: {gpc: ignore"),
            ("extension: 2 months", "extension: 45 days"),
        ),
    ),
    Case(
        "consent purpose without a way to collect consent",
        "    consent: {via: [checkbox, form]}\n",
        "",
        "purposes.newsletter: the basis is consent (in eu) but no way to collect it is declared; "
        "add `consent: {via: [form]}` (or checkbox, banner, email_link, ...)",
        "  newsletter:",
        "newsletter",
    ),
    Case(
        "age as a word",
        "min_age: 16",
        "min_age: sixteen",
        "subjects.customer.min_age: expected a whole number, got 'sixteen'",
        "min_age: sixteen",
        "sixteen",
    ),
    Case(
        "age out of range",
        "min_age: 16",
        "min_age: 160",
        "subjects.customer.min_age: the number 160 is too large: it must be at most 25",
        "min_age: 160",
        "160",
    ),
    Case(
        "version label as a number",
        'version: "1"',
        "version: 1.0",
        "version: write the version label as text: '1.0' (in quotes)",
        "version: 1.0",
        "1.0",
    ),
    Case(
        "misspelt duration unit",
        "keep: 3 years",
        "keep: 3 yaers",
        "retention.customer_records.keep: '3 yaers' is not a duration: did you mean '3 years'?",
        "keep: 3 yaers",
        "3 yaers",
    ),
    Case(
        "duration without a unit",
        "keep: 3 years",
        "keep: 3",
        "retention.customer_records.keep: '3' needs a unit: write e.g. '3 days', '3 months' or '3 years'",
        "keep: 3",
        "3",
    ),
    Case(
        "unsupported language version",
        "lawful: 1 ",
        "lawful: 2 ",
        "lawful: this lawful reads policy language version 1; write `lawful: 1` (got the number 2)",
        "lawful: 2",
        "2",
    ),
    Case(
        "impossible date",
        "effective: 2026-01-01",
        "effective: 2026-13-01",
        "effective: expected a date like 2025-02-19, got '2026-13-01'",
        "effective: 2026-13-01",
        "2026",
    ),
    Case(
        "duplicate key",
        "  visitor:\n    fides: visitor\n",
        "  visitor:\n    fides: visitor\n  visitor:\n    fides: visitor\n",
        "subjects: duplicate key 'visitor' (first written at line 32); keep one of them",
        "  visitor:  # second",
        "visitor",
    ),
    Case(
        "transfer without a safeguard",
        "    country: US\n    safeguards: [dpf, scc]",
        "    country: CN\n    safeguards: []",
        "recipients.email_provider.safeguards: data goes to CN, outside eu and without an adequacy "
        "decision; declare a safeguard eu accepts: adequacy, bcr, derogation, dpf, scc",
        "safeguards: []",
        "[]",
    ),
    Case(
        "breach deadline looser than the GDPR",
        "notify_authority_within: 72 hours",
        "notify_authority_within: 5 days",
        "breaches.notify_authority_within: 5 days is longer than the GDPR (EU/EEA) allows "
        "(72 hours); promise 72 hours or less",
        "notify_authority_within",
        "5 days",
    ),
    Case(
        "unknown jurisdiction",
        "jurisdictions: [eu]",
        "jurisdictions: [eu, ca]",
        "jurisdictions[1]: 'ca' is not a jurisdiction; use one of: eu, uk, us-ca, cn, br, other",
        "jurisdictions: [eu, ca]",
        "ca",
    ),
    Case(
        "refuse and parental consent together",
        "below_min_age: [refuse, delete_on_discovery]",
        "below_min_age: [refuse, parental_consent]",
        "subjects.customer: below_min_age cannot both refuse children and accept them with parental "
        "consent; choose one (delete_on_discovery may go with either)",
        "  customer:",
        "customer",
    ),
    Case(
        "strictly necessary cookies made optional",
        "strictly_necessary: {optional: false",
        "strictly_necessary: {optional: true",
        "cookies.strictly_necessary.optional: strictly necessary cookies cannot be optional "
        "(ePrivacy Art. 5(3)); set optional: false",
        "strictly_necessary:",
        "true",
    ),
    Case(
        "a list where a mapping belongs",
        "  supervisory_authority:\n    name: Data Protection Commission\n    url: https://www.dataprotection.ie\n",
        "  supervisory_authority: [Data Protection Commission]\n",
        "controller.supervisory_authority: expected a mapping (key: value), got a list",
        "supervisory_authority:",
        "[",
    ),
    Case(
        "undeclared recipient",
        "    lists: [news]\n",
        "    lists: [news]\n    recipients: [mailer]\n",
        "purposes.newsletter.recipients[0]: 'mailer' is not a declared recipient; did you mean "
        "'email_provider'?",
        "recipients: [mailer]",
        "mailer",
    ),
    Case(
        "recipient names an undeclared purpose",
        "purposes: [newsletter]\n\nretention",
        "purposes: [newslettr]\n\nretention",
        "recipients.email_provider.purposes[0]: 'newslettr' is not a declared purpose; did you mean "
        "'newsletter'?",
        "purposes: [newslettr]",
        "newslettr",
    ),
    Case(
        "misspelt channel",
        "channels: [email]\n    lists",
        "channels: [e-mail]\n    lists",
        "purposes.newsletter.channels[0]: 'e-mail' is not a marketing channel; did you mean 'email'?",
        "channels: [e-mail]",
        "e-mail",
    ),
    Case(
        "sale marked while the policy never sells",
        "    required: true\n",
        "    required: true\n    sale: true\n",
        "purposes.service.sale: marked as a sale, but the policy promises not to sell "
        "(sale.sells: false); remove one of the two",
        "sale: true",
        "true",
    ),
    Case(
        "bad email address",
        "privacy_email: privacy@example.com",
        "privacy_email: privacy-at-example.com",
        "controller.contacts.privacy_email: 'privacy-at-example.com' is not an email address "
        "(write e.g. privacy@example.com)",
        "privacy_email:",
        "privacy-at",
    ),
    Case(
        "custom category not under its parent",
        "jurisdictions: [eu]\n",
        "jurisdictions: [eu]\ncategories:\n  seniority: {parent: user.job_title}\n",
        "categories.seniority: a custom category's key starts with its parent's: write "
        "'user.job_title.seniority'",
        "  seniority:",
        "seniority",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_malformed_policy_names_the_problem_and_its_place(case: Case) -> None:
    assert case.old in STARTER, "the case no longer matches the starter policy"
    text = STARTER.replace(case.old, case.new, 1)
    for old, new in case.also:
        assert old in text
        text = text.replace(old, new, 1)
    if case.id == "duplicate key":
        text = text.replace(
            "  visitor:\n    fides: visitor\n  visitor:",
            "  visitor:\n    fides: visitor\n  visitor:  # second",
            1,
        )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    line, column = _expected_position(text, case)
    rendered = [str(p) for p in caught.value.errors]
    assert f"policy.yaml:{line}:{column} {case.message}" in rendered, "\n".join(rendered)


def test_there_are_at_least_25_distinct_cases() -> None:
    assert len({c.message for c in CASES}) >= 25


def test_every_error_is_reported_at_once_across_sections() -> None:
    text = (
        STARTER.replace("basis: contract", "basis: consnet")
        .replace("lists: [news]", "lists: [newz]")
        .replace("from: contract_end", "from: contract_ended")
        .replace("country: IE", "country: UK")
    )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    paths = [".".join(str(x) for x in p.path) for p in caught.value.errors]
    assert "purposes.service.basis" in paths
    assert "purposes.newsletter.lists.0" in paths  # cross-checks still run beside shape errors
    assert "retention.customer_records.from" in paths
    assert "controller.country" in paths
    # sorted in file order, so the author fixes them top to bottom
    lines = [p.line for p in caught.value.errors]
    assert lines == sorted(lines)


def test_an_entry_with_errors_is_not_also_reported_as_undeclared() -> None:
    # `news` list is broken; the purpose naming it must not get "not a declared list".
    text = STARTER.replace("news: {purpose: newsletter, channels: [email]}", "news: {purpose: 42}")
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    messages = [str(p) for p in caught.value.errors]
    assert not any("not a declared marketing list" in m for m in messages), messages


# --- the file itself --------------------------------------------------------------------


def _only_error(tmp_path: Path, content: bytes, name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0]).replace(str(tmp_path) + "/", "")


def test_empty_file(tmp_path: Path) -> None:
    assert _only_error(tmp_path, b"") == (
        "policy.yaml the file is empty; write a policy (`lawful init` makes a starter)"
    )


def test_only_comments(tmp_path: Path) -> None:
    assert "the file is empty" in _only_error(tmp_path, b"# nothing yet\n\n# really\n")


def test_not_utf8(tmp_path: Path) -> None:
    content = b"lawful: 1\ncontroller:\n  name: Caf" + b"\xe9 Ltd\n"
    assert _only_error(tmp_path, content) == (
        "policy.yaml:3:12 the file is not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + STARTER.encode())
    assert load_policy(path).policy.controller.name == "Example Ltd"


def test_malformed_yaml(tmp_path: Path) -> None:
    message = _only_error(tmp_path, b"lawful: 1\ncontroller:\n  name: [unclosed\n  country: IE\n")
    assert message.startswith("policy.yaml:4:")
    assert "malformed YAML" in message and "check indentation, colons and quotes" in message


def test_tab_indentation(tmp_path: Path) -> None:
    message = _only_error(tmp_path, b"lawful: 1\ncontroller:\n\tname: X\n")
    assert message.startswith("policy.yaml:3:1 malformed YAML")


def test_top_level_list(tmp_path: Path) -> None:
    assert _only_error(tmp_path, b"- lawful: 1\n") == (
        "policy.yaml:1:1 a policy is a mapping of sections (lawful:, controller:, purposes:, ...), "
        "but the file holds a list"
    )


def test_two_documents(tmp_path: Path) -> None:
    message = _only_error(tmp_path, b"lawful: 1\n---\nlawful: 1\n")
    assert message.startswith("policy.yaml:") and "expected a single document" in message


def test_huge_file(tmp_path: Path) -> None:
    content = b"# padding\n" * (MAX_BYTES // 10 + 1)
    assert _only_error(tmp_path, content) == (
        "policy.yaml file is 2.0 MiB; a policy is at most 2 MiB — is this the right file?"
    )


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    message = _only_error(tmp_path, ("\n".join(lines) + "\n").encode())
    assert "expands to more than" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "nope.yaml")
    assert "no such file; check the path, or create one with `lawful init`" in str(caught.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path)
    assert "is a directory" in str(caught.value)


def test_norway_stays_a_country_code() -> None:
    # YAML 1.1 reads NO as false; the policy language reads it as text (YAML 1.2 booleans).
    text = STARTER.replace(
        "    country: US\n    safeguards: [dpf, scc]", "    country: NO\n    safeguards: []"
    )
    loaded = load_policy_text(text, "policy.yaml")
    assert loaded.policy.recipients["email_provider"].country == ["NO"]


def _load_errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    return [str(p) for p in caught.value.errors]


def test_missing_top_level_section_points_at_the_document() -> None:
    text = STARTER.replace("jurisdictions: [eu]\n", "")
    # the document starts on line 6, after the opening comments
    assert (
        "policy.yaml:6:1 jurisdictions: missing required key 'jurisdictions': the laws served: eu, uk, us-ca, cn, br, other"
        in _load_errors(text)
    )


def test_a_law_named_by_its_common_name_is_guessed() -> None:
    errors = _load_errors(STARTER.replace("jurisdictions: [eu]", "jurisdictions: [gdpr]"))
    assert any(
        "jurisdictions[0]: 'gdpr' is not a jurisdiction; did you mean 'eu'?" in e for e in errors
    )


def test_business_day_calendar_must_be_a_country_the_law_covers() -> None:
    text = STARTER.replace(
        "    extension: 2 months\n", "    extension: 2 months\n    calendars: {eu: US}\n"
    )
    assert any(
        "requests.deadline.calendars.eu: US is not in eu; the business-day calendar is that of a country the law covers"
        in e
        for e in _load_errors(text)
    )
    load_policy_text(text.replace("{eu: US}", "{eu: IE}"), "policy.yaml")


def test_an_extension_the_law_does_not_allow_is_a_warning_for_that_law_only() -> None:
    # LGPD has no extension; the GDPR's two months still stand for eu
    text = STARTER.replace("jurisdictions: [eu]", "jurisdictions: [eu, br]").replace(
        "    extension: 2 months\n", "    extension: 2 months\n    by_jurisdiction: {br: 15 days}\n"
    )
    loaded = load_policy_text(text, "policy.yaml")
    [warning] = [w for w in loaded.warnings if w.path == ("requests", "deadline", "extension")]
    assert (
        "allows no extension of the answer deadline; it will not be applied to requests in br"
        in warning.message
    )


def test_roles_both_in_a_list() -> None:
    loaded = load_policy_text(
        STARTER.replace("roles: [controller]", "roles: [both]"), "policy.yaml"
    )
    assert [r.value for r in loaded.policy.controller.roles] == ["controller", "processor"]

"""`diff_policies`: what changed between two policy versions, which changes are material
(seed 002 section VIII, GDPR Art. 13(3)) and whose consent must be renewed or collected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lawful.cli import app
from lawful.policy import (
    Change,
    Policy,
    PolicyDiff,
    content_hash,
    diff_policies,
    load_policy_text,
    starter_policy,
)
from lawful.policy.problems import format_path

STARTER = starter_policy()

Edit = tuple[str, str]


def edit(text: str, *edits: Edit) -> str:
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


@cache
def policy(text: str) -> Policy:
    return load_policy_text(text).policy


def diff(*edits: Edit, before: tuple[Edit, ...] = ()) -> PolicyDiff:
    """The diff from the starter (with `before` applied) to it with `edits` applied too."""
    old = edit(STARTER, *before)
    return diff_policies(policy(old), policy(edit(old, *edits)))


def rows(d: PolicyDiff) -> list[tuple[str, str, object, object, bool, str]]:
    return [(format_path(c.path), c.kind, c.old, c.new, c.material, c.reason) for c in d.changes]


NEWSLETTER_CATEGORIES = "[user.contact.email, user.name.first]"
MORE_NEWSLETTER_CATEGORIES = (
    NEWSLETTER_CATEGORIES,
    "[user.contact.email, user.name.first, user.contact.phone_number]",
)
PRIVACY_EMAIL = ("privacy_email: privacy@example.com", "privacy_email: dpo@example.com")
KINDS = [
    "access", "portability", "rectification", "erasure", "restriction", "objection", "withdraw_consent"
]  # fmt: skip
FRAUD = (
    "\n# Third parties",
    "  fraud:\n"
    "    description: Keep fraudsters out\n"
    "    use: essential.fraud_detection\n"
    "    basis: legitimate_interests\n"
    "    legitimate_interest: stopping fraud against our customers\n"
    "    categories: [user.device.ip_address]\n"
    "\n# Third parties",
)

# the reasons, as the module words them
PURPOSES = "the purposes for which personal information is processed"
TYPES = "the types of personal information processed"
BASIS = "the manner in which personal information is used (lawful basis)"
RECIPIENTS = "the primary recipients of personal information"
TRANSFERRED = "where personal information is transferred"
CONTACTS = "the department responsible, contact information and complaint channels"
OWNERSHIP = "the ownership or organisational structure"
EXERCISED = "how rights are exercised"


# --- nothing changed ----------------------------------------------------------------------


def test_identical_policies_have_no_changes() -> None:
    d = diff_policies(policy(STARTER), policy(STARTER))
    assert d == PolicyDiff(changes=())
    assert (d.material, d.renew_consent, d.collect_consent) == ((), (), ())
    assert d.to_dict() == {
        "changes": [],
        "material": False,
        "renew_consent": [],
        "collect_consent": [],
    }


def test_comments_whitespace_and_key_order_are_not_changes() -> None:
    reformatted = edit(
        "# Version 1, reformatted\n" + STARTER,
        ("jurisdictions: [eu]", "jurisdictions:   # only the EU for now\n  - eu\n\n"),
        ("signals: {gpc: honor, dnt: ignore}", "signals:\n  dnt: ignore\n  gpc: honor"),
        (
            "retention: {keep: 13 months, from: collected, then: delete}",
            "retention: {then: delete, from: collected, keep: 13 months}",
        ),
        # move the whole purposes.service entry after newsletter and site_analytics
        ("  service:\n", "  _service_:\n"),
    )
    service = reformatted[
        reformatted.index("  _service_:\n") : reformatted.index("  newsletter:\n")
    ]
    reformatted = reformatted.replace(service, "").replace(
        "\n# Third parties", "\n" + service.replace("_service_", "service") + "\n# Third parties"
    )
    assert reformatted != STARTER
    old, new = policy(STARTER), policy(reformatted)
    assert list(new.purposes) == ["newsletter", "site_analytics", "service"]
    assert diff_policies(old, new) == PolicyDiff(changes=())
    assert content_hash(new) == content_hash(old)


# --- wording ------------------------------------------------------------------------------


def test_a_purpose_description_is_wording_not_material() -> None:
    d = diff(("Send our newsletter to people who asked for it", "Send our monthly newsletter"))
    assert rows(d) == [
        (
            "purposes.newsletter.description",
            "changed",
            "Send our newsletter to people who asked for it",
            "Send our monthly newsletter",
            False,
            "",
        )
    ]
    assert (d.material, d.renew_consent, d.to_dict()["material"]) == ((), (), False)


def test_a_recipient_description_is_wording_not_material() -> None:
    d = diff(("  email_provider:\n", "  email_provider:\n    description: Sends our newsletter\n"))
    assert rows(d) == [
        ("recipients.email_provider.description", "added", None, "Sends our newsletter", False, "")
    ]
    assert d.material == () and d.renew_consent == ()


# --- material changes, seed 002 section VIII ----------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    edits: tuple[Edit, ...]
    rows: list[tuple[str, str, object, object, bool, str]]
    renew: tuple[str, ...] = ()
    before: tuple[Edit, ...] = ()


MATERIAL = [
    Case(
        "new purpose",
        (FRAUD,),
        [
            (
                "purposes.fraud",
                "added",
                None,
                {
                    "description": "Keep fraudsters out",
                    "use": "essential.fraud_detection",
                    "basis": "legitimate_interests",
                    "legitimate_interest": "stopping fraud against our customers",
                    "categories": ["user.device.ip_address"],
                },
                True,
                PURPOSES,
            )
        ],
    ),
    Case(
        "a purpose's categories extended",
        (MORE_NEWSLETTER_CATEGORIES,),
        [
            (
                "purposes.newsletter.categories",
                "changed",
                ["user.contact.email", "user.name.first"],
                ["user.contact.email", "user.name.first", "user.contact.phone_number"],
                True,
                TYPES,
            )
        ],
        renew=("newsletter",),
    ),
    Case(
        "a purpose's category replaced by a wider one",
        ((NEWSLETTER_CATEGORIES, "[user.contact.email, user.name]"),),
        [
            (
                "purposes.newsletter.categories",
                "changed",
                ["user.contact.email", "user.name.first"],
                ["user.contact.email", "user.name"],
                True,
                TYPES,
            )
        ],
        renew=("newsletter",),
    ),
    Case(
        "basis changed",
        (
            (
                "    basis: contract\n",
                "    basis: legitimate_interests\n    legitimate_interest: running our shop\n",
            ),
        ),
        [
            ("purposes.service.basis", "changed", "contract", "legitimate_interests", True, BASIS),
            (
                "purposes.service.legitimate_interest",
                "added",
                None,
                "running our shop",
                False,
                "",
            ),
        ],
    ),
    Case(
        "new recipient",
        (
            (
                "\nretention:\n",
                "  payments:\n    role: processor\n    country: NL\n    purposes: [service]\n\nretention:\n",
            ),
        ),
        [
            (
                "recipients.payments",
                "added",
                None,
                {"role": "processor", "country": ["NL"], "purposes": ["service"]},
                True,
                RECIPIENTS,
            )
        ],
    ),
    Case(
        # email_provider now also gets service data; the newsletter's consent is untouched
        "a purpose's recipients changed",
        (
            (
                "    retention: customer_records\n",
                "    retention: customer_records\n    recipients: [email_provider]\n",
            ),
            ("purposes: [newsletter]", "purposes: [newsletter, service]"),
        ),
        [
            ("purposes.service.recipients", "added", None, ["email_provider"], True, RECIPIENTS),
            (
                "recipients.email_provider.purposes",
                "changed",
                ["newsletter"],
                ["newsletter", "service"],
                True,
                RECIPIENTS,
            ),
        ],
    ),
    Case(
        # the newsletter's recipient is declared on the recipient's side only
        "recipient country changed",
        (("    country: US\n", "    country: [US, IN]\n"),),
        [("recipients.email_provider.country", "changed", ["US"], ["US", "IN"], True, TRANSFERRED)],
        renew=("newsletter",),
    ),
    Case(
        "recipient safeguard dropped",
        (("safeguards: [dpf, scc]", "safeguards: [dpf]"),),
        [
            (
                "recipients.email_provider.safeguards",
                "changed",
                ["dpf", "scc"],
                ["dpf"],
                True,
                "the safeguards for transfers",
            )
        ],
        renew=("newsletter",),
    ),
    Case(
        "transfers changed",
        (("\nretention:\n", "\ntransfers:\n  storage: [IE]\n\nretention:\n"),),
        [
            (
                "transfers.storage",
                "added",
                None,
                ["IE"],
                True,
                "where personal information is stored and transferred",
            )
        ],
        renew=("newsletter", "site_analytics"),
    ),
    Case(
        "a request kind removed",
        ((", objection, withdraw_consent]", ", withdraw_consent]"),),
        [
            (
                "requests.kinds",
                "changed",
                KINDS,
                [k for k in KINDS if k != "objection"],
                True,
                "the rights people have (a right no longer offered)",
            )
        ],
    ),
    Case(
        "requests deadline lengthened",
        (("default: 20 days", "default: 1 month"),),
        [
            (
                "requests.deadline.default",
                "changed",
                "20 days",
                "1 month",
                True,
                "how rights are exercised (a longer deadline)",
            )
        ],
        before=(("default: 1 month", "default: 20 days"),),
    ),
    Case(
        "verification changed",
        (("verification: [email_code]", "verification: [signed_in]"),),
        [("requests.verification", "changed", ["email_code"], ["signed_in"], True, EXERCISED)],
    ),
    Case(
        "authorised agents no longer accepted",
        (
            (
                "  verification: [email_code]\n",
                "  verification: [email_code]\n  authorised_agents: false\n",
            ),
        ),
        [("requests.authorised_agents", "changed", True, False, True, EXERCISED)],
    ),
    Case(
        "one-click unsubscribe withdrawn",
        (("  transactional:", "  unsubscribe: {one_click: false}\n  transactional:"),),
        [
            (
                "marketing.unsubscribe.one_click",
                "changed",
                True,
                False,
                True,
                "how rights are exercised (a way to unsubscribe withdrawn)",
            )
        ],
    ),
    Case(
        "controller privacy_email changed",
        (PRIVACY_EMAIL,),
        [
            (
                "controller.contacts.privacy_email",
                "changed",
                "privacy@example.com",
                "dpo@example.com",
                True,
                CONTACTS,
            )
        ],
        renew=("newsletter", "site_analytics"),
    ),
    Case(
        "controller name changed",
        (("name: Example Ltd", "name: Example Holdings Ltd"),),
        [("controller.name", "changed", "Example Ltd", "Example Holdings Ltd", True, OWNERSHIP)],
        renew=("newsletter", "site_analytics"),
    ),
    Case(
        "jurisdictions changed",
        (("jurisdictions: [eu]", "jurisdictions: [eu, uk]"),),
        [
            (
                "jurisdictions",
                "changed",
                ["eu"],
                ["eu", "uk"],
                True,
                "the rights that apply (jurisdictions served)",
            )
        ],
    ),
    Case(
        "children's minimum age lowered",
        (("min_age: 16", "min_age: 13"),),
        [
            (
                "subjects.customer.min_age",
                "changed",
                16,
                13,
                True,
                "how children's personal information is handled",
            )
        ],
    ),
    Case(
        "children's rule changed",
        (("[refuse, delete_on_discovery]", "[parental_consent]"),),
        [
            (
                "subjects.customer.below_min_age",
                "changed",
                ["refuse", "delete_on_discovery"],
                ["parental_consent"],
                True,
                "how children's personal information is handled",
            )
        ],
    ),
    Case(
        "retention period lengthened",
        (("keep: 3 years", "keep: 6 years"),),
        [
            (
                "retention.customer_records.keep",
                "changed",
                "3 years",
                "6 years",
                True,
                "how long personal information is kept (longer)",
            )
        ],
    ),
    Case(
        "inline retention period of a consent purpose lengthened",
        (("keep: 13 months", "keep: 25 months"),),
        [
            (
                "purposes.site_analytics.retention.keep",
                "changed",
                "13 months",
                "25 months",
                True,
                "how long personal information is kept (longer)",
            )
        ],
        renew=("site_analytics",),
    ),
    Case(
        "a fixed retention period replaced by criteria",
        (("    keep: 3 years\n", "    criteria: until the last invoice is settled\n"),),
        [
            (
                "retention.customer_records.keep",
                "removed",
                "3 years",
                None,
                True,
                "how long personal information is kept (no fixed period any more)",
            ),
            (
                "retention.customer_records.criteria",
                "added",
                None,
                "until the last invoice is settled",
                False,
                "",
            ),
        ],
    ),
    Case(
        "GPC switched to ignore",
        (("gpc: honor", "gpc: ignore"),),
        [
            (
                "signals.gpc",
                "changed",
                "honor",
                "ignore",
                True,
                "the rights to opt out (a privacy signal no longer honoured)",
            )
        ],
    ),
    Case(
        "sale switched on",
        (("\nbreaches:\n", "\nsale: {sells: true}\n\nbreaches:\n"),),
        [
            (
                "sale.sells",
                "changed",
                False,
                True,
                True,
                "the manner in which personal information is used (sale or sharing)",
            )
        ],
    ),
    Case(
        "a new cookie category for a consent purpose",
        (
            (
                "  analytics: {optional: true",
                "  ads: {optional: true, purposes: [site_analytics]}\n  analytics: {optional: true",
            ),
        ),
        [
            (
                "cookies.ads",
                "added",
                None,
                {"optional": True, "purposes": ["site_analytics"]},
                True,
                "the types of personal information collected (a new cookie category)",
            )
        ],
        renew=("site_analytics",),
    ),
]


@pytest.mark.parametrize("case", MATERIAL, ids=[c.id for c in MATERIAL])
def test_material_changes(case: Case) -> None:
    d = diff(*case.edits, before=case.before)
    assert rows(d) == case.rows
    assert d.material == tuple(c for c in d.changes if c.material) != ()
    assert d.renew_consent == case.renew
    assert d.collect_consent == ()


NOT_MATERIAL = [
    Case(
        "a request kind added",
        (("withdraw_consent]", "withdraw_consent, restrict_recipients]"),),
        [("requests.kinds", "changed", KINDS, [*KINDS, "restrict_recipients"], False, "")],
    ),
    Case(
        "requests deadline shortened",
        (("default: 1 month", "default: 20 days"),),
        [("requests.deadline.default", "changed", "1 month", "20 days", False, "")],
    ),
    Case(
        "retention period shortened",
        (("keep: 3 years", "keep: 1 year"),),
        [("retention.customer_records.keep", "changed", "3 years", "1 year", False, "")],
    ),
    Case(
        "a purpose's categories narrowed",
        ((NEWSLETTER_CATEGORIES, "[user.contact.email]"),),
        [
            (
                "purposes.newsletter.categories",
                "changed",
                ["user.contact.email", "user.name.first"],
                ["user.contact.email"],
                False,
                "",
            )
        ],
    ),
    Case(
        "a purpose's categories reordered",
        ((NEWSLETTER_CATEGORIES, "[user.name.first, user.contact.email]"),),
        [
            (
                "purposes.newsletter.categories",
                "changed",
                ["user.contact.email", "user.name.first"],
                ["user.name.first", "user.contact.email"],
                False,
                "",
            )
        ],
    ),
    Case(
        "a recipient country dropped",
        (("    country: [US, IN]\n", "    country: US\n"),),
        [("recipients.email_provider.country", "changed", ["US", "IN"], ["US"], False, "")],
        before=(("    country: US\n", "    country: [US, IN]\n"),),
    ),
    Case(
        "GPC honoured again",
        (("gpc: ignore", "gpc: honor"),),
        [("signals.gpc", "changed", "ignore", "honor", False, "")],
        before=(("gpc: honor", "gpc: ignore"),),
    ),
    Case(
        "sale switched off",
        (("sale: {sells: true}", "sale: {sells: false}"),),
        [("sale.sells", "changed", True, False, False, "")],
        before=(("\nbreaches:\n", "\nsale: {sells: true}\n\nbreaches:\n"),),
    ),
    Case(
        "version label and effective date",
        (('version: "1"', 'version: "2"'), ("effective: 2026-01-01", "effective: 2026-03-01")),
        [
            ("version", "changed", "1", "2", False, ""),
            ("effective", "changed", "2026-01-01", "2026-03-01", False, ""),
        ],
    ),
]


@pytest.mark.parametrize("case", NOT_MATERIAL, ids=[c.id for c in NOT_MATERIAL])
def test_changes_that_only_narrow_are_not_material(case: Case) -> None:
    d = diff(*case.edits, before=case.before)
    assert rows(d) == case.rows
    assert (d.material, d.renew_consent, d.collect_consent) == ((), (), ())


# --- consent to renew, consent to collect -------------------------------------------------


def test_a_material_change_to_a_contract_purpose_renews_no_unrelated_consent() -> None:
    d = diff(
        (
            "[user.name, user.contact.email, user.account]",
            "[user.name, user.contact.email, user.account, user.contact.address]",
        )
    )
    assert [(format_path(c.path), c.material) for c in d.changes] == [
        ("purposes.service.categories", True)
    ]
    assert d.renew_consent == ()


def test_a_purpose_becoming_consent_based_needs_consent_collected_not_renewed() -> None:
    d = diff(
        ("    basis: contract\n", "    basis: consent\n    consent: {via: [checkbox]}\n"),
        PRIVACY_EMAIL,  # a controller-wide change renews every consent given before
    )
    assert rows(d) == [
        (
            "controller.contacts.privacy_email",
            "changed",
            "privacy@example.com",
            "dpo@example.com",
            True,
            CONTACTS,
        ),
        ("purposes.service.basis", "changed", "contract", "consent", True, BASIS),
        ("purposes.service.consent", "added", None, {"via": ["checkbox"]}, False, ""),
    ]
    assert d.renew_consent == ("newsletter", "site_analytics")
    assert d.collect_consent == ("service",)


def test_a_new_consent_purpose_needs_consent_collected() -> None:
    surveys = (
        "\n# Third parties",
        "  surveys:\n    use: marketing.communications.email\n    basis: consent\n"
        "    consent: {via: [email_link]}\n    categories: [user.contact.email]\n"
        "\n# Third parties",
    )
    d = diff(surveys)
    assert [(format_path(c.path), c.material) for c in d.changes] == [("purposes.surveys", True)]
    assert (d.renew_consent, d.collect_consent) == ((), ("surveys",))


NO_RENEWAL = (
    "consent: {via: [checkbox, form]}",
    "consent: {via: [form], renew_on_material_change: false}",
)


def test_a_purpose_that_does_not_renew_on_material_change_is_not_listed() -> None:
    d = diff(MORE_NEWSLETTER_CATEGORIES, before=(NO_RENEWAL,))
    assert [(format_path(c.path), c.material) for c in d.changes] == [
        ("purposes.newsletter.categories", True)
    ]
    assert (d.renew_consent, d.collect_consent) == ((), ())
    # nor by a controller-wide change, which still renews the other consent purposes
    assert diff(PRIVACY_EMAIL, before=(NO_RENEWAL,)).renew_consent == ("site_analytics",)


def test_switching_renewal_off_in_the_same_version_is_honoured() -> None:
    d = diff(NO_RENEWAL, MORE_NEWSLETTER_CATEGORIES)
    assert [(format_path(c.path), c.material) for c in d.changes] == [
        ("purposes.newsletter.categories", True),
        ("purposes.newsletter.consent.via", False),
        ("purposes.newsletter.consent.renew_on_material_change", False),
    ]
    assert d.renew_consent == ()


def test_a_purpose_no_longer_consent_based_is_not_renewed() -> None:
    d = diff(
        (
            "    basis: consent\n    consent: {via: [checkbox, form]}\n",
            "    basis: legitimate_interests\n    legitimate_interest: telling customers about offers\n",
        ),
        PRIVACY_EMAIL,
    )
    assert d.renew_consent == ("site_analytics",)
    assert d.collect_consent == ()


def test_a_removed_recipient_renews_the_consent_purposes_that_used_it() -> None:
    d = diff(
        (
            "recipients:\n  email_provider:\n    role: processor\n    country: US\n    safeguards: [dpf, scc]\n    purposes: [newsletter]\n",
            "",
        )
    )
    assert rows(d) == [
        (
            "recipients.email_provider",
            "removed",
            {
                "role": "processor",
                "country": ["US"],
                "safeguards": ["dpf", "scc"],
                "purposes": ["newsletter"],
            },
            None,
            True,
            RECIPIENTS,
        )
    ]
    assert d.renew_consent == ("newsletter",)


# --- output -------------------------------------------------------------------------------


def test_to_dict_is_json() -> None:
    d = diff(
        MORE_NEWSLETTER_CATEGORIES,
        ("Send our newsletter to people who asked for it", "Our news"),
        FRAUD,
    )
    data = d.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["material"] is True
    assert data["renew_consent"] == ["newsletter"]
    assert data["collect_consent"] == []
    assert data["changes"][0] == {
        "path": "purposes.newsletter.description",
        "kind": "changed",
        "old": "Send our newsletter to people who asked for it",
        "new": "Our news",
        "material": False,
        "reason": "",
    }
    assert [(c["path"], c["material"]) for c in data["changes"]] == [
        ("purposes.newsletter.description", False),
        ("purposes.newsletter.categories", True),
        ("purposes.fraud", True),
    ]


def test_describe_reads_well() -> None:
    def described(*edits: Edit) -> list[str]:
        return [c.describe() for c in diff(*edits).changes]

    assert described(MORE_NEWSLETTER_CATEGORIES) == [
        "purposes.newsletter.categories: added user.contact.phone_number"
    ]
    assert described((NEWSLETTER_CATEGORIES, "[user.contact.email, user.name]")) == [
        "purposes.newsletter.categories: added user.name; removed user.name.first"
    ]
    assert described((NEWSLETTER_CATEGORIES, "[user.name.first, user.contact.email]")) == [
        "purposes.newsletter.categories: reordered "
        "[user.contact.email, user.name.first] → [user.name.first, user.contact.email]"
    ]
    assert described(PRIVACY_EMAIL) == [
        "controller.contacts.privacy_email: privacy@example.com → dpo@example.com"
    ]
    assert described(("\nbreaches:\n", "\nsale: {sells: true}\n\nbreaches:\n")) == [
        "sale.sells: false → true"
    ]
    assert described(FRAUD) == [
        "purposes.fraud added: {description: Keep fraudsters out, use: essential.fraud_detection, "
        "basis: legitimate_interests, legitimate_interest: stopping fraud against our customers, "
        "categories: [user.device.ip_address]}"
    ]
    assert described(
        ("    keep: 3 years\n", "    criteria: until the last invoice is settled\n")
    ) == [
        "retention.customer_records.keep removed (was 3 years)",
        "retention.customer_records.criteria added: until the last invoice is settled",
    ]
    assert Change(("purposes", "x", "required"), "changed", old=None, new=True).describe() == (
        "purposes.x.required: null → true"
    )


# --- the CLI ------------------------------------------------------------------------------

runner = CliRunner()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_prints_material_lines_and_the_renewal_summary(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", STARTER)
    new = write(
        tmp_path,
        "new.yaml",
        edit(
            STARTER,
            MORE_NEWSLETTER_CATEGORIES,
            ("Send our newsletter to people who asked for it", "Our news"),
        ),
    )
    result = runner.invoke(app, ["policy", "diff", old, new])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "         purposes.newsletter.description: "
        "Send our newsletter to people who asked for it → Our news",
        "MATERIAL purposes.newsletter.categories: added user.contact.phone_number"
        "  (the types of personal information processed)",
        "",
        "2 change(s), 1 material; consent to renew: newsletter",
    ]


def test_cli_without_changes(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", STARTER)
    new = write(tmp_path, "new.yaml", "# just a comment\n" + STARTER)
    result = runner.invoke(app, ["policy", "diff", old, new])
    assert (result.exit_code, result.stdout) == (0, "no changes in what the policy says\n")


def test_cli_json(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", STARTER)
    new = write(tmp_path, "new.yaml", edit(STARTER, PRIVACY_EMAIL))
    result = runner.invoke(app, ["policy", "diff", old, new, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "changes": [
            {
                "path": "controller.contacts.privacy_email",
                "kind": "changed",
                "old": "privacy@example.com",
                "new": "dpo@example.com",
                "material": True,
                "reason": CONTACTS,
            }
        ],
        "material": True,
        "renew_consent": ["newsletter", "site_analytics"],
        "collect_consent": [],
    }


def test_cli_refuses_a_policy_with_errors(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", STARTER)
    new = write(tmp_path, "new.yaml", edit(STARTER, ("basis: contract", "basis: contrat")))
    result = runner.invoke(app, ["policy", "diff", old, new])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"✗ {new}: 1 error(s)"
    assert lines[1].startswith(f"  {new}:")
    assert lines[1].endswith(
        "purposes.service.basis: 'contrat' is not a lawful basis; did you mean 'contract'?"
    )


def test_cli_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", STARTER)
    missing = str(tmp_path / "nope.yaml")
    result = runner.invoke(app, ["policy", "diff", old, missing])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"error: {missing}: no such file" in result.stderr


def test_a_holiday_calendar_change_is_not_a_longer_deadline() -> None:
    from lawful.policy import diff_policies

    old = load_policy_text(STARTER, "old.yaml").policy
    new = load_policy_text(
        STARTER.replace(
            "    extension: 2 months\n", "    extension: 2 months\n    calendars: {eu: IE}\n"
        ),
        "new.yaml",
    ).policy
    [change] = diff_policies(old, new).changes
    assert change.path == ("requests", "deadline", "calendars", "eu") and not change.material

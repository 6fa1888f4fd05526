"""Transfer checks at load time: a recipient outside a served jurisdiction needs what that
law accepts, and a policy may narrow the law's mechanisms but never widen them."""

from __future__ import annotations

import pytest

from lawful.policy import PolicyError, load_policy_text, starter_policy

STARTER = starter_policy()
RECIPIENT = "    role: processor\n    country: US\n    safeguards: [dpf, scc]"


def _with(recipient: str, extra: str = "") -> str:
    return STARTER.replace(RECIPIENT, recipient).replace(
        "retention:\n  customer_records", extra + "retention:\n  customer_records"
    )


def _errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    return [p.message for p in caught.value.errors]


@pytest.mark.parametrize(
    ("recipient", "ok"),
    [
        ("    role: processor\n    country: US\n    safeguards: [dpf]", True),  # DPF-certified
        ("    role: processor\n    country: US\n    safeguards: []", False),
        ("    role: processor\n    country: CH\n    safeguards: []", True),  # adequacy
        ("    role: processor\n    country: DE\n    safeguards: []", True),  # inside the EEA
        ("    role: processor\n    country: '*'\n    safeguards: [scc]", True),
        (
            "    role: processor\n    country: '*'\n    safeguards: [adequacy]",
            False,
        ),  # adequacy can't cover anywhere
        ("    role: authority\n    country: '*'", True),  # required by law
        ("    role: user\n    country: '*'", True),  # publication, not a transfer
        ("    role: processor\n    country: [DE, IN]\n    safeguards: []", False),
    ],
)
def test_eu_transfer_needs_adequacy_or_a_safeguard(recipient: str, ok: bool) -> None:
    text = _with(recipient)
    if ok:
        load_policy_text(text, "policy.yaml")
    else:
        assert any("without an adequacy decision" in m for m in _errors(text))


def test_a_policy_may_narrow_the_accepted_mechanisms() -> None:
    narrowed = "transfers:\n  rules:\n    eu: {accept: [bcr]}\n\n"
    errors = _errors(_with("    role: processor\n    country: IN\n    safeguards: [scc]", narrowed))
    assert errors == [
        "data goes to IN, outside eu and without an adequacy decision; declare a safeguard eu accepts: bcr"
    ]


def test_a_policy_may_not_widen_them() -> None:
    widened = "transfers:\n  rules:\n    eu: {accept: [contract]}\n\n"
    errors = _errors(
        _with("    role: processor\n    country: IN\n    safeguards: [contract]", widened)
    )
    assert (
        "'contract' is not a transfer mechanism the GDPR (EU/EEA) accepts; a policy may only narrow "
        "the law's: adequacy, bcr, derogation, dpf, scc"
    ) in errors


def test_transfers_out_of_china_need_separate_consent_and_a_pipl_mechanism() -> None:
    text = STARTER.replace("jurisdictions: [eu]", "jurisdictions: [eu, cn]").replace(
        RECIPIENT, "    role: processor\n    country: DE\n    safeguards: [standard_contract]"
    )
    assert _errors(text) == [
        "data goes out of cn (DE); a transfer out of cn needs separate_consent: add it to safeguards"
    ]
    load_policy_text(
        text.replace("[standard_contract]", "[standard_contract, separate_consent]"), "p.yaml"
    )


@pytest.mark.parametrize("declared", ["adequacy", "dpf"])
def test_adequacy_and_dpf_cannot_be_declared_for_a_country_that_lacks_them(declared: str) -> None:
    errors = _errors(_with(f"    role: processor\n    country: IN\n    safeguards: [{declared}]"))
    assert any("IN, outside eu and without an adequacy decision" in m for m in errors)

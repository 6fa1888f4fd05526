from datetime import date

import pytest

from lawful.policy.durations import Duration, WorkCalendar
from lawful.policy.jurisdictions import (
    EU27,
    JURISDICTION_KEYS,
    JURISDICTIONS,
    Jurisdiction,
    get_jurisdiction,
)

D = Duration.parse
EU, UK, CA, CN, BR, OTHER = (JURISDICTIONS[k] for k in ("eu", "uk", "us-ca", "cn", "br", "other"))


def test_keys() -> None:
    assert JURISDICTION_KEYS == ("eu", "uk", "us-ca", "cn", "br", "other")
    assert all(JURISDICTIONS[k].key == k for k in JURISDICTION_KEYS)


def test_gdpr_request_deadlines() -> None:
    assert EU.request_deadline == D("one month")
    assert EU.request_extension == D("2 months")
    assert EU.extension_notice_within == D("1 month")
    assert not EU.clock_pauses_for_clarification


def test_uk_pauses_the_clock() -> None:
    assert UK.request_deadline == D("1 month")
    assert UK.request_extension == D("2 months")
    assert UK.clock_pauses_for_clarification


def test_ccpa_deadlines() -> None:
    assert CA.acknowledge_within == D("10 business days")
    assert CA.request_deadline == D("45 days")
    assert CA.request_extension == D("45 days")
    assert CA.opt_out_within == D("15 business days")
    assert CA.request_deadline_for("opt_out_sale") == D("15 business days")
    assert CA.request_deadline_for("access") == D("45 days")
    assert EU.request_deadline_for("opt_out_sale") == D("1 month")


def test_lgpd_and_pipl_deadlines() -> None:
    assert BR.request_deadline == D("15 days")
    assert BR.request_extension is None
    assert CN.request_deadline is None  # "promptly": the policy's promise applies
    assert OTHER.request_deadline is None


def test_breach_deadlines() -> None:
    assert EU.breach_authority_within == D("72 hours")
    assert UK.breach_authority_within == D("PT72H")
    assert BR.breach_authority_within == D("3 business days")
    assert CA.breach_subjects_within == D("30 days")
    assert CA.breach_authority_within is None
    assert CN.breach_authority_within is None  # "immediately"
    assert EU.breach_subjects_within is None  # "without undue delay"


def test_ages() -> None:
    assert EU.digital_consent_age == 16
    assert UK.digital_consent_age == 13
    assert CA.digital_consent_age == 13
    assert CN.digital_consent_age == 14
    assert BR.digital_consent_age == 12
    assert CA.sale_opt_in_age == 16
    assert EU.sale_opt_in_age is None


def test_member_state_ages_cover_the_eea_within_13_to_16() -> None:
    ages = EU.member_state_consent_ages
    assert set(ages) == EU.countries
    assert all(13 <= age <= 16 for age in ages.values())
    assert (ages["DE"], ages["FR"], ages["AT"], ages["BE"]) == (16, 15, 14, 13)
    assert EU.consent_age("FR") == 15
    assert EU.consent_age(None) == 16
    with pytest.raises(TypeError):
        ages["DE"] = 13  # type: ignore[index]


def test_gpc_and_sale_opt_out_only_in_california() -> None:
    assert [j.key for j in JURISDICTIONS.values() if j.gpc_required] == ["us-ca"]
    assert [j.key for j in JURISDICTIONS.values() if j.sale_opt_out] == ["us-ca"]


def test_eu_transfers() -> None:
    assert len(EU27) == 27
    assert EU.countries == EU27 | {"IS", "LI", "NO"}
    assert EU.countries <= EU.adequate_countries
    assert {"BR", "GB", "CH", "JP", "KR", "CA"} <= EU.adequate_countries
    assert "US" not in EU.adequate_countries
    assert EU.conditional_adequacy == {"US": "dpf"}
    assert "PIPEDA" in EU.adequacy_notes["CA"]
    assert "BR" in EU.adequacy_notes
    assert {"adequacy", "scc", "bcr", "derogation"} == EU.transfer_mechanisms


def test_uk_transfers() -> None:
    assert {"GI", "KR", "DE", "NO"} <= UK.adequate_countries
    assert "BR" not in UK.adequate_countries
    assert UK.conditional_adequacy == {"US": "dpf"}


def test_china_requires_separate_consent_for_transfers_out() -> None:
    assert CN.transfer_requires == {"separate_consent"}
    assert CN.transfer_mechanisms == {"security_assessment", "certification", "standard_contract"}
    assert not CN.adequate_countries
    assert CN.countries == {"CN"}  # HK, MO and TW are outside


def test_brazil_and_others_transfers() -> None:
    assert BR.transfer_mechanisms == {"adequacy", "scc", "bcr", "consent"}
    assert not CA.transfer_mechanisms and not CA.transfer_requires
    assert not OTHER.transfer_mechanisms and not OTHER.countries


def test_calendars() -> None:
    assert CA.calendar() == WorkCalendar("US", "CA")
    assert CN.calendar() == WorkCalendar("CN")
    assert UK.calendar() == WorkCalendar("GB")
    assert EU.calendar() == WorkCalendar(None)
    assert EU.calendar("EE") == WorkCalendar("EE")
    assert not EU.calendar("EE").is_working_day(date(2025, 2, 24))
    with pytest.raises(ValueError, match="'US' is not covered"):
        EU.calendar("US")


def test_get_jurisdiction() -> None:
    assert get_jurisdiction("eu") is EU
    assert isinstance(get_jurisdiction("us-ca"), Jurisdiction)
    with pytest.raises(KeyError) as error:
        get_jurisdiction("e")
    assert str(error.value) == "'e' is not a jurisdiction; did you mean 'eu'?"
    with pytest.raises(ValueError, match="did you mean 'us-ca'"):
        get_jurisdiction("ccpa")
    with pytest.raises(ValueError, match="use one of: eu, uk, us-ca, cn, br, other"):
        get_jurisdiction("xyz")


def test_values_are_read_only() -> None:
    with pytest.raises(AttributeError):
        EU.request_deadline = D("2 months")  # type: ignore[misc]
    with pytest.raises(TypeError):
        JURISDICTIONS["xx"] = OTHER  # type: ignore[index]

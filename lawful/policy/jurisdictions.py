"""The laws a policy serves, as data: the defaults a policy inherits and may only tighten.

One `Jurisdiction` per law. `None` means the law sets no fixed value (it says "promptly",
"without undue delay", or nothing), so the policy's own promise applies. Every value
cites its source; values marked "check" were set from the best available knowledge and
should be confirmed against the official text before relying on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lawful.policy.durations import Duration, WorkCalendar
from lawful.policy.vocabulary import did_you_mean

_d = Duration.parse


def _frozen(mapping: Mapping[str, str] | Mapping[str, int]) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)  # one instance per law: compared and hashed by identity
class Jurisdiction:
    key: str
    name: str
    law: str
    countries: frozenset[str] = frozenset()  # ISO 3166-1 alpha-2 covered by the law
    holiday_country: str | None = None  # the calendar business days are counted on
    holiday_subdiv: str | None = None
    # data-subject requests
    request_deadline: Duration | None = None
    request_extension: Duration | None = None  # how much longer, when allowed
    extension_notice_within: Duration | None = None  # tell the person of the extension within
    acknowledge_within: Duration | None = None
    opt_out_within: Duration | None = None  # opt-outs of sale/sharing
    clock_pauses_for_clarification: bool = False
    # breaches
    breach_authority_within: Duration | None = None
    breach_subjects_within: Duration | None = None
    # children
    digital_consent_age: int | None = None  # below it, a parent consents for online services
    member_state_consent_ages: Mapping[str, int] = field(default_factory=dict)
    sale_opt_in_age: int | None = None  # below it, selling needs an opt-in
    # signals and sale
    gpc_required: bool = False
    sale_opt_out: bool = False
    # transfers out of the jurisdiction
    adequate_countries: frozenset[str] = frozenset()  # no further safeguard needed
    conditional_adequacy: Mapping[str, str] = field(default_factory=dict)  # country -> safeguard
    adequacy_notes: Mapping[str, str] = field(default_factory=dict)
    transfer_requires: frozenset[str] = frozenset()  # all of these, always
    transfer_mechanisms: frozenset[str] = frozenset()  # any one of these suffices

    def __post_init__(self) -> None:
        for name in ("member_state_consent_ages", "conditional_adequacy", "adequacy_notes"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def request_deadline_for(self, kind: str) -> Duration | None:
        """The law's answer deadline for a request kind (a `RequestKind` value)."""
        if kind == "opt_out_sale" and self.opt_out_within is not None:
            return self.opt_out_within
        return self.request_deadline

    def calendar(self, member_state: str | None = None) -> WorkCalendar:
        """The working-day calendar; `member_state` picks one country of a multi-country law.

        Without a country (the EU with no member state named, or `other`) business days
        are Monday to Friday.
        """
        if member_state is None or member_state == self.holiday_country:
            return WorkCalendar(self.holiday_country, self.holiday_subdiv)
        if self.countries and member_state not in self.countries:
            raise ValueError(f"'{member_state}' is not covered by {self.name}")
        return WorkCalendar(member_state)

    def consent_age(self, member_state: str | None = None) -> int | None:
        """The digital consent age, as the member state set it where the law lets it."""
        return self.member_state_consent_ages.get(member_state or "", self.digital_consent_age)


# fmt: off
EU27 = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
# fmt: on
EEA = EU27 | {"IS", "LI", "NO"}  # EEA Agreement, Annex XI as amended by Decision 154/2018

# GDPR Art. 8(1) lets member states lower 16 to no less than 13. Values from the national
# laws as last known; several were amended since 2018, so check before relying on them.
_EEA_CONSENT_AGES = {
    "AT": 14,  # Datenschutzgesetz §4(4)
    "BE": 13,  # Law of 30 July 2018 Art. 7
    "BG": 14,  # Personal Data Protection Act Art. 25c (check)
    "CY": 14,  # Law 125(I)/2018 Art. 8
    "CZ": 15,  # Act 110/2019 §7
    "DE": 16,  # no derogation (BDSG)
    "DK": 13,  # Databeskyttelsesloven §6(2)
    "EE": 13,  # Isikuandmete kaitse seadus §8
    "ES": 14,  # LOPDGDD Art. 7
    "FI": 13,  # Tietosuojalaki §5
    "FR": 15,  # Loi Informatique et Libertés Art. 45
    "GR": 15,  # Law 4624/2019 Art. 21
    "HR": 16,  # Implementation Act Art. 19
    "HU": 16,  # no derogation (Infotv.)
    "IE": 16,  # Data Protection Act 2018 s. 31
    "IT": 14,  # Codice privacy Art. 2-quinquies
    "LT": 14,  # Law on Legal Protection of Personal Data Art. 6
    "LU": 16,  # no derogation
    "LV": 13,  # Personal Data Processing Law §33
    "MT": 13,  # Subsidiary Legislation 586.11 reg. 3
    "NL": 16,  # no derogation (UAVG Art. 5)
    "PL": 16,  # no derogation
    "PT": 13,  # Lei 58/2019 Art. 16
    "RO": 16,  # no derogation (Law 190/2018)
    "SE": 13,  # Dataskyddslagen ch. 2 §4
    "SI": 15,  # ZVOP-2 (2022) Art. 8 (check)
    "SK": 16,  # no derogation (Act 18/2018 §15 repeats 16)
    "IS": 13,  # Act 90/2018 Art. 10 (check)
    "LI": 16,  # no derogation (check)
    "NO": 13,  # Personopplysningsloven §5
}

# Countries with a European Commission adequacy decision (GDPR Art. 45(3)).
_EU_ADEQUACY_NOTES = {
    "AD": "Decision 2010/625/EU",
    "AR": "Decision 2003/490/EC",
    "BR": "Commission adequacy decision for Brazil, adopted January 2026 (check the OJ reference)",
    "CA": "Decision 2002/2/EC: only commercial organisations subject to PIPEDA",
    "CH": "Decision 2000/518/EC",
    "FO": "Decision 2010/146/EU",
    "GB": "Decision (EU) 2021/1772, renewed in 2025 (check the current expiry)",
    "GG": "Decision 2003/821/EC",
    "IL": "Decision 2011/61/EU",
    "IM": "Decision 2004/411/EC",
    "JE": "Decision 2008/393/EC",
    "JP": "Decision (EU) 2019/419: private sector under the APPI, with the Supplementary Rules",
    "KR": "Decision (EU) 2022/254",
    "NZ": "Decision 2013/65/EU",
    "UY": "Decision 2012/484/EU",
    "US": "Decision (EU) 2023/1795 (EU-U.S. Data Privacy Framework): only organisations "
    "certified on the DPF List",
}

# UK adequacy regulations (DPA 2018 s. 17A and Sch. 21 paras 4-5): the EEA, Gibraltar and
# the EU decisions in force at the end of 2020 carried over; Korea and the US added since.
_UK_ADEQUACY_NOTES = {
    "GI": "DPA 2018 Sch. 21 para 4 (Gibraltar)",
    "AD": "carried over from Decision 2010/625/EU",
    "AR": "carried over from Decision 2003/490/EC",
    "CA": "carried over from Decision 2002/2/EC: only commercial organisations subject to PIPEDA",
    "CH": "carried over from Decision 2000/518/EC",
    "FO": "carried over from Decision 2010/146/EU",
    "GG": "carried over from Decision 2003/821/EC",
    "IL": "carried over from Decision 2011/61/EU",
    "IM": "carried over from Decision 2004/411/EC",
    "JE": "carried over from Decision 2008/393/EC",
    "JP": "carried over from Decision (EU) 2019/419: private sector under the APPI",
    "NZ": "carried over from Decision 2013/65/EU",
    "UY": "carried over from Decision 2012/484/EU",
    "KR": "Data Protection (Adequacy) (Republic of Korea) Regulations 2022",
    "US": "Data Protection (Adequacy) (United States of America) Regulations 2023 (UK Extension "
    "to the EU-U.S. DPF): only organisations certified for the UK Extension",
}

_ARTICLE_46 = frozenset({"adequacy", "scc", "bcr", "derogation"})  # GDPR Arts. 45, 46(2)(c), 47, 49


EU = Jurisdiction(
    key="eu",
    name="the GDPR (EU/EEA)",
    law="Regulation (EU) 2016/679 (GDPR)",
    countries=EEA,
    # depends on the member state: the policy names it (requests.deadline.calendars)
    holiday_country=None,
    request_deadline=_d("1 month"),  # GDPR Art. 12(3)
    request_extension=_d("2 months"),  # GDPR Art. 12(3): complex or numerous requests
    extension_notice_within=_d("1 month"),  # GDPR Art. 12(3): within one month of receipt
    acknowledge_within=None,  # GDPR sets none
    opt_out_within=None,  # GDPR Art. 21(3): stop direct marketing; Art. 12(3) deadline applies
    # GDPR has no stop-the-clock: the month runs from receipt (EDPB Guidelines 01/2022 on the
    # right of access); asking for clarification does not suspend it.
    clock_pauses_for_clarification=False,
    breach_authority_within=_d("72 hours"),  # GDPR Art. 33(1)
    breach_subjects_within=None,  # GDPR Art. 34(1): "without undue delay"
    digital_consent_age=16,  # GDPR Art. 8(1)
    member_state_consent_ages=_EEA_CONSENT_AGES,  # GDPR Art. 8(1) second subparagraph
    # free flow within the EEA (GDPR Art. 1(3)); adequacy decisions (Art. 45)
    adequate_countries=EEA | (frozenset(_EU_ADEQUACY_NOTES) - {"US"}),
    conditional_adequacy={"US": "dpf"},  # Decision (EU) 2023/1795: DPF-certified recipients only
    adequacy_notes=_EU_ADEQUACY_NOTES,
    transfer_mechanisms=_ARTICLE_46,  # GDPR Arts. 45-49
)

UK = Jurisdiction(
    key="uk",
    name="the UK GDPR",
    law="UK GDPR and Data Protection Act 2018, as amended by the Data (Use and Access) Act 2025",
    countries=frozenset({"GB"}),
    # UK-wide bank holidays only; England/Wales and Scotland add more (subdivisions ENG,
    # SCT, ...). Fewer holidays give earlier, so safer, business-day deadlines.
    holiday_country="GB",
    request_deadline=_d("1 month"),  # UK GDPR Art. 12(3) and Art. 12A (DUAA 2025 s. 77)
    request_extension=_d("2 months"),  # UK GDPR Art. 12A (previously Art. 12(3))
    extension_notice_within=_d("1 month"),  # UK GDPR Art. 12A: within the first month
    # UK GDPR Art. 12A, inserted by DUAA 2025 s. 77 (as best known; check the section
    # number): the clock stops while the controller waits for information it reasonably
    # needs to identify the data or processing requested.
    clock_pauses_for_clarification=True,
    breach_authority_within=_d("72 hours"),  # UK GDPR Art. 33(1)
    breach_subjects_within=None,  # UK GDPR Art. 34(1): "without undue delay"
    digital_consent_age=13,  # DPA 2018 s. 9 (UK GDPR Art. 8(1) as modified)
    adequate_countries=EEA | (frozenset(_UK_ADEQUACY_NOTES) - {"US"}),  # DPA 2018 s. 17A, Sch. 21
    conditional_adequacy={"US": "dpf"},  # UK Extension to the DPF
    adequacy_notes=_UK_ADEQUACY_NOTES,
    # UK GDPR Arts. 45-49; the IDTA and the UK Addendum to the EU SCCs count as "scc"
    transfer_mechanisms=_ARTICLE_46,
)

US_CA = Jurisdiction(
    key="us-ca",
    name="the CCPA (California)",
    law="California Consumer Privacy Act as amended by the CPRA (Cal. Civ. Code §1798.100 ff.) "
    "and the CCPA Regulations (Cal. Code Regs. tit. 11, §7000 ff.)",
    countries=frozenset({"US"}),  # California residents only
    holiday_country="US",
    holiday_subdiv="CA",
    request_deadline=_d("45 days"),  # Cal. Civ. Code §1798.130(a)(2)(A); 11 CCR §7021(b)
    request_extension=_d("45 days"),  # §1798.130(a)(2)(A): once, when reasonably necessary
    extension_notice_within=_d("45 days"),  # §1798.130(a)(2)(A): within the first 45 days
    acknowledge_within=_d("10 business days"),  # 11 CCR §7021(a)
    opt_out_within=_d("15 business days"),  # 11 CCR §7026(f); likewise §7027(g) for limiting
    # 11 CCR §7021(b): the 45 days run from receipt, whatever time verification takes
    clock_pauses_for_clarification=False,
    # Cal. Civ. Code §1798.82(f) asks for a sample notice to the Attorney General (over 500
    # residents) counted from the notice to people, not from discovery: no fixed deadline here.
    breach_authority_within=None,
    # Cal. Civ. Code §1798.82(a) as amended by SB 446 (2025), in force 1 January 2026
    breach_subjects_within=_d("30 days"),
    digital_consent_age=13,  # COPPA, 15 U.S.C. §6501(1): a child is under 13
    sale_opt_in_age=16,  # §1798.120(c): under 16 opts in; under 13 a parent does
    gpc_required=True,  # 11 CCR §7025(b): opt-out preference signals are opt-out requests
    sale_opt_out=True,  # §1798.120(a)
    # the CCPA puts no conditions on transfers abroad: no mechanisms to check
)

CN = Jurisdiction(
    key="cn",
    name="the PIPL (China)",
    law="Personal Information Protection Law of the PRC (PIPL) and GB/T 35273-2020",
    countries=frozenset({"CN"}),  # mainland only: HK, MO and TW are outside, so transfers
    holiday_country="CN",  # holidays knows the make-up working days (调休)
    # PIPL Art. 50: requests are handled "promptly" (及时); GB/T 35273-2020 §8.7 (a
    # recommended standard, not binding) suggests 30 days. The policy's promise applies.
    request_deadline=None,
    request_extension=None,  # PIPL sets none
    # PIPL Art. 57: remedy and notify the authority and the people "immediately" (立即).
    # CAC incident-reporting measures (in force 1 Nov 2025) set hour-based reports for
    # serious cybersecurity incidents; not modelled here.
    breach_authority_within=None,
    breach_subjects_within=None,  # PIPL Art. 57: people may be spared where harm is avoided
    digital_consent_age=14,  # PIPL Art. 28 (sensitive) and Art. 31 (parental consent under 14)
    # no adequacy in the PIPL: every transfer out needs separate consent (Art. 39) and one of
    # the Art. 38(1) mechanisms. The CAC Provisions on Cross-Border Data Flows (2024) exempt
    # some transfers from the mechanism, not from the consent.
    transfer_requires=frozenset({"separate_consent"}),  # PIPL Art. 39
    # PIPL Art. 38(1)(1)-(3): CAC security assessment, certification, CAC standard contract
    transfer_mechanisms=frozenset({"security_assessment", "certification", "standard_contract"}),
)

BR = Jurisdiction(
    key="br",
    name="the LGPD (Brazil)",
    law="Lei Geral de Proteção de Dados Pessoais (LGPD), Lei nº 13.709/2018",
    countries=frozenset({"BR"}),
    holiday_country="BR",
    # LGPD Art. 19(II): the complete access answer within 15 days of the request (Art. 19(I):
    # the simplified confirmation "immediately"). Art. 18 §5 leaves other rights' deadlines
    # to ANPD regulation, none yet; 15 days is applied to every kind as the cautious reading.
    request_deadline=_d("15 days"),
    request_extension=None,  # the LGPD allows no extension
    # Resolução CD/ANPD nº 15/2024 Art. 6: three business days from knowing that the
    # incident affected personal data; Art. 9 the same to the people affected.
    breach_authority_within=_d("3 business days"),
    breach_subjects_within=_d("3 business days"),  # Resolução CD/ANPD nº 15/2024 Art. 9
    # LGPD Art. 14 §1: a parent consents for a child, a child being under 12 (ECA, Lei
    # 8.069/1990 Art. 2).
    digital_consent_age=12,
    # LGPD Art. 33(I): ANPD adequacy decisions. None adopted as last known (a reciprocal
    # recognition of the EU was under way); add countries as the ANPD decides them.
    adequate_countries=frozenset(),
    # LGPD Art. 33: adequacy (I), standard clauses (II(b), Resolução CD/ANPD 19/2024),
    # global corporate rules (II(c)), specific and highlighted consent (VIII)
    transfer_mechanisms=frozenset({"adequacy", "scc", "bcr", "consent"}),
)

OTHER = Jurisdiction(
    key="other",
    name="no specific law",
    law="none: only what the policy itself promises",
)

JURISDICTIONS: Mapping[str, Jurisdiction] = MappingProxyType(
    {j.key: j for j in (EU, UK, US_CA, CN, BR, OTHER)}
)
JURISDICTION_KEYS: tuple[str, ...] = tuple(JURISDICTIONS)

# what people write instead of the key
_ALIASES = {
    "gdpr": "eu", "eea": "eu", "gb": "uk", "ukgdpr": "uk", "ccpa": "us-ca", "cpra": "us-ca",
    "california": "us-ca", "pipl": "cn", "china": "cn", "lgpd": "br", "brazil": "br",
}  # fmt: skip


class UnknownJurisdictionError(KeyError, ValueError):
    """An unknown jurisdiction key; both a KeyError (lookup) and a ValueError (bad input)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_jurisdiction(key: str) -> Jurisdiction:
    """The jurisdiction for a key; an unknown key raises with a did-you-mean."""
    if key in JURISDICTIONS:
        return JURISDICTIONS[key]
    text = str(key).strip().lower().replace(" ", "").replace("_", "-")
    guess = _ALIASES.get(text.replace("-", "")) or did_you_mean(text, JURISDICTION_KEYS)
    hint = f"did you mean '{guess}'?" if guess else f"use one of: {', '.join(JURISDICTION_KEYS)}"
    raise UnknownJurisdictionError(f"'{key}' is not a jurisdiction; {hint}")

"""The policy language: pydantic models of everything a privacy policy promises.

`docs/policy.md` is the reference for these models; keep the two in step. Field
descriptions double as hints in "missing key" errors, so write them for a policy author.

Models validate the shape of each section on its own. Checks that look across sections
(a purpose naming an undeclared recipient, a deadline looser than the law) live in
`lawful.policy.checks`, so every error can be reported at once.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from lawful.policy.countries import Country, CountryOrAnywhere
from lawful.policy.durations import Duration
from lawful.policy.jurisdictions import JURISDICTION_KEYS, get_jurisdiction
from lawful.policy.taxonomy import (
    LegalCategories,
    Taxonomy,
    TaxonomyEntry,
    gdpr_special_categories,
    legal_categories,
    load_taxonomy,
)
from lawful.policy.vocabulary import (
    Basis,
    BelowMinAge,
    BreachChannel,
    ChangeNotice,
    Channel,
    ConsentMethod,
    Fee,
    HoldReason,
    Name,
    RecipientRole,
    RequestException,
    RequestKind,
    Role,
    Safeguard,
    SecurityMeasure,
    SignalHandling,
    Source,
    Then,
    Verification,
    checked,
    choice,
    describe,
    fail,
    unknown,
)

LANGUAGE_VERSION = 1


class Model(BaseModel):
    """Base of every policy model: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, validate_by_name=True
    )


def _one_or_many(value: object) -> object:
    """Let a list-valued key take a single value: `channels: email`."""
    return [value] if isinstance(value, str | int | float) else value


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise fail(f"'{value}' is listed twice")
        seen.append(value)
    return values


def ListOf(item: Any) -> Any:
    return Annotated[list[item], BeforeValidator(_one_or_many)]


# true/false only: pydantic would otherwise read "yes", "no", "on" or 1 as booleans.
Flag = Annotated[bool, Strict()]


def _check_jurisdiction(value: object) -> object:
    if isinstance(value, str) and value in JURISDICTION_KEYS:
        return value
    if isinstance(value, str):
        try:
            get_jurisdiction(value)
        except ValueError as exc:  # knows the laws' common names: gdpr -> eu, pipl -> cn
            if "did you mean" in str(exc):
                raise fail(str(exc)) from None
    raise fail(unknown(value, "a jurisdiction", JURISDICTION_KEYS))


JurisdictionKey = Annotated[str, BeforeValidator(_check_jurisdiction)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Email = checked(_EMAIL.match, "'{value}' is not an email address (write e.g. privacy@example.com)")
Url = checked(
    re.compile(r"^https?://\S+$").match,
    "'{value}' is not a web address; write it in full, starting with https://",
)
_CATEGORY_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
CategoryKey = checked(
    _CATEGORY_KEY.match,
    "'{value}' is not a data category key: use fideslang's dotted keys, e.g. user.contact.email",
)


def _check_use(value: object) -> object:
    taxonomy = load_taxonomy()
    if isinstance(value, str) and taxonomy.is_use(value):
        return value
    raise fail(unknown(value, "a fideslang data use", sorted(taxonomy.uses)))


DataUse = Annotated[str, BeforeValidator(_check_use)]

Jurisdictions = Annotated[list[JurisdictionKey], BeforeValidator(_one_or_many)]


# --- controller -------------------------------------------------------------------------


class Contacts(Model):
    privacy_email: Email | None = Field(
        None, description="where people send privacy questions and requests"
    )
    dpo_email: Email | None = Field(
        None, description="the Data Protection Officer's email (GDPR Art. 37)"
    )
    dpo_name: str | None = None
    email: Email | None = Field(None, description="general contact email")
    unsubscribe_email: Email | None = None
    phone: str | None = None
    address: str | None = Field(None, description="postal address, one line")
    website: Url | None = None
    request_form: Url | None = Field(None, description="web form for data-subject requests")
    account_page: Url | None = Field(
        None, description="where a signed-in user can see and correct their data"
    )

    @model_validator(mode="after")
    def _reachable(self) -> Contacts:
        if not (self.privacy_email or self.email or self.address or self.request_form):
            raise fail(
                "give at least one way to reach the controller: privacy_email, email, "
                "address or request_form (GDPR Art. 13(1)(a))"
            )
        return self


class Authority(Model):
    name: str = Field(description="the supervisory authority's name")
    url: Url | None = None
    country: Country | None = None


_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


def _check_slug(value: object) -> object:
    if value is None or (isinstance(value, str) and _SLUG.match(value)):
        return value
    raise fail(f"{describe(value)} is not a controller id: use lowercase letters, digits and '-'")


class Controller(Model):
    id: Annotated[str | None, BeforeValidator(_check_slug)] = Field(
        None, description="a short stable id for the store (default: from the name)"
    )
    name: str = Field(description="the controller's legal name, e.g. Sera Leads OÜ")
    trade_name: str | None = Field(None, description="the name people know, e.g. Serai")
    registration: str | None = Field(None, description="commercial register code")
    country: Country = Field(description="country of establishment (ISO 3166-1 alpha-2)")
    roles: Annotated[list[choice(Role, "a role")], BeforeValidator(_one_or_many)] = Field(
        description="controller, processor, or both (a SaaS processing its customers' content)"
    )
    contacts: Contacts = Field(description="privacy_email, dpo_email, address, ...")
    supervisory_authority: Authority | None = None
    representative: str | None = Field(None, description="EU/UK representative (GDPR Art. 27)")

    @field_validator("roles", mode="before")
    @classmethod
    def _both(cls, value: object) -> object:
        if value == "both" or value == ["both"]:
            return ["controller", "processor"]
        return value

    @field_validator("roles")
    @classmethod
    def _roles_unique(cls, value: list[Role]) -> list[Role]:
        if not value:
            raise fail("name at least one role: controller, processor or both")
        return _unique(value)

    @property
    def key(self) -> str:
        return self.id or slugify(self.trade_name or self.name)


def slugify(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:100] or "controller"


# --- subjects ---------------------------------------------------------------------------


class SubjectKind(Model):
    description: str | None = None
    fides: str | None = Field(None, description="the fideslang data subject key, e.g. customer")
    role: choice(Role, "a role") = Field(
        Role.controller, description="our role for this person's data: controller or processor"
    )
    min_age: int | None = Field(None, ge=0, le=25, description="minimum age to use the service")
    min_age_by_jurisdiction: dict[JurisdictionKey, Annotated[int, Field(ge=0, le=25)]] = {}
    below_min_age: Annotated[
        list[choice(BelowMinAge, "a rule for children")], BeforeValidator(_one_or_many)
    ] = Field([], description="refuse, parental_consent and/or delete_on_discovery")

    @field_validator("fides")
    @classmethod
    def _fides_subject(cls, value: str | None) -> str | None:
        subjects = load_taxonomy().subjects
        if value is not None and value not in subjects:
            raise fail(unknown(value, "a fideslang data subject", sorted(subjects)))
        return value

    @model_validator(mode="after")
    def _age_rules(self) -> SubjectKind:
        rules = set(self.below_min_age)
        if {BelowMinAge.refuse, BelowMinAge.parental_consent} <= rules:
            raise fail(
                "below_min_age cannot both refuse children and accept them with parental "
                "consent; choose one (delete_on_discovery may go with either)"
            )
        has_age = self.min_age is not None or self.min_age_by_jurisdiction
        if rules and not has_age:
            raise fail("below_min_age needs min_age: say the age below which it applies")
        if has_age and not rules:
            raise fail(
                "min_age needs below_min_age: say what happens below it "
                "(refuse, parental_consent, delete_on_discovery)"
            )
        return self


# --- categories -------------------------------------------------------------------------

_CCPA_LETTER = re.compile(r"^[A-K]$")


def _check_special(value: object) -> object:
    names = gdpr_special_categories()
    if value is None or value in names:
        return value
    raise fail(unknown(value, "a GDPR special category", names))


class CustomCategory(Model):
    parent: CategoryKey = Field(
        description="the fideslang category it refines, e.g. user.job_title"
    )
    name: str | None = None
    description: str | None = None
    ccpa: (
        Annotated[
            list[checked(_CCPA_LETTER.match, "'{value}' is not a CCPA category letter (A to K)")],
            BeforeValidator(_one_or_many),
        ]
        | None
    ) = Field(None, description="CCPA categories A-K, when not inherited from the parent")
    sensitive: Flag | None = Field(None, description="CCPA sensitive personal information")
    special: Annotated[str | None, BeforeValidator(_check_special)] = Field(
        None, description="GDPR Art. 9/10 special category it belongs to, e.g. health"
    )


# --- purposes ---------------------------------------------------------------------------


class ConsentSpec(Model):
    via: Annotated[
        list[choice(ConsentMethod, "a way to collect consent")], BeforeValidator(_one_or_many)
    ] = Field(description="how consent is collected: form, checkbox, banner, email_link, ...")
    expires: Duration | None = Field(
        None, description="consent lapses after this long, e.g. 1 year"
    )
    separate: Flag = Field(
        False, description="a separate consent just for this (PIPL Art. 14, 29, 39)"
    )
    renew_on_material_change: Flag = True
    keep_ip: Flag = Field(False, description="keep the subject's IP address as evidence of consent")

    @field_validator("via")
    @classmethod
    def _some(cls, value: list[ConsentMethod]) -> list[ConsentMethod]:
        if not value:
            raise fail("name at least one way consent is collected (form, checkbox, banner, ...)")
        return _unique(value)


class AutomatedDecision(Model):
    significant: Flag = Field(
        True, description="produces legal or similarly significant effects (GDPR Art. 22)"
    )
    logic: str | None = Field(None, description="meaningful information about the logic involved")
    human_review: Flag = True


class RetentionRule(Model):
    """A retention rule; under `retention:` it has a name, under a purpose it is inline."""

    description: str | None = None
    categories: ListOf(CategoryKey) = []
    purposes: ListOf(Name) = []
    subjects: ListOf(Name) = []
    keep: Duration | None = Field(None, description="how long, e.g. 30 days, 3 years, P10Y")
    criteria: str | None = Field(
        None, description="when no fixed period: the criteria that decide it (GDPR Art. 13(2)(a))"
    )
    from_: str = Field(
        "collected",
        alias="from",
        description="counted from: collected, last_activity, contract_end, account_closed, "
        "or an event declared under events",
    )
    then: choice(Then, "what happens at the end of retention") = Then.delete
    exceptions: ListOf(choice(HoldReason, "a retention exception")) = Field(
        [], description="what suspends the rule: legal_hold, dispute, legal_claim, ..."
    )
    law: str | None = Field(None, description="the law that sets this period, cited")

    @model_validator(mode="after")
    def _period(self) -> RetentionRule:
        if self.keep is None and not self.criteria:
            raise fail("say how long: keep (e.g. '3 years') or, without a fixed period, criteria")
        return self


class Purpose(Model):
    name: str | None = None
    description: str | None = None
    use: DataUse = Field(description="the fideslang data use, e.g. marketing.communications.email")
    basis: choice(Basis, "a lawful basis") = Field(
        description="consent, contract, legal_obligation, vital_interests, public_interest "
        "or legitimate_interests"
    )
    basis_by_jurisdiction: dict[JurisdictionKey, choice(Basis, "a lawful basis")] = Field(
        {}, description="a different basis in some jurisdictions, e.g. {eu: consent}"
    )
    legitimate_interest: str | None = Field(
        None, description="the interest pursued, when the basis is legitimate_interests"
    )
    role: choice(Role, "a role") = Role.controller
    categories: ListOf(CategoryKey) = Field(description="the data categories this purpose uses")
    subjects: ListOf(Name) = Field([], description="subject kinds it concerns (default: all)")
    sources: ListOf(choice(Source, "a data source")) = []
    required: Flag = Field(False, description="providing the data is mandatory for the service")
    channels: ListOf(choice(Channel, "a marketing channel")) = []
    lists: ListOf(Name) = Field([], description="marketing lists (declared under marketing.lists)")
    consent: ConsentSpec | None = Field(
        None, description="how consent is collected, when it is a basis"
    )
    automated_decision: AutomatedDecision | Flag = False
    sale: Flag = Field(False, description="a sale of personal information under CCPA")
    share: Flag = Field(
        False, description="sharing for cross-context behavioural advertising (CCPA)"
    )
    targeted_advertising: Flag = False
    recipients: ListOf(Name) = []
    cookies: ListOf(Name) = Field([], description="cookie categories this purpose relies on")
    retention: (
        Annotated[
            Annotated[Name, Tag("<rule name>")] | Annotated[RetentionRule, Tag("<inline rule>")],
            Discriminator(lambda v: "<rule name>" if isinstance(v, str) else "<inline rule>"),
        ]
        | None
    ) = Field(None, description="a rule name from retention, or a rule written inline")

    @field_validator("categories")
    @classmethod
    def _some_categories(cls, value: list[str]) -> list[str]:
        if not value:
            raise fail("name the data categories this purpose uses")
        return _unique(value)

    @model_validator(mode="after")
    def _coherent(self) -> Purpose:
        if self.channels and not self.use.startswith("marketing"):
            raise fail(f"channels are for marketing purposes; this purpose's use is '{self.use}'")
        return self

    def bases(self) -> set[Basis]:
        return {self.basis, *self.basis_by_jurisdiction.values()}

    def basis_in(self, jurisdiction: str) -> Basis:
        return self.basis_by_jurisdiction.get(jurisdiction, self.basis)

    @property
    def automated(self) -> AutomatedDecision | None:
        if self.automated_decision is True:
            return AutomatedDecision()
        return self.automated_decision or None


# --- recipients and transfers -----------------------------------------------------------


class Recipient(Model):
    name: str | None = None
    description: str | None = None
    role: choice(RecipientRole, "a recipient role") = Field(
        description="processor, affiliate, partner, authority, acquirer, advisor, controller or user"
    )
    country: Annotated[list[CountryOrAnywhere], BeforeValidator(_one_or_many)] = Field(
        description="where the recipient processes the data (ISO code, a list, or '*' for anywhere)"
    )
    safeguards: ListOf(choice(Safeguard, "a transfer safeguard")) = []
    purposes: ListOf(Name) = Field(
        [], description="purposes it receives data for (default: those naming it)"
    )
    categories: ListOf(CategoryKey) = Field(
        [], description="categories it may receive (default: its purposes')"
    )
    sale: Flag = False
    share: Flag = False
    essential: Flag = Field(
        False, description="the service cannot work without it (restricting it stops the service)"
    )
    privacy_policy: Url | None = None

    @field_validator("country")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        if not value:
            raise fail("give the recipient's country (or '*' when it may be anywhere)")
        return _unique(value)


class TransferRule(Model):
    require: ListOf(choice(Safeguard, "a transfer safeguard")) = Field(
        [], description="needed for every transfer out, e.g. separate_consent (PIPL Art. 39)"
    )
    accept: ListOf(choice(Safeguard, "a transfer safeguard")) = Field(
        [], description="any one of these suffices, e.g. [adequacy, scc, bcr]"
    )
    deidentify: Flag = Field(False, description="de-identify data before it leaves")


class Transfers(Model):
    storage: ListOf(Country) = Field([], description="countries where the data is stored")
    rules: dict[JurisdictionKey, TransferRule] = Field(
        {}, description="per jurisdiction, what a transfer out of it needs"
    )


# --- retention --------------------------------------------------------------------------

BUILTIN_ANCHORS = ("collected", "last_activity", "contract_end", "account_closed")


# --- requests ---------------------------------------------------------------------------


class Deadlines(Model):
    default: Duration | None = Field(None, description="the answer deadline for every request")
    by_kind: dict[choice(RequestKind, "a request kind"), Duration] = {}
    by_jurisdiction: dict[JurisdictionKey, Duration] = {}
    extension: Duration | None = Field(
        None, description="how much longer, when complex, with notice"
    )
    calendars: dict[JurisdictionKey, Country] = Field(
        {}, description="the holiday calendar for business days per jurisdiction, e.g. {eu: EE}"
    )


class RepeatLimit(Model):
    count: int = Field(ge=1, description="requests of one kind allowed...")
    per: Duration = Field(description="...within this period, e.g. 12 months")


class FeeRule(Model):
    default: choice(Fee, "a fee rule") = Fee.free
    when_excessive: choice(Fee, "a fee rule") = Fee.free


class Requests(Model):
    kinds: ListOf(choice(RequestKind, "a request kind")) = Field(
        description="the requests offered: access, erasure, rectification, ..."
    )
    verification: ListOf(choice(Verification, "a verification method")) = Field(
        description="how identity is verified: email_code, phone_code, signed_in, ..."
    )
    deadline: Deadlines = Deadlines()
    approval: ListOf(choice(RequestKind, "a request kind")) = Field(
        [], description="kinds a person must approve before they run"
    )
    fee: FeeRule = FeeRule()
    repeat_limit: RepeatLimit | None = None
    exceptions: ListOf(choice(RequestException, "a ground for refusal")) = []
    authorised_agents: Flag = True
    contact: Email | None = Field(
        None, description="where requests are sent (default: privacy_email)"
    )

    @field_validator("kinds", "verification")
    @classmethod
    def _nonempty_unique(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise fail("name at least one")
        return _unique(value)


# --- cookies, signals, marketing --------------------------------------------------------


class CookieCategory(Model):
    name: str | None = None
    description: str | None = None
    optional: Flag = Field(description="false only for strictly necessary cookies")
    purposes: ListOf(Name) = []
    third_party: Flag = False
    lifetime: Duration | None = None


class Signals(Model):
    gpc: choice(SignalHandling, "honor or ignore") = Field(
        SignalHandling.honor, description="Global Privacy Control (Sec-GPC: 1)"
    )
    dnt: choice(SignalHandling, "honor or ignore") = Field(
        SignalHandling.ignore, description="Do Not Track (DNT: 1)"
    )


class MarketingList(Model):
    name: str | None = None
    description: str | None = None
    purpose: Name = Field(description="the marketing purpose this list serves")
    channels: ListOf(choice(Channel, "a marketing channel")) = []


class Unsubscribe(Model):
    link: Flag = True
    one_click: Flag = Field(True, description="RFC 8058 List-Unsubscribe-Post")
    email: Email | None = None
    all_lists: Flag = Field(True, description="people may leave every list at once")


class Marketing(Model):
    lists: dict[Name, MarketingList] = {}
    transactional: ListOf(Name) = Field(
        [], description="messages that cannot be opted out of, e.g. purchase_notices"
    )
    unsubscribe: Unsubscribe = Unsubscribe()
    limit_ad_tracking: Flag = Field(False, description="people may opt out of targeted ads")


# --- security, breaches, changes --------------------------------------------------------


class Security(Model):
    measures: ListOf(choice(SecurityMeasure, "a security measure")) = []
    certifications: ListOf(str) = []


class Breaches(Model):
    notify_authority_within: Duration | None = None
    notify_subjects: Flag = True
    notify_subjects_within: Duration | None = None
    channels: ListOf(choice(BreachChannel, "a notification channel")) = []


class Changes(Model):
    notify: ListOf(choice(ChangeNotice, "a way to announce changes")) = []
    material_requires_consent: Flag = False
    advance_notice: Duration | None = None


class Sale(Model):
    sells: Flag = Field(False, description="whether any personal information is sold (CCPA)")
    shares: Flag = Field(False, description="whether any is shared for cross-context ads (CCPA)")


# --- the policy -------------------------------------------------------------------------


def _check_version(value: object) -> object:
    if value != LANGUAGE_VERSION:
        raise fail(
            f"this lawful reads policy language version {LANGUAGE_VERSION}; write `lawful: "
            f"{LANGUAGE_VERSION}` (got {describe(value)})"
        )
    return value


def _check_label(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise fail(f"write the version label as text: '{value}' (in quotes)")
    return value


class Policy(Model):
    lawful: Annotated[int, BeforeValidator(_check_version)] = Field(
        description=f"the policy language version: {LANGUAGE_VERSION}"
    )
    version: Annotated[str | None, BeforeValidator(_check_label)] = Field(
        None, description="the policy's own version label, e.g. '2025-02'"
    )
    effective: dt.date | None = Field(None, description="effective date, e.g. 2025-02-19")
    languages: ListOf(str) = ["en"]
    controller: Controller = Field(description="who is responsible: name, country, roles, contacts")
    jurisdictions: Jurisdictions = Field(
        description="the laws served: eu, uk, us-ca, cn, br, other"
    )
    subjects: dict[Name, SubjectKind] = Field(description="kinds of people, e.g. customer, visitor")
    categories: dict[CategoryKey, CustomCategory] = Field(
        {}, description="custom data categories, each refining a fideslang category"
    )
    events: dict[Name, str] = Field(
        {}, description="named events a retention period may count from, with what they mean"
    )
    purposes: dict[Name, Purpose] = Field(description="why data is used, each with its basis")
    recipients: dict[Name, Recipient] = {}
    transfers: Transfers = Transfers()
    retention: dict[Name, RetentionRule] = {}
    requests: Requests = Field(description="the rights offered, verification and deadlines")
    cookies: dict[Name, CookieCategory] = {}
    signals: Signals = Signals()
    marketing: Marketing = Marketing()
    sale: Sale = Sale()
    security: Security = Security()
    breaches: Breaches = Breaches()
    changes: Changes = Changes()

    @field_validator("jurisdictions")
    @classmethod
    def _some_jurisdictions(cls, value: list[str]) -> list[str]:
        if not value:
            raise fail("name at least one jurisdiction (use `other` when no specific law applies)")
        return _unique(value)

    @field_validator("purposes", "subjects")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise fail("declare at least one")
        return value

    @property
    def key(self) -> str:
        return self.controller.key

    def taxonomy(self) -> Taxonomy:
        """fideslang's taxonomy with this policy's custom categories."""
        return load_taxonomy().with_categories(
            TaxonomyEntry(key=k, name=c.name or k, description=c.description or "", parent=c.parent)
            for k, c in self.categories.items()
        )

    def legal_categories(self, key: str) -> LegalCategories:
        """CCPA letters, CCPA sensitivity and GDPR special category of a data category.

        Inherited through the parents; a custom category's own `ccpa`, `sensitive` and
        `special` override what it inherits (the nearest declaration wins).
        """
        taxonomy = self.taxonomy()
        found = legal_categories(key, taxonomy)
        ccpa, sensitive, special = found.ccpa, found.ccpa_sensitive, found.gdpr_special
        for k in reversed([key, *taxonomy.category_ancestors(key)]):
            custom = self.categories.get(k)
            if custom is None:
                continue
            if custom.ccpa is not None:
                ccpa = frozenset(custom.ccpa)
            if custom.sensitive is not None:
                sensitive = custom.sensitive
            if custom.special is not None:
                special = gdpr_special_categories()[custom.special]
        return LegalCategories(ccpa=ccpa, ccpa_sensitive=sensitive, gdpr_special=special)

    def retention_rules(self) -> dict[str, RetentionRule]:
        """Named rules plus the rules written inline under purposes (named `purpose:<name>`)."""
        rules = dict(self.retention)
        for name, purpose in self.purposes.items():
            if isinstance(purpose.retention, RetentionRule):
                rule = purpose.retention
                if not rule.purposes:
                    rule = rule.model_copy(update={"purposes": [name]})
                rules[f"purpose:{name}"] = rule
        return rules

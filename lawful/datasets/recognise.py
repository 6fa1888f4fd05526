"""Recognise personal data in a live schema: from column and table names, and sampled values.

`lawful scan` asks two things of every column: what data category it holds (a fideslang
key), and whether it can find a person (an email or phone identity). Names give most of
the answer (`customer_email`, `BillingPostalCode`, `ip`); a sample of values confirms it,
overrules a name the values contradict, and finds what names hide (emails in a column
called `login`, card numbers, IP addresses). Only conclusions leave this module: never a
sampled value.

The table-level words decide the context: a `city` column is an address part in
`addresses` but the name of the row in a `city` lookup table; a bare `name` is a person's
in `customers` or `agents`, a product's in `products`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# --- words ---------------------------------------------------------------------------------


def words(name: str) -> list[str]:
    """A table or column name as lower-case words: `BillingPostalCode` → billing, postal, code."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def snake(name: str) -> str:
    return "_".join(words(name))


def singular(word: str) -> str:
    """customers → customer, addresses → address, categories → category (good enough)."""
    irregular = {"people": "person", "children": "child", "staff": "staff", "data": "data"}
    if word in irregular:
        return irregular[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes", "uses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 2:
        return word[:-1]
    return word


def table_words(name: str) -> list[str]:
    return [singular(w) for w in words(name)]


# Tables whose rows are people who can ask for their data.
CUSTOMER_WORDS = frozenset(
    [
        "customer",
        "client",
        "user",
        "member",
        "account",
        "person",
        "people",
        "patient",
        "student",
        "subscriber",
        "buyer",
        "guest",
        "contact",
        "profile",
        "player",
        "participant",
        "applicant",
        "candidate",
        "visitor",
        "shopper",
        "resident",
        "citizen",
        "donor",
        "lead",
        "learner",
        "traveller",
        "traveler",
        "passenger",
        "tenant",
    ]
)
STAFF_WORDS = frozenset(
    [
        "staff",
        "employee",
        "agent",
        "admin",
        "administrator",
        "operator",
        "worker",
        "personnel",
        "salesperson",
        "manager",
        "moderator",
        "clerk",
    ]
)
# Tables of things and lookups: never erased with a person, unless they hold personal data.
LOOKUP_WORDS = frozenset(
    [
        "product",
        "category",
        "tag",
        "country",
        "city",
        "state",
        "region",
        "territory",
        "province",
        "currency",
        "language",
        "locale",
        "timezone",
        "genre",
        "type",
        "status",
        "kind",
        "film",
        "movie",
        "track",
        "album",
        "playlist",
        "inventory",
        "store",
        "shop",
        "warehouse",
        "shipper",
        "supplier",
        "vendor",
        "carrier",
        "setting",
        "config",
        "configuration",
        "option",
        "permission",
        "role",
        "migration",
        "brand",
        "manufacturer",
        "department",
        "zone",
        "demographic",
        "catalog",
        "catalogue",
        "sku",
        "unit",
        "plan",
        "feature",
    ]
)
# Tables of transactions: their amounts and dates are the person's purchase history.
TRANSACTION_WORDS = frozenset(
    [
        "order",
        "invoice",
        "payment",
        "rental",
        "purchase",
        "transaction",
        "sale",
        "booking",
        "reservation",
        "cart",
        "checkout",
        "refund",
        "shipment",
        "charge",
        "receipt",
        "tax",
        "bill",
        "billing",
    ]
)
# Tables whose free text is published.
PUBLIC_WORDS = frozenset(
    ["review", "post", "comment", "forum", "story", "answer", "question", "public"]
)


def is_customer_like(table: str) -> bool:
    return bool(set(table_words(table)[-1:]) & CUSTOMER_WORDS)


def is_staff_like(table: str) -> bool:
    return bool(set(table_words(table)) & STAFF_WORDS)


def is_lookup_named(table: str) -> bool:
    tw = table_words(table)
    return bool(tw) and tw[-1] in LOOKUP_WORDS


# --- values --------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d(][\d\s().\-/]{4,}\d$")
_E164 = re.compile(r"^\+\d[\d\s().\-]{6,}\d$")
_CARD = re.compile(r"^\d[\d \-]{11,22}\d$")
_PERSON = re.compile(r"^[A-Z][a-zà-ÿ'’\-]+(?: [A-Z][a-zà-ÿ'’.\-]*){1,3}$")
_STREET = re.compile(
    r"^\d+[A-Za-z]?,?\s+[A-Za-z]\D{2,}$|"
    r"\b(?:st|str|street|ave|avenue|rd|road|blvd|lane|ln|way|drive|dr|platz|weg|strasse|straße|"
    r"rue|via|calle|avda|plaza)\b",
    re.IGNORECASE,
)


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def _luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


VALUE_TESTS = {
    "email": lambda s: bool(_EMAIL.match(s)),
    "phone": lambda s: bool(_PHONE.match(s)) and 6 <= _digits(s) <= 15,
    "e164": lambda s: bool(_E164.match(s)) and 8 <= _digits(s) <= 15,
    "ip": _is_ip,
    "card": lambda s: bool(_CARD.match(s)) and _luhn(s),
    "person": lambda s: bool(_PERSON.match(s)),
    "street": lambda s: bool(_STREET.search(s)) and any(c.isalpha() for c in s),
    "lower": lambda s: s == s.lower(),
}


@dataclass(frozen=True)
class Values:
    """What the sampled values of one column look like: shares, never the values."""

    count: int  # non-null values sampled
    shares: dict[str, float]  # test name → share of the text values passing it
    texts: int  # how many were text
    birth_like: bool  # dates all 12 to 110 years ago, spread over a decade or more
    distinct: float  # distinct / count (1.0 when nothing was sampled)

    def share(self, test: str) -> float:
        return self.shares.get(test, 0.0)

    def agree(self, test: str) -> bool | None:
        """True when most values pass `test`, False when few do, None when too few to say."""
        if self.texts < 3:
            return None
        share = self.share(test)
        if share >= 0.6:
            return True
        return False if share < 0.3 else None

    def mostly(self, test: str) -> bool:
        return self.texts >= 3 and self.share(test) >= 0.8


NO_VALUES = Values(count=0, shares={}, texts=0, birth_like=False, distinct=1.0)


def summarise(values: Sequence[Any], today: dt.date | None = None) -> Values:
    """The shape of a column's sampled values (the values themselves are dropped here)."""
    present = [v for v in values if v is not None]
    if not present:
        return NO_VALUES
    texts = [v.strip() for v in present if isinstance(v, str) and v.strip()]
    shares = {}
    if texts:
        for name, test in VALUE_TESTS.items():
            shares[name] = sum(1 for t in texts if test(t)) / len(texts)
    try:
        distinct = len(set(present)) / len(present)
    except TypeError:  # unhashable values (arrays, JSON)
        distinct = 1.0
    return Values(
        count=len(present),
        shares=shares,
        texts=len(texts),
        birth_like=_birth_like(present, today or dt.date.today()),
        distinct=distinct,
    )


def _birth_like(values: list[Any], today: dt.date) -> bool:
    dates = [v.date() if isinstance(v, dt.datetime) else v for v in values]
    dates = [d for d in dates if isinstance(d, dt.date)]
    if len(dates) < 5 or len(dates) < len(values):
        return False
    young, old = today - dt.timedelta(days=12 * 365), today - dt.timedelta(days=110 * 366)
    if not all(old <= d <= young for d in dates):
        return False
    return (max(dates) - min(dates)).days >= 3650


# --- columns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Guess:
    """What a column holds: a category (None: not recognised), how it was found, an identity."""

    category: str | None
    how: str = ""  # "name", "values", "name and values"
    identity: str | None = None  # "email" or "phone": the column can find a person

    @property
    def personal(self) -> bool:
        return self.category is not None and not self.category.startswith("system")


UNKNOWN = Guess(None)

# Categories that make a table hold personal data on their own (a table with only
# amounts and dates holds personal data only when it belongs to a person).
_INTRINSIC = (
    "user.contact",
    "user.name",
    "user.demographic",
    "user.device",
    "user.financial",
    "user.government_id",
    "user.authorization",
    "user.account",
    "user.location",
)


def intrinsic(category: str | None) -> bool:
    return category is not None and category.startswith(_INTRINSIC)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# Name rules on the snake_case name, in order; (pattern, category, families, kind).
# kind: "" plain; "address" needs an address context; "person" needs a person's table.
_NAME_RULES: list[tuple[re.Pattern[str], str, tuple[str, ...], str]] = [
    (
        _rx(r"(^|_)ip(_addr(ess)?)?(_|$)|ipaddr|remote_addr|client_ip|last_ip"),
        "user.device.ip_address",
        ("text",),
        "",
    ),
    (_rx(r"(^|_)mac_addr"), "user.device.device_id", ("text",), ""),
    (_rx(r"e_?mail"), "user.contact.email", ("text",), ""),
    (_rx(r"(^|_)fax(_|$)"), "user.contact.fax_number", ("text",), ""),
    (
        _rx(r"phone|mobile|(^|_)cell(_|$)|(^|_)tel(_|$)|telephone|msisdn"),
        "user.contact.phone_number",
        ("text", "number"),
        "",
    ),
    (
        _rx(r"pass(word|wd)?(_|$)|(^|_)pwd(_|$)|password"),
        "user.authorization.password",
        ("text", "bytes"),
        "",
    ),
    (
        _rx(r"(^|_)(api_key|secret|otp|totp|auth_token|access_token|refresh_token)(_|$)"),
        "user.authorization.credentials",
        ("text", "bytes"),
        "",
    ),
    (
        _rx(r"^(user_?name|login|login_name|handle|screen_name)$"),
        "user.account.username",
        ("text",),
        "",
    ),
    (
        _rx(r"birth|(^|_)dob(_|$)|(^|_)born(_|$)|bday"),
        "user.demographic.date_of_birth",
        ("time", "text"),
        "",
    ),
    (_rx(r"(^|_)(gender|sex)(_|$)"), "user.demographic.gender", ("text", "number"), ""),
    (_rx(r"(^|_)age(_|$)"), "user.demographic.age_range", ("number", "text"), ""),
    (
        _rx(r"(^|_)(first|given|fore)_?name(_|$)|^first_?name$|^forename$"),
        "user.name.first",
        ("text",),
        "",
    ),
    (_rx(r"(^|_)(last|family|sur)_?name(_|$)|^surname$"), "user.name.last", ("text",), ""),
    (
        _rx(
            r"(^|_)(middle|maiden|full|display|contact|nick|legal|real|person|customer|client|recipient|receiver|sender|holder|cardholder|author|buyer|billing|shipping|ship|member|owner)_?name(_|$)|^fullname$|^nickname$|courtesy|salutation|honorific"
        ),
        "user.name",
        ("text",),
        "",
    ),
    (
        _rx(
            r"(^|_)(ssn|social_security|national_id|nin|passport|tax_id|taxid|driver_?s?_licen[cs]e|id_card)(_|$)"
        ),
        "user.government_id",
        ("text", "number"),
        "",
    ),
    (
        _rx(
            r"(^|_)(card_?number|cc_?number|ccn|pan|card_last_?4|last_?4|last_four|cc_last_?4|credit_card)(_|$)|^card_last4$"
        ),
        "user.financial.credit_card",
        ("text", "number"),
        "",
    ),
    (
        _rx(r"(^|_)(iban|bic|swift|account_number|bank_account|routing_number|sort_code)(_|$)"),
        "user.financial.bank_account",
        ("text", "number"),
        "",
    ),
    (
        _rx(r"(^|_)(lat|lng|lon|latitude|longitude|geo|geolocation|coordinates|geom|geog)(_|$)"),
        "user.location.precise",
        ("number", "text", "other"),
        "",
    ),
    (_rx(r"user_?agent|(^|_)browser(_|$)"), "user.device", ("text",), ""),
    (
        _rx(r"(^|_)(device_id|udid|imei|idfa|advertising_id)(_|$)"),
        "user.device.device_id",
        ("text",),
        "",
    ),
    (
        _rx(r"(^|_)(cookie|cookie_id|session_id|visitor_id|anonymous_id|tracking_id)(_|$)"),
        "user.device.cookie_id",
        ("text",),
        "",
    ),
    # Address parts: streets always; cities, states, postcodes and countries next to others.
    (
        _rx(
            r"(^|_)(address|addr|street|address_line|line|house|house_number|building|apartment)(_|$)|address\d|^line\d$"
        ),
        "user.contact.address.street",
        ("text",),
        "street",
    ),
    (
        _rx(r"(^|_)(postal_?code|post_?code|zip|zip_?code|postcode|plz)(_|$)"),
        "user.contact.address.postal_code",
        ("text", "number"),
        "address",
    ),
    (_rx(r"(^|_)(city|town|locality)(_|$)"), "user.contact.address.city", ("text",), "address"),
    (
        _rx(r"(^|_)(state|province|county|region|prefecture)(_|$)"),
        "user.contact.address.state",
        ("text",),
        "address",
    ),
    (
        _rx(r"(^|_)(country|country_code)(_|$)"),
        "user.contact.address.country",
        ("text",),
        "address",
    ),
    (
        _rx(r"(^|_)(district|suburb|neighbou?rhood)(_|$)"),
        "user.contact.address",
        ("text",),
        "address",
    ),
    # In a person's own table only.
    (_rx(r"^name$"), "user.name", ("text",), "person"),
    (
        _rx(r"(^|_)(title|job_title|position|job|occupation)(_|$)"),
        "user.job_title",
        ("text",),
        "person",
    ),
    (
        _rx(r"(^|_)(company|company_name|organi[sz]ation|employer|organi[sz]ation_name)(_|$)"),
        "user.contact.organization",
        ("text",),
        "person",
    ),
    (_rx(r"(^|_)(language|locale|lang)(_|$)"), "user.demographic.language", ("text",), "person"),
    (
        _rx(r"(^|_)(url|website|homepage|web|blog|twitter|linkedin|facebook)(_|$)"),
        "user.contact.url",
        ("text",),
        "person",
    ),
    (
        _rx(r"(^|_)(photo|picture|avatar|image|portrait)(_|$)"),
        "user.content.self_image",
        ("bytes", "text"),
        "person",
    ),
    (_rx(r"(^|_)(salary|income|wage)(_|$)"), "user.financial", ("number",), "person"),
    (_rx(r"(^|_)(bio|about|biography)(_|$)"), "user.demographic.profile", ("text",), "person"),
]

_ADDRESS_PART = _rx(
    r"(^|_)(address|addr|street|city|town|state|province|county|region|postal_?code|post_?code|"
    r"zip|zip_?code|postcode|country|district|suburb)(_|$)|address\d"
)
_FREE_TEXT = _rx(
    r"(^|_)(body|message|comment|comments|content|text|note|notes|feedback|review|subject|"
    r"remark|remarks|reason|question|answer|reply)(_|$)"
)
_MONEY = _rx(
    r"(^|_)(total|amount|price|unit_price|cost|quantity|qty|vat|tax|discount|freight|subtotal|"
    r"fee|balance|charge|paid|refund)(_|$)|_amount$"
)
_AUDIT = _rx(
    r"(^|_)(created?|creation|updated|modified|inserted|deleted|last_update|last_updated|timestamp|version|"
    r"row_version|etag|sync)(_|$)|_(at|on)$|^(at|ts|lock_version)$"
)
_STATUS = _rx(
    r"(^|_)(status|state|type|kind|flag|active|enabled|disabled|deleted|visible|rating|score|"
    r"rank|position|sort|priority|count)(_|$)|^(is|has|can)_"
)
_PAYMENT = _rx(r"(^|_)(method|payment_method|payment_type|card_brand|card_type|brand)(_|$)")


def address_context(table: str, columns: Sequence[str]) -> bool:
    """Whether a table's city, state and country columns are a person's address parts."""
    if is_lookup_named(table):
        return False
    parts = [c for c in columns if _ADDRESS_PART.search(snake(c)) and words(c)[-1:] != ["id"]]
    streets = [
        c for c in parts if re.search(r"(^|_)(address|addr|street)(_|$)|address\d", snake(c))
    ]
    return len(parts) >= 2 or bool(streets)


def person_table(table: str, columns: Sequence[str]) -> bool:
    """Whether a table's rows are people: its name says so, or it has their names."""
    if is_customer_like(table) or is_staff_like(table):
        return True
    names = {snake(c) for c in columns}
    return any(
        re.search(r"(^|_)(first|last|given|family|full|contact|display|sur)_?name$|^surname$", n)
        for n in names
    )


def family(python_type: type | None) -> str:
    """text, number, time, bool, bytes or other (matching lawful.datasets.graph's families)."""
    if python_type is None:
        return "other"
    if python_type is bool:
        return "bool"
    if issubclass(python_type, int | float) or python_type.__name__ == "Decimal":
        return "number"
    if issubclass(python_type, str):
        return "text"
    if issubclass(python_type, dt.datetime | dt.date | dt.time):
        return "time"
    if issubclass(python_type, bytes | bytearray | memoryview):
        return "bytes"
    return "other"


@dataclass(frozen=True)
class TableContext:
    name: str
    person: bool  # rows are people
    address: bool  # city/state/country columns are address parts
    lookup: bool  # a lookup or a thing (products, countries)


def guess_column(column: str, kind: str, values: Values, ctx: TableContext) -> Guess:
    """The category a column holds, from its name first, then its sampled values."""
    name = snake(column)
    for pattern, category, families, needs in _NAME_RULES:
        if kind not in families or not pattern.search(name):
            continue
        if needs == "person" and not ctx.person:
            continue
        if needs == "address" and not ctx.address:
            continue
        if needs == "street" and ctx.lookup:
            continue
        return _confirm(category, kind, values)
    return _by_values(kind, values, ctx)


def _confirm(category: str, kind: str, values: Values) -> Guess:
    """A name-based guess checked against the values: kept, confirmed, or dropped."""
    tests = {
        "user.contact.email": "email",
        "user.contact.phone_number": "phone",
        "user.contact.fax_number": "phone",
        "user.device.ip_address": "ip",
    }
    test = tests.get(category)
    if test is None:
        if category == "user.demographic.date_of_birth" and values.birth_like:
            return Guess(category, "name and values")
        return Guess(category, "name")
    agree = values.agree(test)
    if agree is False:
        return UNKNOWN  # the name says one thing, the values another: leave it to review
    how = "name and values" if agree else "name"
    identity = None
    if kind == "text" and category == "user.contact.email":
        identity = "email"
    elif kind == "text" and category == "user.contact.phone_number":
        identity = "phone"
    return Guess(category, how, identity)


def _by_values(kind: str, values: Values, ctx: TableContext) -> Guess:
    if kind == "time" and values.birth_like and ctx.person:
        return Guess("user.demographic.date_of_birth", "values")
    if kind != "text":
        return UNKNOWN
    if values.mostly("email"):
        return Guess("user.contact.email", "values", "email")
    if values.mostly("e164"):
        return Guess("user.contact.phone_number", "values", "phone")
    if values.mostly("ip"):
        return Guess("user.device.ip_address", "values")
    if values.mostly("card"):
        return Guess("user.financial.credit_card", "values")
    if not ctx.lookup and ctx.address and values.mostly("street"):
        return Guess("user.contact.address.street", "values")
    return UNKNOWN


def guess_context(column: str, kind: str, table: str, ctx: TableContext, values: Values) -> Guess:
    """The category of a column no rule recognised, in a table that belongs to a person."""
    name = snake(column)
    tw = set(table_words(table))
    if kind == "text" and _FREE_TEXT.search(name):
        public = bool(tw & PUBLIC_WORDS)
        return Guess("user.content.public" if public else "user.content.private", "name")
    if kind == "text" and name.endswith("name") and not ctx.lookup and values.mostly("person"):
        return Guess("user.name", "name and values")
    if _PAYMENT.search(name) and tw & {"payment", "charge", "transaction", "card"}:
        return Guess("user.payment", "name")
    if kind == "number" and re.search(r"(^|_)(salary|salaries|wage|income|bonus)(_|$)", name):
        return Guess("user.financial", "name")
    if kind == "text" and re.search(r"(^|_)(title|job_title)$", name) and tw & {"title", "job"}:
        return Guess("user.job_title", "name")
    if kind == "number" and _MONEY.search(name):
        return Guess("user.behavior.purchase_history", "name")
    if _AUDIT.search(name) and kind in ("time", "number", "other", "text"):
        if (
            kind == "time"
            and tw & TRANSACTION_WORDS
            and not re.search(r"(^|_)(created|updated|modified|last_update|inserted|deleted)", name)
        ):
            return Guess("user.behavior.purchase_history", "name")
        return Guess("system.operations", "name")
    if (_STATUS.search(name) and kind != "time") or kind == "bool":
        return Guess("system.operations", "name")
    if tw & TRANSACTION_WORDS and kind in ("time", "number", "text"):
        return Guess("user.behavior.purchase_history", "table")
    return UNKNOWN

"""Fill the sample shop database (schema.py) with deterministic, realistic data.

    python -m examples.shop.generate sqlite:///shop.db --customers 10000
    python -m examples.shop.generate postgresql://postgres@127.0.0.1:5432/test \\
        --customers 1000000 --seed 7 --heavy-rows 50000

The same seed and size give the same rows on every run and every backend (whatever the
batch size): one `random.Random(seed)` draws every customer in order, with all that
hangs off them, and the rows are written a batch of customers at a time. Customer i
(1-based) is `customer-<i>@example.com`, as in the peer-comparison shop.

Writing is set-based: binary COPY through psycopg on PostgreSQL (foreign keys and
indexes are added after the load), `executemany` of whole batches elsewhere (PyMySQL
folds it into multi-row INSERTs; SQLite runs it in-process). 100,000 customers (2.56M
rows) take about 15 s on PostgreSQL or SQLite, a million about 2.5 minutes on PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable, DropTable

from examples.shop import schema

# --- time: seconds since BASE (UTC); every timestamp falls before END -----------------
BASE = datetime(2013, 1, 1)
DAY = 86_400
END = int((datetime(2026, 1, 1) - BASE).total_seconds())
CREATED_END = int((datetime(2025, 7, 1) - BASE).total_seconds())
BIRTH_FIRST = date(1940, 1, 1).toordinal()
BIRTH_LAST = date(2007, 12, 31).toordinal()

PRODUCTS = 500
AGENTS = 25

# --- proportions ------------------------------------------------------------------------
HOUSEHOLD = 0.05  # joins the address of a recent customer: ~10% of customers share one
NO_ADDRESS = 0.03
GIFT_ADDRESS = 0.08  # an order shipped to an address seen nowhere else
TICKETS = 0.20
NEWSLETTER = 0.40
NEWSLETTER_OFFERS = 0.25  # of subscribers, also on the second list
NEWSLETTER_ONLY = 0.05  # per customer, a subscriber who never opened an account
ODD_CASE_EMAIL = 0.05  # subscribed as Customer-<i>@Example.com
REVIEWS = 0.35  # of customers with a completed order: ~30% of all customers
REFERRED = 0.03
HOUSEHOLD_WINDOW = 500  # a household forms among customers at most this far apart

FIRST_NAMES = (
    "Alice",
    "Ana",
    "Anna",
    "Ben",
    "Carla",
    "Chen",
    "Chloé",
    "Daniel",
    "David",
    "Elena",
    "Emma",
    "Eva",
    "Fatima",
    "Felix",
    "Giulia",
    "Hannah",
    "Ibrahim",
    "Isabel",
    "Jan",
    "Jonas",
    "Julia",
    "Kai",
    "Laura",
    "Leon",
    "Lucas",
    "Luca",
    "Maria",
    "Marie",
    "Mateo",
    "Mia",
    "Mohammed",
    "Noah",
    "Nora",
    "Oliver",
    "Olivia",
    "Omar",
    "Paul",
    "Pierre",
    "Priya",
    "Rosa",
    "Sara",
    "Sofia",
    "Tom",
    "Wei",
    "Yuki",
    "Zoé",
    "Łukasz",
    "Søren",
    "Ines",
    "Ravi",
)
LAST_NAMES = (
    "Andersson",
    "Bauer",
    "Becker",
    "Bernard",
    "Brown",
    "Costa",
    "Dubois",
    "Fischer",
    "García",
    "Green",
    "Hoffmann",
    "Ivanova",
    "Jansen",
    "Johnson",
    "Kowalski",
    "Lambert",
    "Li",
    "Martin",
    "Meyer",
    "Moreau",
    "Müller",
    "Nielsen",
    "Nowak",
    "O'Brien",
    "Petit",
    "Rossi",
    "Russo",
    "Santos",
    "Schmidt",
    "Schneider",
    "Silva",
    "Smith",
    "Taylor",
    "Thomas",
    "Wagner",
    "Weber",
    "Williams",
    "Wilson",
    "Wójcik",
    "Yilmaz",
    "Zhang",
    "de Vries",
    "van Dijk",
    "López",
    "Romano",
    "Ferrari",
)
STREETS = {
    "GB": ("High Street", "Station Road", "Church Lane", "Mill Road", "Park Lane"),
    "IE": ("Main Street", "Church Road", "Grafton Street"),
    "DE": ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Schulstraße"),
    "FR": ("Rue de la Paix", "Rue Victor Hugo", "Avenue des Fleurs"),
    "ES": ("Calle Mayor", "Calle del Sol", "Avenida de la Constitución"),
    "IT": ("Via Roma", "Via Garibaldi", "Corso Italia"),
    "NL": ("Kerkstraat", "Dorpsstraat", "Molenweg"),
    "SE": ("Storgatan", "Kyrkogatan", "Drottninggatan"),
    "PL": ("ul. Polna", "ul. Lipowa", "ul. Kościuszki"),
    "PT": ("Rua Augusta", "Rua do Carmo", "Avenida da Liberdade"),
    "US": ("Main Street", "Oak Avenue", "Maple Drive", "Elm Street"),
    "CA": ("Queen Street", "King Street", "Maple Avenue"),
}
# city, country, postal code pattern (# a digit, @ a letter)
CITIES = (
    ("London", "GB", "@@# #@@"),
    ("Manchester", "GB", "M## #@@"),
    ("Dublin", "IE", "D## @###"),
    ("Berlin", "DE", "1####"),
    ("Munich", "DE", "8####"),
    ("Hamburg", "DE", "2####"),
    ("Paris", "FR", "750##"),
    ("Lyon", "FR", "690##"),
    ("Madrid", "ES", "280##"),
    ("Barcelona", "ES", "080##"),
    ("Rome", "IT", "001##"),
    ("Milan", "IT", "201##"),
    ("Amsterdam", "NL", "10## @@"),
    ("Utrecht", "NL", "35## @@"),
    ("Stockholm", "SE", "1## ##"),
    ("Warsaw", "PL", "0#-###"),
    ("Lisbon", "PT", "1###-###"),
    ("New York", "US", "100##"),
    ("Austin", "US", "787##"),
    ("Toronto", "CA", "M#@ #@#"),
)


@cache
def _mobile_stem(country: str) -> tuple[int, str]:
    """The country code and the leading digits of a valid mobile number in its plan."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None, country
    return example.country_code, str(example.national_number)[:-4]


def mobile_number(country: str, last4: int, *, spaced: bool = False) -> str:
    """A valid mobile number of `country` (E.164, or spaced as people type it)."""
    code, stem = _mobile_stem(country)
    number = phonenumbers.parse(f"+{code}{stem}{last4:04d}")
    style = (
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
        if spaced
        else phonenumbers.PhoneNumberFormat.E164
    )
    return phonenumbers.format_number(number, style)


USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "ShopApp/3.2 (Android 13)",
    "ShopApp/3.2 (iOS 17.4)",
)
PRODUCT_CATEGORIES = ("books", "garden", "kitchen", "toys", "outdoor", "audio", "office")
PRODUCT_WORDS = (
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Smart",
    "Mini",
    "Pro",
    "Travel",
    "Vintage",
    "Wireless",
    "Bamboo",
    "Steel",
)
PRODUCT_NOUNS = (
    "Kettle",
    "Lamp",
    "Backpack",
    "Speaker",
    "Notebook",
    "Planter",
    "Puzzle",
    "Tent",
    "Mug",
    "Chair",
    "Headphones",
    "Blender",
)
TICKET_SUBJECTS = (
    "Where is my order #{order}?",
    "Refund for order #{order}",
    "Wrong item in order #{order}",
    "Cannot log in to my account",
    "Please update my delivery address",
    "Question about my invoice",
    "Damaged parcel",
)
CUSTOMER_LINES = (
    "Hello, I am still waiting for order #{order}. Could you check the tracking, please?",
    "The parcel arrived damaged. Photos attached. My phone is {phone} if easier.",
    "I was charged twice for order #{order}. Please refund one payment.",
    "Thanks, but it has still not arrived. I am at {street} most days.",
    "That works for me, thank you.",
    "Could you send the invoice to my address instead?",
)
AGENT_LINES = (
    "Hi {first}, thanks for getting in touch. I have opened a case with the carrier.",
    "Hi {first}, sorry about that. A replacement for order #{order} is on its way.",
    "Hi {first}, I can confirm the refund has been issued to your card.",
    "Hi {first}, I have updated the delivery address on your account.",
    "Hi {first}, is there anything else I can help with?",
)
REVIEW_LINES = (
    "Exactly as described.",
    "Good value, arrived quickly.",
    "Stopped working after two weeks.",
    "My kids love it.",
    "Would buy again.",
    None,
)
TICKET_SUBJECTS_NO_ORDER = tuple(s for s in TICKET_SUBJECTS if "{order}" not in s)
CUSTOMER_LINES_NO_ORDER = tuple(s for s in CUSTOMER_LINES if "{order}" not in s)
AGENT_LINES_NO_ORDER = tuple(s for s in AGENT_LINES if "{order}" not in s)
STATUS_RECENT = ("pending", "paid", "shipped")
METHODS = ("card",) * 7 + ("paypal",) * 2 + ("bank_transfer",)
RATINGS = (1, 2, 3, 4, 4, 5, 5, 5)
QUANTITIES = (1, 1, 1, 1, 2, 2, 3)


@dataclass(frozen=True)
class Counts:
    """Rows written per table."""

    addresses: int = 0
    customers: int = 0
    products: int = 0
    agents: int = 0
    referrals: int = 0
    orders: int = 0
    order_items: int = 0
    payments: int = 0
    tax_records: int = 0
    support_tickets: int = 0
    ticket_messages: int = 0
    newsletter_subscriptions: int = 0
    login_events: int = 0
    product_reviews: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


# --- how values travel to each backend ----------------------------------------------------


@dataclass(frozen=True)
class _Codec:
    ts: Callable[[int], Any]  # seconds since BASE → a timestamp value
    day: Callable[[int], Any]  # proleptic ordinal → a date value
    money: Callable[[int], Any]  # cents → an amount


def _cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


_AWARE_BASE = BASE.replace(tzinfo=UTC)

# SQLite: the text SQLAlchemy itself stores (so its comparisons line up), REAL amounts.
_SQLITE = _Codec(
    ts=lambda s: f"{BASE + timedelta(seconds=s)}.000000",
    day=lambda o: date.fromordinal(o).isoformat(),
    money=lambda c: c / 100,
)
# MariaDB/MySQL DATETIME holds UTC without a zone.
_MYSQL = _Codec(
    ts=lambda s: BASE + timedelta(seconds=s),
    day=lambda o: date.fromordinal(o).isoformat(),
    money=_cents_text,
)
# PostgreSQL's binary COPY, and any other dialect through SQLAlchemy: Python objects.
_OBJECTS = _Codec(
    ts=lambda s: _AWARE_BASE + timedelta(seconds=s),
    day=date.fromordinal,
    money=lambda c: Decimal(c).scaleb(-2),
)


def _pg_type(type_: sa.types.TypeEngine[Any]) -> str:
    """The PostgreSQL type a binary COPY sends for a column of this SQLAlchemy type."""
    for kind, name in (
        (sa.BigInteger, "int8"),
        (sa.SmallInteger, "int2"),
        (sa.Integer, "int4"),
        (sa.Numeric, "numeric"),
        (sa.Date, "date"),
        (sa.String, "text"),  # Text too; binary text is accepted for varchar
    ):
        if isinstance(type_, kind):
            return name
    if isinstance(type_, sa.DateTime):
        return "timestamptz" if type_.timezone else "timestamp"
    raise TypeError(f"no binary COPY type for {type_!r}")


class _Writer:
    """Writes one table's rows (tuples in column order) in the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        dialect = conn.dialect
        self.quote = dialect.identifier_preparer.quote
        self.postgres = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self.placeholder = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(
            dialect.paramstyle or ""
        )
        self.types: dict[str, list[str]] = {}
        if self.postgres:
            self.codec = _OBJECTS
        elif dialect.name == "sqlite" and self.placeholder:
            self.codec = _SQLITE
        elif dialect.name in ("mysql", "mariadb") and self.placeholder:
            self.codec = _MYSQL
        else:
            self.codec = _OBJECTS
            self.placeholder = None

    def write(self, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = [c.name for c in table.columns]
        columns = ", ".join(self.quote(n) for n in names)
        if self.postgres:
            raw = self.conn.connection.driver_connection
            assert raw is not None
            sql = f"COPY {self.quote(table.name)} ({columns}) FROM STDIN (FORMAT BINARY)"
            if table.name not in self.types:
                self.types[table.name] = [_pg_type(c.type) for c in table.columns]
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                copy.set_types(self.types[table.name])
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        elif self.placeholder:
            marks = ", ".join([self.placeholder] * len(names))
            sql = f"INSERT INTO {self.quote(table.name)} ({columns}) VALUES ({marks})"
            self.conn.exec_driver_sql(sql, list(rows))
        else:
            self.conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])


# --- the data -----------------------------------------------------------------------------


def _postal(uniform: Callable[[int, int], int], pattern: str) -> str:
    """A postal code shaped like `pattern`: # a digit, @ a capital letter."""
    return "".join(
        str(uniform(0, 9)) if ch == "#" else chr(uniform(65, 90)) if ch == "@" else ch
        for ch in pattern
    )


class _Home(NamedTuple):
    id: int
    text: str  # one line, as printed on an invoice
    street: str
    country: str  # ISO 3166-1 alpha-2, for the phone number's plan


class _Shop:
    """Draws the rows, customer by customer, into per-table buffers."""

    def __init__(self, rng: random.Random, codec: _Codec) -> None:
        self.rng = rng
        self.codec = codec
        # random.randint and random.choice cost several times more than these
        rand = rng.random
        self.rand = rand
        self.uniform: Callable[[int, int], int] = lambda a, b: a + int(rand() * (b - a + 1))
        self.pick: Callable[[Sequence[Any]], Any] = lambda seq: seq[int(rand() * len(seq))]
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in schema.TABLE_NAMES}
        self.next_id = dict.fromkeys(schema.TABLE_NAMES, 1)
        self.prices: list[int] = [0]  # cents, by product id
        self.agent_names: list[str] = [""]
        # the last HOUSEHOLD_WINDOW customers' homes and last names
        self.recent: list[tuple[_Home, str] | None] = [None] * HOUSEHOLD_WINDOW
        self.subscriber = 0
        self.first_customer = (0, 0)  # customer 1's sign-up and last login

    def take(self, table: str) -> int:
        n = self.next_id[table]
        self.next_id[table] = n + 1
        return n

    def catalogue(self) -> None:
        rng, pick, money = self.rng, self.pick, self.codec.money
        for pid in range(1, PRODUCTS + 1):
            cents = rng.randrange(199, 25_000, 50) - 4  # prices end in .95 or .45
            self.prices.append(cents)
            name = f"{pick(PRODUCT_WORDS)} {pick(PRODUCT_NOUNS)} {pid}"
            self.rows["products"].append(
                (pid, f"SKU-{pid:06d}", name, pick(PRODUCT_CATEGORIES), money(cents))
            )
        for aid in range(1, AGENTS + 1):
            name = f"{pick(FIRST_NAMES)} {pick(LAST_NAMES)}"
            self.agent_names.append(name)
            self.rows["agents"].append((aid, name, f"agent-{aid}@support.example.com"))

    def address(self) -> _Home:
        """A new address row."""
        uniform, pick = self.uniform, self.pick
        city, country, pattern = pick(CITIES)
        street = f"{uniform(1, 250)} {pick(STREETS[country])}"
        postal = _postal(uniform, pattern)
        aid = self.take("addresses")
        self.rows["addresses"].append((aid, street, city, postal, country))
        return _Home(aid, f"{street}, {postal} {city}, {country}", street, country)

    def customer(self, cid: int) -> None:
        ts, rows = self.codec.ts, self.rows
        rand, uniform, pick = self.rand, self.uniform, self.pick
        created = uniform(0, CREATED_END)
        first = pick(FIRST_NAMES)
        last = pick(LAST_NAMES)

        # address: a new one, none, or a recent customer's (a household)
        slot = cid % HOUSEHOLD_WINDOW
        home: _Home | None = None
        if cid > 1 and rand() < HOUSEHOLD:
            other = self.recent[
                (cid - uniform(1, min(cid - 1, HOUSEHOLD_WINDOW - 1))) % HOUSEHOLD_WINDOW
            ]
            if other is not None:
                home, other_last = other
                if rand() < 0.7:
                    last = other_last
        if home is None and rand() >= NO_ADDRESS:
            home = self.address()
        self.recent[slot] = None if home is None else (home, last)

        country = home.country if home is not None else pick(CITIES)[1]
        shape = rand()
        if shape < 0.70:
            phone: str | None = mobile_number(country, uniform(0, 9999))
        elif shape < 0.85:
            phone = mobile_number(country, uniform(0, 9999), spaced=True)
        else:
            phone = None
        birth = None if rand() < 0.10 else self.codec.day(uniform(BIRTH_FIRST, BIRTH_LAST))

        # logins, from one or two usual addresses and now and then elsewhere
        logins = sorted(uniform(created, END - 1) for _ in range(uniform(1, 9)))
        ips = [
            f"{uniform(1, 223)}.{uniform(0, 255)}.{uniform(0, 255)}.{uniform(1, 254)}"
            for _ in range(uniform(1, 2))
        ]
        login_rows = rows["login_events"]
        for at in logins:
            ip = (
                pick(ips)
                if rand() < 0.85
                else f"{uniform(1, 223)}.{uniform(0, 255)}.{uniform(0, 255)}.{uniform(1, 254)}"
            )
            login_rows.append((self.take("login_events"), cid, ip, pick(USER_AGENTS), ts(at)))

        if cid == 1:
            self.first_customer = (created, logins[-1])
        email = f"customer-{cid}@example.com"
        rows["customers"].append(
            (
                cid,
                email,
                phone,
                first,
                last,
                birth,
                ts(created),
                ts(logins[-1]),
                None if home is None else home.id,
            )
        )
        if cid > 1 and rand() < REFERRED:
            rows["referrals"].append((uniform(1, cid - 1), cid, ts(created)))

        placed, bought = self.orders(cid, created, home, f"{first} {last}")
        self.tickets(cid, created, first, phone, home, placed)
        self.newsletter(cid, created, email)
        if bought and rand() < REVIEWS:
            self.reviews(cid, first, last, bought)

    def orders(
        self, cid: int, created: int, home: _Home | None, name: str
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """The customer's orders: their ids, and (product id, completed at) received."""
        ts, money, rows = self.codec.ts, self.codec.money, self.rows
        rand, uniform, pick = self.rand, self.uniform, self.pick
        placed_ids: list[int] = []
        bought: list[tuple[int, int]] = []
        for placed in sorted(uniform(created, END - DAY) for _ in range(uniform(0, 6))):
            oid = self.take("orders")
            placed_ids.append(oid)
            ship = home if home is not None and rand() >= GIFT_ADDRESS else self.address()
            total = 0
            items: list[int] = []
            for _ in range(uniform(1, 4)):
                pid = uniform(1, PRODUCTS)
                while pid in items:
                    pid = uniform(1, PRODUCTS)
                items.append(pid)
            for pid in items:
                quantity = pick(QUANTITIES)
                price = self.prices[pid]
                total += quantity * price
                rows["order_items"].append((oid, pid, quantity, money(price)))
            completed = None
            if placed > END - 14 * DAY:
                status = pick(STATUS_RECENT)
            elif rand() < 0.06:
                status = "cancelled"
            else:
                status = "completed"
                completed = placed + uniform(DAY, 10 * DAY)
            rows["orders"].append(
                (
                    oid,
                    cid,
                    ship.id,
                    status,
                    money(total),
                    ts(placed),
                    None if completed is None else ts(completed),
                )
            )
            if status in ("pending", "cancelled"):
                continue
            pay = self.take("payments")
            method = pick(METHODS)
            last4 = f"{uniform(0, 9999):04d}" if method == "card" else None
            rows["payments"].append(
                (pay, oid, method, last4, money(total), ts(placed + uniform(5, 3_600)))
            )
            if completed is None:
                continue
            tax = self.take("tax_records")
            year = (BASE + timedelta(seconds=completed)).year
            rows["tax_records"].append(
                (
                    tax,
                    pay,
                    f"INV-{year}-{tax:08d}",
                    name,
                    ship.text,
                    money((total + 3) // 6),  # 20% VAT included in the price
                    ts(completed),
                )
            )
            bought.extend((pid, completed) for pid in items)
        return placed_ids, bought

    def tickets(
        self,
        cid: int,
        created: int,
        first: str,
        phone: str | None,
        home: _Home | None,
        placed: list[int],
    ) -> None:
        ts, rows = self.codec.ts, self.rows
        rand, uniform, pick = self.rand, self.uniform, self.pick
        if rand() >= TICKETS:
            return
        for _ in range(1 if rand() < 0.8 else 2):
            tid = self.take("support_tickets")
            fill = {
                "order": pick(placed) if placed else 0,
                "first": first,
                "phone": phone or "(none)",
                "street": home.street if home else "home",
            }
            opened = uniform(created, END - 30 * DAY)
            agent = uniform(1, AGENTS)
            sent = opened
            for k in range(uniform(2, 6)):
                if k % 2 == 0:
                    body = pick(CUSTOMER_LINES if placed else CUSTOMER_LINES_NO_ORDER)
                    body = body.format(**fill)
                    sender = (cid, None)
                else:
                    body = pick(AGENT_LINES if placed else AGENT_LINES_NO_ORDER)
                    body = body.format(**fill)
                    body += f"\nKind regards,\n{self.agent_names[agent]}, Customer Care"
                    sender = (None, agent)
                rows["ticket_messages"].append(
                    (self.take("ticket_messages"), tid, *sender, body, ts(sent))
                )
                sent += uniform(600, 2 * DAY)
            closed = ts(sent) if rand() < 0.85 else None
            subject = pick(TICKET_SUBJECTS if placed else TICKET_SUBJECTS_NO_ORDER)
            subject = subject.format(**fill)
            rows["support_tickets"].append((tid, cid, subject, ts(opened), closed))

    def newsletter(self, cid: int, created: int, email: str) -> None:
        ts, rows = self.codec.ts, self.rows
        rand, uniform = self.rand, self.uniform
        if rand() < NEWSLETTER:
            if rand() < ODD_CASE_EMAIL:
                email = f"Customer-{cid}@Example.com"
            lists = ("weekly", "offers") if rand() < NEWSLETTER_OFFERS else ("weekly",)
            for name in lists:
                since = uniform(max(0, created - 90 * DAY), END - DAY)
                until = ts(uniform(since, END - 1)) if rand() < 0.15 else None
                rows["newsletter_subscriptions"].append(
                    (self.take("newsletter_subscriptions"), email, name, ts(since), until)
                )
        if rand() < NEWSLETTER_ONLY:
            self.subscriber += 1
            since = uniform(0, END - DAY)
            rows["newsletter_subscriptions"].append(
                (
                    self.take("newsletter_subscriptions"),
                    f"subscriber-{self.subscriber}@example.com",
                    "weekly",
                    ts(since),
                    None,
                )
            )

    def reviews(self, cid: int, first: str, last: str, bought: list[tuple[int, int]]) -> None:
        rng, ts, rows, pick = self.rng, self.codec.ts, self.rows, self.pick
        seen: set[int] = set()
        for pid, completed in rng.sample(bought, min(len(bought), self.uniform(1, 2))):
            if pid in seen:
                continue
            seen.add(pid)
            rows["product_reviews"].append(
                (
                    self.take("product_reviews"),
                    cid,
                    pid,
                    pick(RATINGS),
                    f"{first} {last[0]}.",
                    pick(REVIEW_LINES),
                    ts(min(END - 1, completed + self.uniform(DAY, 60 * DAY))),
                )
            )

    def heavy(self, rng: random.Random, n: int) -> None:
        """`n` more login events for customer 1, between its sign-up and its last login."""
        rows = self.rows["login_events"]
        first, last = self.first_customer
        for _ in range(n):
            ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            rows.append(
                (
                    self.take("login_events"),
                    1,
                    ip,
                    rng.choice(USER_AGENTS),
                    self.codec.ts(rng.randint(first, last)),
                )
            )


# --- the database -------------------------------------------------------------------------


def _drop(conn: Connection, metadata: sa.MetaData) -> None:
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(t.name) for t in reversed(metadata.sorted_tables))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {names} CASCADE")
    elif conn.dialect.name in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {names}")
    else:
        for table in reversed(metadata.sorted_tables):
            conn.execute(DropTable(table, if_exists=True))


def _url(url: str | sa.URL) -> sa.URL:
    """`postgresql://…` and `mysql://…` → the drivers this project installs."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
    driver |= {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
    if parsed.drivername in driver:
        parsed = parsed.set(drivername=driver[parsed.drivername])
    return parsed


def generate(
    url: str | sa.URL,
    customers: int,
    *,
    seed: int = 0,
    batch: int = 10_000,
    heavy_rows: int = 0,
) -> Counts:
    """(Re)create the shop tables at `url` and fill them for `customers` customers.

    Deterministic for a given `seed` (the batch size changes nothing but memory).
    `heavy_rows` gives customer 1 that many extra login events, appended after the
    rest, so the other rows stay the same. Returns the rows written per table.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if heavy_rows < 0:
        raise ValueError("heavy_rows must not be negative")
    engine = sa.create_engine(_url(url), poolclass=sa.NullPool)
    counts = dict.fromkeys(schema.TABLE_NAMES, 0)
    try:
        with engine.connect() as conn:
            dialect = conn.dialect.name
            later_fks = dialect == "postgresql"  # validated once after the load: faster
            # a private copy: AddConstraint marks the constraints it is given
            metadata = sa.MetaData(naming_convention=schema.NAMING_CONVENTION)
            for table in schema.metadata.sorted_tables:
                table.to_metadata(metadata)
            _drop(conn, metadata)
            for table in metadata.sorted_tables:
                conn.execute(
                    CreateTable(table, include_foreign_key_constraints=[] if later_fks else None)
                )
            conn.commit()

            writer = _Writer(conn)
            shop = _Shop(random.Random(seed), writer.codec)

            def flush() -> None:
                for table in schema.TABLES:
                    rows = shop.rows[table.name]
                    writer.write(table, rows)
                    counts[table.name] += len(rows)
                    rows.clear()
                conn.commit()

            shop.catalogue()
            for start in range(1, customers + 1, batch):
                for cid in range(start, min(start + batch, customers + 1)):
                    shop.customer(cid)
                flush()
            heavy = random.Random(f"shop-heavy-{seed}")
            for start in range(0, heavy_rows, batch):
                shop.heavy(heavy, min(batch, heavy_rows - start))
                flush()

            for table in metadata.sorted_tables:
                for index in sorted(table.indexes, key=lambda i: str(i.name)):
                    conn.execute(CreateIndex(index))
                if later_fks:
                    for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
                        conn.execute(AddConstraint(fk))
            if dialect == "postgresql":
                for table in schema.TABLES:
                    if "id" in table.c and table.c.id.primary_key:
                        # the serial goes on after the generated ids
                        conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE(MAX(id), 0) + 1, false) FROM {table.name}"
                        )
            elif dialect in ("mysql", "mariadb"):
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
            conn.commit()
            if dialect == "postgresql":
                conn.exec_driver_sql("ANALYZE " + ", ".join(schema.TABLE_NAMES))
                conn.commit()
    finally:
        engine.dispose()
    return Counts(**counts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.shop.generate",
        description="Create and fill the sample shop database (drops its tables first).",
    )
    parser.add_argument("url", metavar="DB_URL", help="SQLAlchemy URL, e.g. sqlite:///shop.db")
    parser.add_argument("--customers", type=int, default=1_000, help="default 1000")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--heavy-rows", type=int, default=0, help="extra logins for customer 1")
    parser.add_argument("--batch", type=int, default=10_000, help="customers per write")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        counts = generate(
            args.url, args.customers, seed=args.seed, batch=args.batch, heavy_rows=args.heavy_rows
        )
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - start
    width = max(len(name) for name in schema.TABLE_NAMES)
    for name, n in counts.as_dict().items():
        print(f"{name:<{width}}  {n:>12,}")
    print(f"{'total':<{width}}  {counts.total:>12,}")
    print(f"{elapsed:.1f} s ({counts.total / elapsed:,.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

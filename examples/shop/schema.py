"""The sample shop's application database: an online store, as SQLAlchemy Core tables.

This is the kind of database lawful is pointed at, not one of lawful's own: it holds
customers and everything that reaches them (addresses, orders, payments, invoices kept
for the tax authority, support threads, newsletter lists, logins, reviews, referrals).
The same tables build on SQLite, PostgreSQL and MariaDB/MySQL.

The design cases lawful must handle are deliberate (README.md says why):

* households: several customers point at one `addresses` row;
* shared threads: `ticket_messages` holds both the customer's and the agent's words;
* an undeclared reference: `login_events.customer_id` has no foreign key, only a name;
* a reference by value: `newsletter_subscriptions` is matched by email, not by id;
* a cycle through a link table: customers → referrals → customers;
* legal retention: `tax_records` copy the buyer's name and address and are kept 10 years;
* composite keys: `order_items` and `referrals` have no single-column id.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT keys, except on SQLite, which autoincrements only INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(12, 2)
# Timestamps are UTC: timestamptz on PostgreSQL, DATETIME holding UTC elsewhere.
Timestamp = DateTime(timezone=True)


addresses = Table(
    "addresses",
    metadata,
    Column("id", Id, primary_key=True),
    Column("street", String(200), nullable=False),
    Column("city", String(100), nullable=False),
    Column("postal_code", String(20), nullable=False),
    Column("country", String(2), nullable=False),  # ISO 3166-1 alpha-2
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("phone", String(32)),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("birth_date", Date),
    Column("created_at", Timestamp, nullable=False),
    Column("last_login_at", Timestamp),
    # Shared by the members of a household; NULL for a customer who never gave one.
    Column("address_id", Id, ForeignKey("addresses.id"), index=True),
)

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True),
    Column("sku", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("category", String(50), nullable=False),
    Column("price", Money, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    # Usually the customer's own address; sometimes one seen nowhere else (a gift).
    Column("shipping_address_id", Id, ForeignKey("addresses.id"), index=True),
    # pending, paid, shipped, completed, cancelled
    Column("status", String(20), nullable=False),
    Column("total", Money, nullable=False),
    Column("placed_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("product_id", Id, ForeignKey("products.id"), primary_key=True, index=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Money, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False, index=True),
    Column("method", String(20), nullable=False),  # card, paypal, bank_transfer
    Column("card_last4", String(4)),  # only for cards
    Column("amount", Money, nullable=False),
    Column("paid_at", Timestamp, nullable=False),
)

# Invoices as issued: the buyer's name and address are copied, not referenced, and the
# rows must be kept 10 years from issue (commercial and tax law), whatever the customer asks.
tax_records = Table(
    "tax_records",
    metadata,
    Column("id", Id, primary_key=True),
    Column("payment_id", Id, ForeignKey("payments.id"), nullable=False, index=True),
    Column("invoice_number", String(32), nullable=False, unique=True),
    Column("customer_name", String(200), nullable=False),
    Column("customer_address", String(400), nullable=False),
    Column("vat_amount", Money, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
)

# Support staff: people too, but employees, not customers.
agents = Table(
    "agents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
)

support_tickets = Table(
    "support_tickets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("subject", String(200), nullable=False),
    Column("opened_at", Timestamp, nullable=False),
    Column("closed_at", Timestamp),
)

# One thread per ticket, alternating customer and agent. Exactly one sender column is
# set (by convention, not by a CHECK, so an eraser may blank the customer's side).
ticket_messages = Table(
    "ticket_messages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("support_tickets.id"), nullable=False, index=True),
    Column("sender_customer_id", Id, ForeignKey("customers.id"), index=True),
    Column("sender_agent_id", Id, ForeignKey("agents.id"), index=True),
    Column("body", Text, nullable=False),
    Column("sent_at", Timestamp, nullable=False),
)

# No reference to customers: the list is kept by email, and some subscribers never
# opened an account (and a few typed their address in another case).
newsletter_subscriptions = Table(
    "newsletter_subscriptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False, index=True),
    Column("list_name", String(50), nullable=False),
    Column("subscribed_at", Timestamp, nullable=False),
    Column("unsubscribed_at", Timestamp),
)

# customer_id is deliberately NOT a declared foreign key (an append-only log kept apart
# from the customers table, as many apps do): only its name says what it points at.
login_events = Table(
    "login_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, nullable=False, index=True),
    Column("ip", String(45), nullable=False),  # IPv4 here; 45 fits IPv6 text
    Column("user_agent", String(300)),
    Column("at", Timestamp, nullable=False),
)

product_reviews = Table(
    "product_reviews",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("product_id", Id, ForeignKey("products.id"), nullable=False, index=True),
    Column("rating", SmallInteger, nullable=False),  # 1..5
    Column("display_name", String(100), nullable=False),  # shown publicly: "Alice S."
    Column("body", Text),
    Column("created_at", Timestamp, nullable=False),
)

# Who brought whom: a many-to-many link from customers to customers (a cycle in the
# reference graph). The referrer is always the older account.
referrals = Table(
    "referrals",
    metadata,
    Column("referrer_id", Id, ForeignKey("customers.id"), primary_key=True),
    Column("referred_id", Id, ForeignKey("customers.id"), primary_key=True),
    Column("created_at", Timestamp, nullable=False),
    Index(None, "referred_id"),
)

# In the order the generator fills them (every reference points at an earlier table).
TABLES: tuple[Table, ...] = (
    addresses,
    customers,
    products,
    agents,
    referrals,
    orders,
    order_items,
    payments,
    tax_records,
    support_tickets,
    ticket_messages,
    newsletter_subscriptions,
    login_events,
    product_reviews,
)
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLES)

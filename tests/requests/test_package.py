"""The access/portability package: its files, its summary page, sealed storage and links."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from examples.shop.generate import generate
from lawful.datasets import Datasets
from lawful.datasets.access import DatasetAccess, TableAccess
from lawful.policy import load_policy
from lawful.requests.art15 import art15_information
from lawful.requests.package import (
    LinkRejected,
    PackageContents,
    PackageError,
    PackageUnavailable,
    build_package,
    check_link,
    link_token,
    open_package,
    purge_expired,
    store_package,
)
from lawful.requests.tables import request_packages, requests
from lawful.store import Store, open_store
from lawful.subjects import Keyring

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
CUSTOMER = "email:customer-1@example.com"
GENERATED = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
NOW = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)


# --- the shop subject's access, found by the datasets engine -------------------------------


@pytest.fixture(scope="module")
def shop_access(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[DatasetAccess], dict]:
    """customer-1's rows in the sample shop (SQLite), and the Art. 15 information for them."""
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    generate(url, 50, seed=0)
    policy = load_policy(SHOP / "policy.yaml").policy
    before = os.environ.get("SHOP_DATABASE_URL")
    os.environ["SHOP_DATABASE_URL"] = url
    try:
        with Datasets.load(
            [SHOP / "dataset.yaml"], policy=policy, keyring=Keyring.generate()
        ) as data:
            found = data.access([CUSTOMER])
    finally:
        if before is None:
            del os.environ["SHOP_DATABASE_URL"]
        else:
            os.environ["SHOP_DATABASE_URL"] = before
    categories = {c for d in found for t in d.tables for c in t.columns.values()}
    return found, art15_information(policy, categories, jurisdiction="eu")


def contents_for(datasets: list[DatasetAccess], information: dict, **changes) -> PackageContents:
    contents = PackageContents(
        controller="Sample Shop GmbH",
        request_ref="0123456789abcdef0123456789abcdef",
        kind="access",
        generated_at=GENERATED,
        datasets=datasets,
        records={
            "consent": [
                {"purpose": "newsletter", "state": "given", "at": datetime(2025, 1, 5, tzinfo=UTC)},
                {"purpose": "newsletter", "state": "withdrawn", "method": "unsubscribe_link"},
            ],
            "requests": [{"ref": "0123456789abcdef0123456789abcdef", "kind": "access"}],
        },
        information=information,
    )
    return replace(contents, **changes)


def unzip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def read_csv(archive: zipfile.ZipFile, name: str) -> list[list[str]]:
    text = archive.read(name).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


def test_the_zip_holds_json_csvs_and_summary_for_the_shop_subject(shop_access) -> None:
    datasets, information = shop_access
    (shop,) = datasets
    archive = unzip(build_package(contents_for(datasets, information)))
    tables = {t.table: t for t in shop.tables}
    assert {"customers", "orders", "order_items", "payments"} <= set(tables)
    assert archive.namelist() == [
        "data.json",
        "summary.html",
        *(f"csv/shop/{name}.csv" for name in tables),
        "records/consent.csv",
        "records/requests.csv",
    ]
    assert archive.testzip() is None

    document = json.loads(archive.read("data.json"))
    assert document["format"] == "lawful.package" and document["version"] == 1
    assert document["request"] == {"ref": "0123456789abcdef0123456789abcdef", "kind": "access"}
    assert document["generated_at"] == "2025-03-01T12:30:05+00:00"
    assert document["information"] == information
    assert document["datasets"] == [shop.to_dict()]
    (customers,) = [t for t in document["datasets"][0]["tables"] if t["table"] == "customers"]
    assert customers["rows"][0]["role"] == "owner"
    assert customers["rows"][0]["data"]["email"] == "customer-1@example.com"
    assert customers["categories"]["email"] == "user.contact.email"
    assert document["records"]["consent"][0] == {
        "purpose": "newsletter",
        "state": "given",
        "at": "2025-01-05T00:00:00+00:00",
    }
    assert document["files"] == archive.namelist()[2:]

    # One CSV per table: the header is the columns, one line per row, values as in the JSON.
    for name, table in tables.items():
        rows = read_csv(archive, f"csv/shop/{name}.csv")
        assert rows[0] == list(table.columns)
        assert len(rows) == 1 + len(table.rows)
    customer_rows = read_csv(archive, "csv/shop/customers.csv")
    email = customer_rows[0].index("email")
    assert customer_rows[1][email] == "customer-1@example.com"
    orders = read_csv(archive, "csv/shop/orders.csv")
    first = tables["orders"].rows[0]["data"]
    assert orders[1][orders[0].index("total")] == str(first["total"])  # Decimal, exact
    assert orders[1][orders[0].index("placed_at")] == first["placed_at"].isoformat()
    assert isinstance(first["total"], Decimal)

    consent = read_csv(archive, "records/consent.csv")
    assert consent[0] == ["purpose", "state", "at", "method"]  # every key, first seen first
    assert consent[1] == ["newsletter", "given", "2025-01-05T00:00:00+00:00", ""]
    assert consent[2] == ["newsletter", "withdrawn", "", "unsubscribe_link"]

    html = archive.read("summary.html").decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    assert "customer-1@example.com" in html
    assert "User Contact Email" in html  # columns named by their category, in words
    assert "<script" not in html and " src=" not in html  # self-contained: nothing loaded


def test_the_same_contents_give_the_same_bytes(shop_access) -> None:
    datasets, information = shop_access
    one = build_package(contents_for(datasets, information))
    two = build_package(contents_for(datasets, information))
    assert hashlib.sha256(one).digest() == hashlib.sha256(two).digest()
    stamps = {info.date_time for info in unzip(one).infolist()}
    assert stamps == {(2025, 3, 1, 12, 30, 4)}  # the generation time (zip keeps even seconds)
    later = build_package(contents_for(datasets, information, generated_at=NOW))
    assert later != one


def hostile_access() -> list[DatasetAccess]:
    table = TableAccess(
        table="people",
        description="<b>bold</b> description",
        columns={"name": "user.name", "notes": "user.content", "born": "user.demographic"},
        rows=[
            {
                "role": "owner",
                "data": {
                    "name": "<script>alert('x')</script>",
                    "notes": '"><img src=x onerror=alert(1)>',
                    "born": date(1990, 5, 17),
                },
            },
            {
                "role": "accessor",
                "data": {"name": 'Zoë, "quoted"\nnewline', "notes": None, "born": None},
            },
        ],
    )
    return [DatasetAccess("app", [table])]


def test_the_summary_escapes_hostile_values() -> None:
    contents = contents_for(
        hostile_access(),
        {"categories": [{"key": "user.name", "name": "<i>Name</i>"}]},
        controller="Evil <em>Corp</em>",
        records={"preferences": [{"<th>key": "</td><script>alert(2)</script>"}]},
    )
    html = unzip(build_package(contents)).read("summary.html").decode("utf-8")
    assert "<script" not in html
    assert "<img" not in html and "<em>" not in html and "<b>bold" not in html
    assert "<i>Name" not in html and "<th>key" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Evil &lt;em&gt;Corp&lt;/em&gt;" in html
    assert "&lt;i&gt;Name&lt;/i&gt;" in html  # a category name from the information
    assert "shared with you" in html  # the accessor row is marked as not only theirs


def test_csv_cells_are_plain_text_and_keep_the_data_whole() -> None:
    table = TableAccess(
        table="profile",
        description=None,
        columns={"name": "user.name", "active": "user.account", "tags": "user.content"},
        rows=[
            {"role": "owner", "data": {"name": 'Zoë, "the"\nsecond', "active": True, "tags": None}},
            {"role": "owner", "data": {"name": "李", "active": False, "tags": {"a": [1, 2]}}},
        ],
    )
    archive = unzip(build_package(contents_for([DatasetAccess("app", [table])], {}, records={})))
    assert read_csv(archive, "csv/app/profile.csv") == [
        ["name", "active", "tags"],
        ['Zoë, "the"\nsecond', "true", ""],
        ["李", "false", '{"a":[1,2]}'],
    ]
    document = json.loads(archive.read("data.json"))
    assert document["datasets"][0]["tables"][0]["rows"][1]["data"]["tags"] == {"a": [1, 2]}
    assert document["records"] == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "erasure"}, "not 'erasure'; use one of access, portability"),
        ({"request_ref": "../etc"}, "request_ref must be the request's public ref"),
        ({"records": {"../up": []}}, "record kind name '../up' can't be a file name"),
        ({"datasets": [DatasetAccess(".hidden", [])]}, None),  # no tables: no file, no error
        (
            {"datasets": [DatasetAccess("a/b", hostile_access()[0].tables)]},
            "dataset name 'a/b' can't be a file name",
        ),
        (
            {"datasets": [hostile_access()[0], hostile_access()[0]]},
            "same file \\(csv/app/people.csv\\)",
        ),
    ],
)
def test_contents_that_cannot_be_packaged_are_refused(changes: dict, message: str | None) -> None:
    contents = replace(contents_for(hostile_access(), {}), **changes)
    if message is None:
        build_package(contents)
        return
    with pytest.raises(PackageError, match=message):
        build_package(contents)


def test_generated_at_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="generated_at must be timezone-aware"):
        build_package(contents_for([], {}, generated_at=datetime(2025, 1, 1)))


# --- sealed in the store, delivered by link -------------------------------------------------


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


def add_request(store: Store, *, kind: str = "access") -> tuple[int, str]:
    """A minimal `requests` row (what a package hangs off); returns its id and ref."""
    controller_id = store.ensure_controller("sample-shop", "Sample Shop GmbH")
    ref = uuid.uuid4().hex
    with store.engine.begin() as conn:
        inserted = conn.execute(
            sa.insert(requests).values(
                controller_id=controller_id,
                ref=ref,
                kind=kind,
                state="in_progress",
                identity_kind="email",
                identity_hash="0" * 64,
                channel="api",
                received_at=NOW,
                due_at=NOW + timedelta(days=30),
                updated_at=NOW,
            )
        )
    return int(inserted.inserted_primary_key[0]), ref


def package_row(conn: Connection, request_id: int) -> sa.Row:
    return conn.execute(
        sa.select(request_packages).where(request_packages.c.request_id == request_id)
    ).one()


ZIP = build_package(contents_for(hostile_access(), {}))


def test_a_stored_package_is_sealed_and_opens_once_checked(store: Store, keyring: Keyring) -> None:
    request_id, ref = add_request(store)
    with store.engine.begin() as conn:
        link = store_package(
            conn, keyring, request_id=request_id, request_ref=ref, data=ZIP, now=NOW
        )
    assert link.expires_at == NOW + timedelta(days=7)
    with store.engine.connect() as conn:
        row = package_row(conn, request_id)
    assert row.sha256 == hashlib.sha256(ZIP).hexdigest() and row.size == len(ZIP)
    assert row.created_at == NOW and row.expires_at == link.expires_at
    assert row.key_id == keyring.current_key_id
    assert row.downloaded_at is None and row.deleted_at is None
    # At rest: neither the zip, nor any part of it, nor its file names are readable.
    sealed = bytes(row.content)
    assert ZIP not in sealed and ZIP[:64] not in sealed and ZIP[-64:] not in sealed
    assert b"PK\x03\x04" not in sealed and b"data.json" not in sealed

    first = NOW + timedelta(hours=1)
    with store.engine.begin() as conn:
        assert open_package(conn, keyring, link.token, first) == ZIP
    with store.engine.begin() as conn:
        assert open_package(conn, keyring, link.token, first + timedelta(days=1)) == ZIP
    with store.engine.connect() as conn:
        assert package_row(conn, request_id).downloaded_at == first  # the first download


def test_storing_again_for_the_same_request_keeps_the_first_package(
    store: Store, keyring: Keyring
) -> None:
    request_id, ref = add_request(store)
    with store.engine.begin() as conn:
        link = store_package(
            conn, keyring, request_id=request_id, request_ref=ref, data=ZIP, now=NOW
        )
    with store.engine.begin() as conn:
        again = store_package(
            conn,
            keyring,
            request_id=request_id,
            request_ref=ref,
            data=b"another zip",
            now=NOW + timedelta(days=1),
            window=timedelta(days=30),
        )
    assert again == link
    with store.engine.begin() as conn:
        assert open_package(conn, keyring, again.token, NOW) == ZIP
        assert conn.scalar(sa.select(sa.func.count()).select_from(request_packages)) == 1


def test_a_package_belongs_to_a_stored_request_by_its_own_ref(
    store: Store, keyring: Keyring
) -> None:
    request_id, ref = add_request(store)
    _, other_ref = add_request(store)
    with store.engine.begin() as conn:
        with pytest.raises(PackageError, match=f"request {request_id} has another ref"):
            store_package(
                conn, keyring, request_id=request_id, request_ref=other_ref, data=ZIP, now=NOW
            )
        with pytest.raises(PackageError, match="there is no request with id 999999"):
            store_package(conn, keyring, request_id=999999, request_ref=ref, data=ZIP, now=NOW)
        with pytest.raises(PackageError, match="not empty"):
            store_package(conn, keyring, request_id=request_id, request_ref=ref, data=b"", now=NOW)
        with pytest.raises(PackageError, match="positive timedelta"):
            store_package(
                conn,
                keyring,
                request_id=request_id,
                request_ref=ref,
                data=ZIP,
                now=NOW,
                window=timedelta(0),
            )
        with pytest.raises(ValueError, match="now must be timezone-aware"):
            store_package(
                conn,
                keyring,
                request_id=request_id,
                request_ref=ref,
                data=ZIP,
                now=datetime(2025, 1, 1),
            )


def test_links_say_which_request_and_refuse_tampering_and_expiry(keyring: Keyring) -> None:
    ref = uuid.uuid4().hex
    expires = NOW + timedelta(days=7)
    token = link_token(keyring, ref, expires)
    assert ref not in token  # base64 in a URL, but not plainly readable in a log line
    assert check_link(keyring, token, NOW) == ref
    assert check_link(keyring, token, expires - timedelta(seconds=1)) == ref

    body, signature = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    other_ref = link_token(keyring, uuid.uuid4().hex, expires).split(".")[0]
    later = link_token(keyring, ref, expires + timedelta(days=365)).split(".")[0]
    cases = {
        "signature": [
            f"{flipped}.{signature}",
            f"{other_ref}.{signature}",  # someone else's request under this signature
            f"{later}.{signature}",  # a longer window under this signature
            link_token(Keyring.generate(), ref, expires),  # another controller's key
        ],
        "malformed": ["", "no-dot", f"{body}.{signature}.x", f"{body}.short", "é.é", "a" * 600],
    }
    for reason, tokens in cases.items():
        for bad in tokens:
            with pytest.raises(LinkRejected) as caught:
                check_link(keyring, bad, NOW)
            assert caught.value.reason == reason
            assert ref not in str(caught.value)
    with pytest.raises(LinkRejected, match="altered or signed with another key"):
        check_link(keyring, f"{flipped}.{signature}", NOW)
    with pytest.raises(LinkRejected, match=r"malformed: it is not two parts joined by '\.'"):
        check_link(keyring, "no-dot", NOW)
    for at in (expires, expires + timedelta(days=1)):
        with pytest.raises(LinkRejected, match="expired at 2025-03-09 09:00:00 UTC") as caught:
            check_link(keyring, token, at)
        assert caught.value.reason == "expired"


def test_opening_refuses_bad_links_expired_and_missing_packages(
    store: Store, keyring: Keyring
) -> None:
    request_id, ref = add_request(store)
    _, bare_ref = add_request(store)  # a request with no package yet
    with store.engine.begin() as conn:
        link = store_package(
            conn, keyring, request_id=request_id, request_ref=ref, data=ZIP, now=NOW
        )
    with store.engine.begin() as conn:
        with pytest.raises(LinkRejected, match="expired"):
            open_package(conn, keyring, link.token, link.expires_at)
        with pytest.raises(LinkRejected, match="signed with another key"):
            open_package(conn, Keyring.generate(), link.token, NOW)
        bare = link_token(keyring, bare_ref, NOW + timedelta(days=1))
        with pytest.raises(PackageUnavailable, match="no package has been prepared") as caught:
            open_package(conn, keyring, bare, NOW)
        assert caught.value.reason == "missing"
    with store.engine.connect() as conn:
        assert package_row(conn, request_id).downloaded_at is None


def test_an_altered_or_moved_package_is_not_delivered(store: Store, keyring: Keyring) -> None:
    first_id, first_ref = add_request(store)
    second_id, second_ref = add_request(store)
    with store.engine.begin() as conn:
        first = store_package(
            conn, keyring, request_id=first_id, request_ref=first_ref, data=ZIP, now=NOW
        )
        second = store_package(
            conn, keyring, request_id=second_id, request_ref=second_ref, data=b"zip 2", now=NOW
        )
        # The first request's sealed package copied into the second's row does not open.
        sealed = package_row(conn, first_id).content
        packages = request_packages
        conn.execute(
            sa.update(packages).where(packages.c.request_id == second_id).values(content=sealed)
        )
        with pytest.raises(PackageUnavailable, match=r"can't be opened: .*does not decrypt") as c:
            open_package(conn, keyring, second.token, NOW)
        assert c.value.reason == "corrupt"
        # A stored hash that no longer matches: refused, not delivered.
        conn.execute(
            sa.update(packages).where(packages.c.request_id == first_id).values(sha256="0" * 64)
        )
        with pytest.raises(PackageUnavailable, match="does not match the hash"):
            open_package(conn, keyring, first.token, NOW)
        assert package_row(conn, first_id).downloaded_at is None


def test_purge_deletes_only_expired_content_and_keeps_the_rows(
    store: Store, keyring: Keyring
) -> None:
    old_id, old_ref = add_request(store)
    new_id, new_ref = add_request(store)
    with store.engine.begin() as conn:
        old = store_package(
            conn, keyring, request_id=old_id, request_ref=old_ref, data=ZIP, now=NOW
        )
        store_package(
            conn,
            keyring,
            request_id=new_id,
            request_ref=new_ref,
            data=ZIP,
            now=NOW + timedelta(days=3),
        )
    with store.engine.begin() as conn:
        assert purge_expired(conn, old.expires_at - timedelta(seconds=1)) == 0
    purged_at = old.expires_at + timedelta(hours=1)
    with store.engine.begin() as conn:
        assert purge_expired(conn, purged_at) == 1
    with store.engine.begin() as conn:
        assert purge_expired(conn, purged_at + timedelta(hours=1)) == 0  # already done
    with store.engine.connect() as conn:
        gone, kept = package_row(conn, old_id), package_row(conn, new_id)
    assert gone.content is None and gone.deleted_at == purged_at
    assert gone.sha256 == hashlib.sha256(ZIP).hexdigest() and gone.size == len(ZIP)  # proof
    assert kept.content is not None and kept.deleted_at is None

    # A worker whose clock lags still finds the content gone: refused, saying why.
    lagging = old.expires_at - timedelta(minutes=5)
    with (
        store.engine.begin() as conn,
        pytest.raises(PackageUnavailable, match=r"was deleted \(2025-03-09") as caught,
    ):
        open_package(conn, keyring, old.token, lagging)
    assert caught.value.reason == "deleted"
    with store.engine.begin() as conn, pytest.raises(LinkRejected, match="expired"):
        open_package(conn, keyring, old.token, purged_at)

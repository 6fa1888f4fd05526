"""`lawful dataset check` and `lawful data find|erase|rectify`: output for people and for
machines, exit codes 0/1/2, and errors that say how to fix them without repeating the
personal data they were given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lawful.cli import app
from lawful.subjects import Keyring
from tests.datasets import forum
from tests.datasets.conftest import SHOP_POLICY

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def forum_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("LAWFUL_KEYRING", "LAWFUL_HASH_KEY", "LAWFUL_ENCRYPTION_KEYS", "LAWFUL_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "forum.db"
    forum.build(f"sqlite:///{db}")
    monkeypatch.setenv("FORUM_DATABASE_URL", f"sqlite:///{db}")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "forum.yaml").write_text(forum.ANNOTATION, encoding="utf-8")
    return db


def test_check_a_good_file_against_its_database() -> None:
    code, out, _ = run("dataset", "check")
    assert code == 0
    assert out.startswith("✓ datasets/forum.yaml: dataset forum, 14 tables (file and database)")
    assert "warning: no index starts with users.invited_by" in out


def test_check_reports_live_mismatches_with_their_place(tmp_path: Path) -> None:
    bad = forum.ANNOTATION.replace(
        "nickname: {category: user.name, erase: hash}", "nick: {category: user.name, erase: hash}"
    )
    bad = bad.replace(
        'motto: {category: user.content.public, erase: {fixed: ""}}',
        "motto: {category: user.content.public, erase: null}",
    )
    (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
    code, out, _ = run("dataset", "check", "bad.yaml")
    assert code == 1
    assert "✗ bad.yaml" in out
    assert (
        "tables.profiles.columns.nick: table 'profiles' has no column 'nick'; did you mean 'nickname'?"
        in out
    )
    assert (
        "tables.profiles.columns.motto.erase: profiles.motto (VARCHAR(100)) is NOT NULL, so erasure "
        "can't set it to NULL" in out
    )
    assert "bad.yaml:" in out  # file:line:col


def test_check_offline_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORUM_DATABASE_URL")
    code, out, _ = run("dataset", "check", "--offline", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True and report["datasets"][0]["dataset"] == "forum"
    code, out, _ = run("dataset", "check")
    assert code == 1
    assert "error: dataset forum: the environment variable FORUM_DATABASE_URL is not set" in out


def test_check_with_a_policy_finds_undeclared_categories() -> None:
    code, out, _ = run("dataset", "check", "--offline", "--policy", str(SHOP_POLICY))
    assert code == 1
    assert "no purpose of the policy declares 'user.social'" in out


def test_find_shows_the_rows_by_table() -> None:
    code, out, _ = run("data", "find", "--email", "ALICE@example.com")
    assert code == 0
    assert out.startswith("forum: ")
    assert "  users (1 rows)" in out
    assert "name='Alice'" in out
    assert "(accessor: theirs to see, not to erase)" in out  # Bob's comment on her post
    code, out, _ = run("data", "find", "--phone", "+44 7400 123456", "--json")
    data = json.loads(out)
    assert code == 0 and data["rows"] > 10
    tables = {t["table"]: t for t in data["datasets"][0]["tables"]}
    assert tables["users"]["categories"]["email"] == "user.contact.email"


def test_find_nobody() -> None:
    code, out, _ = run("data", "find", "--email", "nobody@example.com")
    assert code == 0
    assert out == "forum: no rows of this subject\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the subject: --email, --phone, --id or --identity KIND:VALUE"),
        (("--email", "alice-at-example.com"), "the email address has no '@'"),
        (("--phone", "07400 123456"), "the phone number has no country code"),
        (("--identity", "alice"), "cannot tell which kind of identity this is"),
        (("--email", "a@b.example", "--dataset", "missing.yaml"), "missing.yaml: no such file"),
    ],
)
def test_bad_usage_exits_2_without_echoing_the_identity(
    args: tuple[str, ...], message: str
) -> None:
    code, _, err = run("data", "find", *args)
    assert code == 2
    assert message in err
    for value in ("alice-at-example.com", "07400 123456"):
        assert value not in err


def test_no_dataset_files(tmp_path: Path) -> None:
    (tmp_path / "datasets" / "forum.yaml").unlink()
    code, _, err = run("data", "find", "--email", "a@b.example")
    assert code == 2
    assert "no dataset files: pass --dataset FILE, or put them in datasets/*.yaml" in err


def test_erase_dry_run_then_for_real_then_again(tmp_path: Path) -> None:
    Keyring.generate().save(tmp_path / "lawful.keys")
    code, out, _ = run("data", "erase", "--email", "alice@example.com", "--dry-run")
    assert code == 0
    assert out.splitlines()[0].startswith("forum: would change ")
    assert "  invoices: 1 kept" in out
    assert "    invoices: 1 kept: tax law keeps invoices for 10 years" in out
    code, out, _ = run("data", "erase", "--email", "alice@example.com")
    assert code == 0 and out.splitlines()[0].startswith("forum: changed ")
    assert "comments: 2 deleted" in out
    code, out, _ = run("data", "erase", "--id", "1", "--json")
    report = json.loads(out)["datasets"][0]
    assert report["changed"] == 0
    code, out, _ = run("data", "erase", "--id", "1")
    assert out.startswith("forum: nothing to change: the rows found are already erased or kept")


def test_erase_without_a_keyring_for_a_hash_mask() -> None:
    code, _, err = run("data", "erase", "--email", "alice@example.com")
    assert code == 2
    assert "a hash mask needs the keyring's key: create one with `lawful keyring init`" in err


def test_rectify() -> None:
    code, out, _ = run(
        "data",
        "rectify",
        "--email",
        "bob@example.com",
        "--set",
        "users.name=Robert",
        "--set",
        "profiles.born=1985-02-02",
    )
    assert code == 0
    assert "forum.users: updated 1 rows (name)" in out
    code, _, err = run("data", "rectify", "--email", "bob@example.com", "--set", "users.email=nope")
    assert code == 2
    assert "users.email: the email address has no '@'" in err and "nope" not in err
    code, _, err = run("data", "rectify", "--email", "bob@example.com", "--set", "users.name")
    assert code == 2 and "--set takes table.column=value" in err
    code, out, _ = run(
        "data", "rectify", "--email", "bob@example.com", "--null", "profiles.born", "--json"
    )
    assert json.loads(out)["datasets"][0]["tables"][0]["updated"] == 1

"""`lawful keyring init|status|rotate`: keys written safely, never printed, rotated in place."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lawful.audit import AuditLog
from lawful.policy import starter_policy
from lawful.store import open_store
from lawful.subjects import Identity, Keyring, Subjects, load_keyring
from lawful.subjects.cli import keyring_app
from lawful.subjects.tables import identities

runner = CliRunner()
CONTROLLER = ("example-ltd", "Example Ltd")  # the starter policy's controller
ADA = Identity.parse("email:ada@example.com")
PHONE = Identity.parse("phone:+372 5123 4567")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(keyring_app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "LAWFUL_KEYRING",
        "LAWFUL_HASH_KEY",
        "LAWFUL_ENCRYPTION_KEYS",
        "LAWFUL_POLICY",
        "LAWFUL_STORE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def secrets_of(keyring: Keyring) -> list[str]:
    keys = [keyring.hash_key, *(key for _, key in keyring.encryption_keys)]
    return [base64.b64encode(k).decode() for k in keys] + [k.hex() for k in keys]


def test_init_writes_an_owner_only_keyring_and_warns_to_back_it_up(tmp_path: Path) -> None:
    code, out, err = run("init")
    assert code == 0, err
    path = tmp_path / "lawful.keys"
    keyring = load_keyring(path)
    assert keyring.key_ids == ("k1",)
    assert out.startswith("wrote lawful.keys")
    assert "back it up" in out and "can't be found" in out
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for secret in secrets_of(keyring):
        assert secret not in out


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    run("init", "my.keys")
    before = (tmp_path / "my.keys").read_text()
    code, _, err = run("init", "my.keys")
    assert code == 2
    assert err.startswith("error: my.keys already exists; pass --force")
    assert (tmp_path / "my.keys").read_text() == before
    code, _, _ = run("init", "my.keys", "--force")
    assert code == 0 and (tmp_path / "my.keys").read_text() != before


def test_init_follows_the_keyring_environment(tmp_path: Path) -> None:
    code, _, _ = run("init", env={"LAWFUL_KEYRING": str(tmp_path / "env.keys")})
    assert code == 0 and (tmp_path / "env.keys").exists()
    code, _, err = run("init", str(tmp_path / "missing" / "x.keys"))
    assert code == 1 and "does not exist" in err


def test_status_shows_ids_and_fingerprint_never_keys(tmp_path: Path) -> None:
    keyring = Keyring.generate().rotated()
    keyring.save(tmp_path / "lawful.keys")
    code, out, _ = run("status")
    assert code == 0
    assert out.splitlines() == [
        "keyring lawful.keys",
        f"  hash key fingerprint {keyring.fingerprint()[:12]}…",
        "  encryption keys: k2 (current), older: k1",
    ]
    code, out, _ = run("status", "--json")
    assert json.loads(out) == {
        "source": "lawful.keys",
        "fingerprint": keyring.fingerprint()[:12],
        "current": "k2",
        "keys": ["k2", "k1"],
    }
    for secret in secrets_of(keyring):
        assert secret not in out
    env = {
        "LAWFUL_HASH_KEY": base64.b64encode(keyring.hash_key).decode(),
        "LAWFUL_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"e" * 32).decode(),
    }
    code, out, _ = run("status", "--json", env=env)
    assert code == 0 and json.loads(out)["source"] == "$LAWFUL_HASH_KEY and $LAWFUL_ENCRYPTION_KEYS"


def test_status_without_a_keyring_or_with_a_bad_one(tmp_path: Path) -> None:
    code, _, err = run("status")
    assert code == 2
    assert err.strip() == (
        "error: no keyring at lawful.keys: create one with `lawful keyring init lawful.keys` "
        "(or point $LAWFUL_KEYRING at yours)"
    )
    (tmp_path / "bad.keys").write_text("{}")
    (tmp_path / "bad.keys").chmod(0o600)
    code, _, err = run("status", "--keyring", "bad.keys")
    assert code == 1 and "bad.keys is not a lawful keyring" in err
    if os.name == "posix":
        (tmp_path / "bad.keys").chmod(0o644)
        code, _, err = run("status", "--keyring", "bad.keys")
        assert code == 1 and "chmod 600 bad.keys" in err


@pytest.fixture
def setup(tmp_path: Path, store_url: str) -> tuple[str, Keyring]:
    """A policy file, a keyring file, and a store with two kept values sealed with k1."""
    (tmp_path / "policy.yaml").write_text(starter_policy())
    keyring = Keyring.generate()
    keyring.save(tmp_path / "lawful.keys")
    with open_store(store_url) as store:
        people = Subjects(store, *CONTROLLER, keyring)
        ada = people.resolve([ADA], create=True)[ADA]
        people.link(ada, ADA, keep_raw=True)
        people.link(ada, PHONE, keep_raw=True)
    return store_url, keyring


def test_rotate_adds_a_key_then_reencrypts(tmp_path: Path, setup: tuple[str, Keyring]) -> None:
    url, keyring = setup
    code, out, err = run("rotate", "--store", url)
    assert code == 0, err
    assert out.splitlines()[:2] == [
        "added encryption key k2 to lawful.keys (now current)",
        "example-ltd: re-encrypted 2 kept value(s) with k2",
    ]
    rotated = load_keyring(tmp_path / "lawful.keys")
    assert rotated.key_ids == ("k2", "k1") and rotated.hash_key == keyring.hash_key
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "lawful.keys").stat().st_mode) == 0o600
    with open_store(url) as store:
        with store.engine.connect() as conn:
            kept = conn.execute(
                sa.select(identities.c.key_id).where(identities.c.ciphertext.is_not(None))
            ).all()
        assert [r.key_id for r in kept] == ["k2", "k2"]
        people = Subjects(store, *CONTROLLER, rotated.without("k1"))
        ada = people.find(ADA)
        assert ada is not None and set(people.raw_identities(ada)) == {ADA, PHONE}
        log = AuditLog(store, CONTROLLER[0])
        assert log.verify().ok
        [event] = [e for e in log.events() if e.kind == "keyring.rotated"]
        assert event.data == {"reencrypted": 2, "key": "k2"}
    for secret in secrets_of(rotated):
        assert secret not in out
    # nothing left to re-encrypt; no new key with --reencrypt-only
    code, out, _ = run("rotate", "--store", url, "--reencrypt-only")
    assert code == 0 and "re-encrypted 0 kept value(s) with k2" in out
    assert load_keyring(tmp_path / "lawful.keys").key_ids == ("k2", "k1")


def test_rotate_refuses_a_keyring_the_store_does_not_know(
    tmp_path: Path, setup: tuple[str, Keyring]
) -> None:
    url, _ = setup
    stranger = Keyring.generate()
    stranger.save(tmp_path / "stranger.keys")
    code, _, err = run("rotate", "--store", url, "--keyring", "stranger.keys")
    assert code == 1
    assert "this keyring is not the one the store's identities were hashed with" in err
    assert load_keyring(tmp_path / "stranger.keys") == stranger  # not rewritten


def test_rotate_with_a_keyring_from_the_environment(
    tmp_path: Path, setup: tuple[str, Keyring]
) -> None:
    url, keyring = setup
    (tmp_path / "lawful.keys").unlink()
    new_key = Keyring.generate().encryption_keys[0][1]
    old_key = keyring.encryption_keys[0][1]

    def b64(key: bytes) -> str:
        return base64.b64encode(key).decode()

    env = {
        "LAWFUL_HASH_KEY": b64(keyring.hash_key),
        "LAWFUL_ENCRYPTION_KEYS": f"k1:{b64(old_key)}",
    }
    code, _, err = run("rotate", "--store", url, env=env)
    assert code == 1 and "can't rewrite" in err and "--reencrypt-only" in err
    env["LAWFUL_ENCRYPTION_KEYS"] = f"k2:{b64(new_key)},k1:{b64(old_key)}"
    code, out, err = run("rotate", "--store", url, "--reencrypt-only", env=env)
    assert code == 0, err
    assert "re-encrypted 2 kept value(s) with k2" in out
    assert not (tmp_path / "lawful.keys").exists()


def test_rotate_needs_a_policy(tmp_path: Path, sqlite_url: str) -> None:
    Keyring.generate().save(tmp_path / "lawful.keys")
    code, _, err = run("rotate", "--store", sqlite_url)
    assert code == 2 and "policy.yaml: no such file" in err
    assert load_keyring(tmp_path / "lawful.keys").key_ids == ("k1",)

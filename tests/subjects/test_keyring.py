"""The keyring: keyed hashes, AES-GCM sealing, rotation, and the file it lives in."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from lawful.subjects import Identity, Keyring, KeyringError, KeyringMissing, load_keyring

ADA = Identity.parse("email:ada@example.com")
POSIX = os.name == "posix"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(autouse=True)
def _no_keyring_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LAWFUL_KEYRING", "LAWFUL_HASH_KEY", "LAWFUL_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


# -- hashing ---------------------------------------------------------------------------------


def test_hash_is_stable_hex_and_depends_on_the_key() -> None:
    keyring = Keyring(b"h" * 32, (("k1", b"e" * 32),))
    digest = keyring.hash(ADA)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert keyring.hash(Identity.parse("email: ADA@example.com")) == digest
    # a known value: HMAC-SHA256(b"h"*32, b"email:ada@example.com")
    import hashlib
    import hmac

    assert digest == hmac.new(b"h" * 32, b"email:ada@example.com", hashlib.sha256).hexdigest()
    assert Keyring(b"H" * 32, (("k1", b"e" * 32),)).hash(ADA) != digest
    # encryption keys don't matter to the hash: rotating them keeps identities findable
    assert keyring.rotated().hash(ADA) == digest


def test_hash_many_is_hash_of_each() -> None:
    texts = ["email:ada@example.com", " Ada@Example.COM", "phone:+372 5123 4567", "account:x"]
    for _ in range(5):
        keyring = Keyring.generate()
        digests = keyring.hash_many([*texts, ADA])
        assert digests == [*(keyring.hash(Identity.parse(t)) for t in texts), keyring.hash(ADA)]
        # HMAC-SHA256 under the hash key, as the standard library computes it
        import hashlib
        import hmac

        expected = hmac.new(keyring.hash_key, b"email:ada@example.com", hashlib.sha256)
        assert digests[0] == digests[1] == expected.hexdigest()
    assert Keyring.generate().hash_many([]) == []


def test_hash_separates_kinds_and_subject_pseudonyms() -> None:
    keyring = Keyring.generate()
    assert keyring.hash(Identity.parse("account:ada@example.com")) != keyring.hash(ADA)
    ref = "0" * 32
    assert keyring.subject_hash(ref) == keyring.subject_hash(ref)
    assert len(keyring.subject_hash(ref)) == 64
    assert keyring.subject_hash(ref) != keyring.hash(Identity.parse(f"account:{ref}"))


def test_fingerprint_identifies_the_hash_key_only() -> None:
    keyring = Keyring.generate()
    assert keyring.fingerprint() == keyring.rotated().fingerprint()
    assert keyring.fingerprint() != Keyring.generate().fingerprint()
    assert keyring.hash_key.hex() not in keyring.fingerprint()


def test_derive_gives_separate_32_byte_keys_per_purpose() -> None:
    keyring = Keyring.generate()
    tokens = keyring.derive("unsubscribe-tokens")
    assert len(tokens) == 32 and tokens == keyring.derive("unsubscribe-tokens")
    assert tokens != keyring.derive("something-else")
    assert tokens != keyring.hash_key
    assert Keyring.generate().derive("unsubscribe-tokens") != tokens


# -- encryption ------------------------------------------------------------------------------


def test_encrypt_roundtrip_uses_current_key_and_random_nonces() -> None:
    keyring = Keyring.generate()
    key_id, blob = keyring.encrypt("ada@example.com", context=b"1:abc")
    assert key_id == "k1"
    assert b"ada" not in blob
    assert keyring.decrypt(key_id, blob, context=b"1:abc") == "ada@example.com"
    assert keyring.encrypt("ada@example.com", context=b"1:abc")[1] != blob  # fresh nonce


def test_tampered_or_moved_ciphertext_does_not_decrypt() -> None:
    keyring = Keyring.generate()
    key_id, blob = keyring.encrypt("ada@example.com", context=b"1:abc")
    altered = bytes([blob[0]]) + bytes([blob[1] ^ 1]) + blob[2:]
    last = blob[:-1] + bytes([blob[-1] ^ 0x80])
    for bad in (altered, last):
        with pytest.raises(KeyringError, match="does not decrypt: wrong key or altered"):
            keyring.decrypt(key_id, bad, context=b"1:abc")
    with pytest.raises(KeyringError, match="does not decrypt"):
        keyring.decrypt(key_id, blob, context=b"1:other-row")
    with pytest.raises(KeyringError, match="truncated"):
        keyring.decrypt(key_id, blob[:12], context=b"1:abc")


def test_encrypt_bytes_roundtrips_any_bytes_bound_to_its_context() -> None:
    keyring = Keyring.generate()
    payload = bytes(range(256)) * 64 + b"PK\x03\x04"  # not text, and large
    key_id, blob = keyring.encrypt_bytes(payload, context=b"package:r1")
    assert key_id == "k1"
    assert payload not in blob and b"PK\x03\x04" not in blob
    assert len(blob) == len(payload) + 12 + 16  # nonce and tag, nothing else
    assert keyring.decrypt_bytes(key_id, blob, context=b"package:r1") == payload
    assert keyring.encrypt_bytes(payload, context=b"package:r1")[1] != blob  # fresh nonce
    with pytest.raises(KeyringError, match="does not decrypt"):
        keyring.decrypt_bytes(key_id, blob, context=b"package:r2")
    altered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyringError, match="wrong key or altered"):
        keyring.decrypt_bytes(key_id, altered, context=b"package:r1")
    assert keyring.decrypt_bytes(*keyring.encrypt_bytes(b"", context=b"c"), context=b"c") == b""


def test_text_and_bytes_encryption_are_one_format() -> None:
    keyring = Keyring.generate()
    key_id, blob = keyring.encrypt("Zoë", context=b"c")
    assert keyring.decrypt_bytes(key_id, blob, context=b"c") == "Zoë".encode()
    key_id, blob = keyring.encrypt_bytes("Zoë".encode(), context=b"c")
    assert keyring.decrypt(key_id, blob, context=b"c") == "Zoë"
    key_id, blob = keyring.encrypt_bytes(b"\xff\xfe", context=b"c")
    with pytest.raises(KeyringError, match="not text; read it with decrypt_bytes"):
        keyring.decrypt(key_id, blob, context=b"c")


def test_encryption_refuses_mixed_up_types() -> None:
    keyring = Keyring.generate()
    with pytest.raises(TypeError, match="encrypt_bytes takes bytes, got str"):
        keyring.encrypt_bytes("text", context=b"c")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="encrypt takes text, got bytes"):
        keyring.encrypt(b"bytes", context=b"c")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="context must be bytes"):
        keyring.encrypt_bytes(b"x", context="c")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="context must be bytes"):
        keyring.decrypt("k1", b"x" * 40, context="c")  # type: ignore[arg-type]


def test_decrypting_with_another_keyring_fails_naming_the_key() -> None:
    key_id, blob = Keyring.generate().encrypt("secret", context=b"c")
    stranger = Keyring.generate()
    with pytest.raises(KeyringError, match="does not decrypt: wrong key or altered"):
        stranger.decrypt(key_id, blob, context=b"c")
    with pytest.raises(KeyringError, match="key 'k9', which this keyring does not have"):
        stranger.decrypt("k9", blob, context=b"c")


def test_rotation_adds_a_current_key_and_keeps_old_ones_until_retired() -> None:
    keyring = Keyring.generate()
    old_id, old_blob = keyring.encrypt("x", context=b"c")
    rotated = keyring.rotated()
    assert rotated.key_ids == ("k2", "k1") and rotated.current_key_id == "k2"
    assert rotated.hash_key == keyring.hash_key
    assert rotated.decrypt(old_id, old_blob, context=b"c") == "x"
    new_id, new_blob = rotated.encrypt("x", context=b"c")
    assert new_id == "k2"
    retired = rotated.without("k1")
    assert retired.key_ids == ("k2",)
    assert retired.decrypt(new_id, new_blob, context=b"c") == "x"
    with pytest.raises(KeyringError, match="'k1'"):
        retired.decrypt(old_id, old_blob, context=b"c")
    assert retired.rotated().key_ids == ("k3", "k2")
    with pytest.raises(KeyringError, match="k2 is the current encryption key"):
        retired.without("k2")
    with pytest.raises(KeyringError, match="no encryption key 'k7'"):
        retired.without("k7")


@pytest.mark.parametrize(
    ("hash_key", "keys", "message"),
    [
        (b"short", (("k1", b"e" * 32),), "the hash key must be 32 bytes, got 5"),
        ("h" * 32, (("k1", b"e" * 32),), "the hash key must be bytes"),
        (b"h" * 32, (), "at least one encryption key"),
        (b"h" * 32, (("k1", b"e" * 16),), "encryption key k1 must be 32 bytes, got 16"),
        (b"h" * 32, (("k1", b"e" * 32), ("k1", b"f" * 32)), "'k1' appears twice"),
        (b"h" * 32, (("", b"e" * 32),), "must be 1 to 40 letters"),
        (b"h" * 32, (("k 1", b"e" * 32),), "must be 1 to 40 letters"),
    ],
)
def test_keys_are_validated(hash_key: bytes, keys: tuple, message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        Keyring(hash_key, keys)


def test_repr_never_shows_keys() -> None:
    keyring = Keyring.generate().rotated()
    text = repr(keyring) + str(keyring)
    assert text == "Keyring(current='k2', keys=['k2', 'k1'])" * 2
    for _, key in keyring.encryption_keys:
        assert b64(key) not in text and key.hex() not in text


# -- the file --------------------------------------------------------------------------------


def test_save_and_load_roundtrip_with_owner_only_mode(tmp_path: Path) -> None:
    keyring = Keyring.generate().rotated()
    path = keyring.save(tmp_path / "lawful.keys")
    assert load_keyring(path) == keyring
    data = json.loads(path.read_text())
    assert data["lawful_keyring"] == 1
    assert [k["id"] for k in data["encryption_keys"]] == ["k2", "k1"]
    assert base64.b64decode(data["hash_key"]) == keyring.hash_key
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["lawful.keys"]  # no temporary left


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "lawful.keys"
    first = Keyring.generate()
    first.save(path)
    with pytest.raises(KeyringError, match="already exists"):
        Keyring.generate().save(path)
    assert load_keyring(path) == first
    rotated = first.rotated()
    rotated.save(path, overwrite=True)
    assert load_keyring(path) == rotated
    assert [p.name for p in tmp_path.iterdir()] == ["lawful.keys"]


def test_save_into_a_missing_directory_is_explained(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match=r"directory .* does not exist"):
        Keyring.generate().save(tmp_path / "nope" / "lawful.keys")


def test_default_path_and_keyring_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyringMissing) as caught:
        load_keyring()
    assert str(caught.value) == (
        "no keyring at lawful.keys: create one with `lawful keyring init lawful.keys` "
        "(or point $LAWFUL_KEYRING at yours)"
    )
    here = Keyring.generate()
    here.save("lawful.keys")  # the working directory is tmp_path
    assert load_keyring() == here
    elsewhere = Keyring.generate()
    elsewhere.save(tmp_path / "other.keys")
    monkeypatch.setenv("LAWFUL_KEYRING", str(tmp_path / "other.keys"))
    assert load_keyring() == elsewhere
    assert load_keyring("lawful.keys") == here  # an explicit path wins
    monkeypatch.setenv("LAWFUL_KEYRING", str(tmp_path / "gone.keys"))
    with pytest.raises(KeyringMissing, match=r"gone.keys \(from \$LAWFUL_KEYRING\)"):
        load_keyring()


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_keyring_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = Keyring.generate().save(tmp_path / "lawful.keys")
    path.chmod(mode)
    with pytest.raises(KeyringError) as caught:
        load_keyring(path)
    assert f"(mode {mode:04o})" in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)
    path.chmod(0o400)
    load_keyring(path)  # owner read-only is fine


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON (Expecting property name"),
        ("[]", 'is not a lawful keyring (it lacks "lawful_keyring": 1)'),
        ('{"lawful_keyring": 2}', "is not a lawful keyring"),
        ('{"lawful_keyring": 1, "encryption_keys": []}', '"hash_key" is missing'),
        ('{"lawful_keyring": 1, "hash_key": "!!!"}', "hash_key is not valid base64"),
        ('{"lawful_keyring": 1, "hash_key": "AAAA"}', "hash_key must be 32 bytes, got 3"),
        ('{"lawful_keyring": 1, "hash_key": "HASH"}', '"encryption_keys" must be a list'),
        (
            '{"lawful_keyring": 1, "hash_key": "HASH", "encryption_keys": [{"key": "KEY"}]}',
            'encryption key #1 needs an "id" and a "key"',
        ),
        (
            '{"lawful_keyring": 1, "hash_key": "HASH", "encryption_keys": [{"id": "k1"}]}',
            '"key" of encryption key k1 is missing',
        ),
        (
            '{"lawful_keyring": 1, "hash_key": "HASH", "encryption_keys": [{"id": "k1", "key": "AA=="}]}',
            "encryption key k1 must be 32 bytes, got 1",
        ),
        (
            '{"lawful_keyring": 1, "hash_key": "HASH", "encryption_keys": '
            '[{"id": "k1", "key": "KEY"}, {"id": "k1", "key": "KEY"}]}',
            "'k1' appears twice",
        ),
    ],
)
def test_malformed_file_names_the_file_and_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.keys"
    content = content.replace("HASH", b64(b"h" * 32)).replace("KEY", b64(b"e" * 32))
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError) as caught:
        load_keyring(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert b64(b"h" * 32) not in str(caught.value)  # never a key in a message


def test_keyring_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    hash_key, k1, k2 = b"h" * 32, b"1" * 32, b"2" * 32
    monkeypatch.setenv("LAWFUL_HASH_KEY", b64(hash_key))
    monkeypatch.setenv("LAWFUL_ENCRYPTION_KEYS", f"k2:{b64(k2)}, k1:{b64(k1)}")
    keyring = load_keyring()
    assert keyring == Keyring(hash_key, (("k2", k2), ("k1", k1)))
    assert keyring.current_key_id == "k2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAWFUL_HASH_KEY": "HASH"}, "$LAWFUL_ENCRYPTION_KEYS is not"),
        ({"LAWFUL_ENCRYPTION_KEYS": "k1:KEY"}, "$LAWFUL_HASH_KEY is not"),
        ({"LAWFUL_HASH_KEY": "nope!", "LAWFUL_ENCRYPTION_KEYS": "k1:KEY"}, "not valid base64"),
        ({"LAWFUL_HASH_KEY": "HASH", "LAWFUL_ENCRYPTION_KEYS": "KEY"}, 'entry #1 must be "id:'),
        ({"LAWFUL_HASH_KEY": "HASH", "LAWFUL_ENCRYPTION_KEYS": "k1:AA=="}, "must be 32 bytes"),
        (
            {"LAWFUL_HASH_KEY": "HASH", "LAWFUL_ENCRYPTION_KEYS": "k1:KEY", "LAWFUL_KEYRING": "x"},
            "both $LAWFUL_KEYRING and $LAWFUL_HASH_KEY",
        ),
    ],
)
def test_bad_environment_is_explained(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        value = value.replace("HASH", b64(b"h" * 32)).replace("KEY", b64(b"e" * 32))
        monkeypatch.setenv(name, value)
    with pytest.raises(KeyringError) as caught:
        load_keyring()
    assert message in str(caught.value)

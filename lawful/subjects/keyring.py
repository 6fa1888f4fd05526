"""The keys that hash and encrypt identities, and the file that keeps them.

One hash key makes the keyed hash (HMAC-SHA256) an identity is looked up by; it can't
change without making every stored identity unfindable, so the store records its
fingerprint and refuses another. Encryption keys (AES-256-GCM) seal the few raw values
lawful must keep; the first is current, older ones stay for decryption until every
value is re-encrypted (`lawful keyring rotate`) and they can be retired.

The keyring comes from a file (`./lawful.keys`, `$LAWFUL_KEYRING`, or a path), or from
the environment: `LAWFUL_HASH_KEY` (base64) and `LAWFUL_ENCRYPTION_KEYS`
("k2:base64,k1:base64", current first).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lawful.subjects.identity import Identity, identity_texts

DEFAULT_KEYRING_PATH = "lawful.keys"
KEYRING_ENV = "LAWFUL_KEYRING"
HASH_KEY_ENV = "LAWFUL_HASH_KEY"
ENCRYPTION_KEYS_ENV = "LAWFUL_ENCRYPTION_KEYS"
KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = 1

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")  # identities.key_id is 40 characters
_NUMBERED = re.compile(r"k(\d+)")
_FINGERPRINT_LABEL = b"lawful keyring fingerprint v1"
_SHA256_BLOCK = 64  # bytes: HMAC pads the key to this


class KeyringError(Exception):
    """The keyring can't be loaded or used; the message names the file and the fix."""


class KeyringMissing(KeyringError):
    """There is no keyring file where one was looked for."""


@dataclass(frozen=True)
class Keyring:
    """A hash key and the encryption keys, current first. Never printed: repr hides keys."""

    hash_key: bytes
    encryption_keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        _check_key("the hash key", self.hash_key)
        keys = tuple((key_id, key) for key_id, key in self.encryption_keys)
        if not keys:
            raise KeyringError("a keyring needs at least one encryption key")
        seen: set[str] = set()
        for key_id, key in keys:
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise KeyringError(
                    f"encryption key id {key_id!r} must be 1 to 40 letters, digits, '_', '.' or '-'"
                )
            if key_id in seen:
                raise KeyringError(f"encryption key id {key_id!r} appears twice")
            seen.add(key_id)
            _check_key(f"encryption key {key_id}", key)
        object.__setattr__(self, "encryption_keys", keys)

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_key_id!r}, keys={list(self.key_ids)!r})"

    # -- making keyrings ---------------------------------------------------------------

    @classmethod
    def generate(cls) -> Keyring:
        """A new keyring: a random hash key and one random encryption key, k1."""
        return cls(secrets.token_bytes(KEY_BYTES), (("k1", secrets.token_bytes(KEY_BYTES)),))

    def rotated(self) -> Keyring:
        """This keyring with a new random current encryption key; the old ones stay."""
        numbers = [int(m.group(1)) for k in self.key_ids if (m := _NUMBERED.fullmatch(k))]
        new_id = f"k{max(numbers, default=0) + 1}"
        return Keyring(
            self.hash_key, ((new_id, secrets.token_bytes(KEY_BYTES)), *self.encryption_keys)
        )

    def without(self, key_id: str) -> Keyring:
        """This keyring without the old key `key_id` (once nothing is sealed with it)."""
        if key_id not in self.key_ids:
            raise KeyringError(f"the keyring has no encryption key {key_id!r}")
        if key_id == self.current_key_id:
            raise KeyringError(
                f"{key_id} is the current encryption key and can't be retired; rotate first"
            )
        return Keyring(self.hash_key, tuple(k for k in self.encryption_keys if k[0] != key_id))

    # -- what it holds -------------------------------------------------------------------

    @property
    def current_key_id(self) -> str:
        return self.encryption_keys[0][0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.encryption_keys)

    # -- hashing -------------------------------------------------------------------------

    def hash(self, identity: Identity) -> str:
        """The keyed hash an identity is stored and looked up by (64 hex digits)."""
        return self._hmac(f"{identity.kind}:{identity.value}".encode())

    def hash_many(self, identities: Iterable[Identity | str]) -> list[str]:
        """`hash` of each identity, in order; text is read as `Identity.parse` reads it."""
        inner_copy, outer_copy = self._hmac_pads
        digests: list[str] = []
        append = digests.append
        for text in identity_texts(identities):
            inner = inner_copy()
            inner.update(text.encode())
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.hexdigest())
        return digests

    def subject_hash(self, subject_ref: str) -> str:
        """The pseudonym the audit log names a subject by."""
        return self._hmac(f"subject:{subject_ref}".encode())

    def fingerprint(self) -> str:
        """Identifies the hash key without revealing it, so a store can detect another key."""
        return self._hmac(_FINGERPRINT_LABEL)

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for `purpose` (e.g. signing unsubscribe links), derived by HKDF."""
        if not purpose:
            raise ValueError("derive needs a purpose, e.g. 'unsubscribe-tokens'")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode())
        return hkdf.derive(self.hash_key)

    def _hmac(self, message: bytes) -> str:
        # hmac.digest is the one-shot C implementation: several times faster than hmac.new.
        return hmac.digest(self.hash_key, message, "sha256").hex()

    @cached_property
    def _hmac_pads(self) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """HMAC-SHA256 under the hash key with its key schedule done once (RFC 2104).

        HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), K padded with zeros to the
        64-byte block (the hash key is 32 bytes, so it is never hashed first). The two
        hashes returned have absorbed the padded key: each message then costs two
        copies and two short updates, half the time of `hmac.digest`, which redoes the
        key every call. Tests check the result against `hmac`.
        """
        key = self.hash_key.ljust(_SHA256_BLOCK, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        return inner.copy, outer.copy

    # -- encryption ----------------------------------------------------------------------

    def encrypt(self, plaintext: str, *, context: bytes) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext) under the current key; `context` binds it to its row."""
        if not isinstance(plaintext, str):
            raise TypeError(
                f"encrypt takes text, got {type(plaintext).__name__}; use encrypt_bytes for bytes"
            )
        return self.encrypt_bytes(plaintext.encode("utf-8"), context=context)

    def decrypt(self, key_id: str, blob: bytes, *, context: bytes) -> str:
        """The plaintext of a value sealed by `encrypt` with the same `context`."""
        plain = self.decrypt_bytes(key_id, blob, context=context)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyringError(
                f"a value sealed with key {key_id} is not text; read it with decrypt_bytes"
            ) from None

    def encrypt_bytes(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        """`encrypt` for bytes (a file, a zip): (key id, nonce + ciphertext + tag)."""
        if not isinstance(plaintext, bytes | bytearray | memoryview):
            raise TypeError(
                f"encrypt_bytes takes bytes, got {type(plaintext).__name__}; use encrypt for text"
            )
        _check_context(context)
        key_id = self.current_key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, bytes(plaintext), bytes(context))
        return key_id, nonce + sealed

    def decrypt_bytes(self, key_id: str, blob: bytes, *, context: bytes) -> bytes:
        """The bytes sealed by `encrypt_bytes` (or `encrypt`) with the same `context`."""
        _check_context(context)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyringError(
                f"a value is sealed with encryption key {key_id!r}, which this keyring "
                f"does not have (it has {', '.join(self.key_ids)}); use a keyring that "
                "still holds it"
            )
        blob = bytes(blob)
        if len(blob) <= NONCE_BYTES:
            raise KeyringError(f"a value sealed with key {key_id} is truncated")
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], bytes(context))
        except InvalidTag:
            raise KeyringError(
                f"a value sealed with key {key_id} does not decrypt: wrong key or altered"
            ) from None

    @cached_property
    def _ciphers(self) -> Mapping[str, AESGCM]:
        return {key_id: AESGCM(key) for key_id, key in self.encryption_keys}

    # -- the file ------------------------------------------------------------------------

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "lawful_keyring": FORMAT_VERSION,
                    "hash_key": _b64(self.hash_key),
                    "encryption_keys": [
                        {"id": key_id, "key": _b64(key)} for key_id, key in self.encryption_keys
                    ],
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str, source: str = "the keyring") -> Keyring:
        """Read the file format; errors name `source` (usually the file's path)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # The message has a position, not the content.
            raise KeyringError(
                f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        if not isinstance(data, dict) or data.get("lawful_keyring") != FORMAT_VERSION:
            raise KeyringError(
                f'{source} is not a lawful keyring (it lacks "lawful_keyring": {FORMAT_VERSION}); '
                "create one with `lawful keyring init`"
            )
        hash_key = _key_field(data, "hash_key", source)
        entries = data.get("encryption_keys")
        if not isinstance(entries, list) or not entries:
            raise KeyringError(
                f'{source}: "encryption_keys" must be a list of {{"id": ..., "key": ...}}, '
                "the current key first"
            )
        keys = []
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise KeyringError(f'{source}: encryption key #{n} needs an "id" and a "key"')
            keys.append(
                (entry["id"], _key_field(entry, "key", source, f"encryption key {entry['id']}"))
            )
        try:
            return cls(hash_key, tuple(keys))
        except KeyringError as exc:
            raise KeyringError(f"{source}: {exc}") from None

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the keyring to `path` atomically, readable by its owner only (mode 0600)."""
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise KeyringError(f"cannot write {target}: directory {folder} does not exist")
        if target.exists() and not overwrite:
            raise KeyringError(
                f"{target} already exists; overwriting a keyring makes the identities it "
                "hashed unfindable (pass overwrite=True / --force if you mean it)"
            )
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.chmod(temp, 0o600)  # mkstemp already uses 0600; be explicit
                handle.write(self.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(temp, target)
            else:
                _publish_new(temp, target)
        except OSError as exc:
            raise KeyringError(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        _sync_folder(folder)
        return target


def load_keyring(path: str | Path | None = None) -> Keyring:
    """The keyring from `path`, else the environment, else ./lawful.keys.

    Without `path`: `$LAWFUL_HASH_KEY` with `$LAWFUL_ENCRYPTION_KEYS` when set, else the
    file `$LAWFUL_KEYRING`, else ./lawful.keys. Raises KeyringError saying what to fix.
    """
    if path is not None:
        return _load_file(Path(path), "")
    env_hash = os.environ.get(HASH_KEY_ENV)
    env_keys = os.environ.get(ENCRYPTION_KEYS_ENV)
    if env_hash or env_keys:
        if os.environ.get(KEYRING_ENV):
            raise KeyringError(
                f"both ${KEYRING_ENV} and ${HASH_KEY_ENV}/${ENCRYPTION_KEYS_ENV} are set; "
                "unset one so it is clear which keyring to use"
            )
        return keyring_from_env(env_hash, env_keys)
    if os.environ.get(KEYRING_ENV):
        return _load_file(Path(os.environ[KEYRING_ENV]), f" (from ${KEYRING_ENV})")
    return _load_file(Path(DEFAULT_KEYRING_PATH), "")


def keyring_path(option: str | Path | None = None) -> Path:
    """The keyring file: `option`, else `$LAWFUL_KEYRING`, else ./lawful.keys."""
    return Path(option or os.environ.get(KEYRING_ENV) or DEFAULT_KEYRING_PATH)


def keyring_from_env(hash_key: str | None, encryption_keys: str | None) -> Keyring:
    """The keyring given as `$LAWFUL_HASH_KEY` and `$LAWFUL_ENCRYPTION_KEYS`."""
    if not hash_key:
        raise KeyringError(
            f"${ENCRYPTION_KEYS_ENV} is set but ${HASH_KEY_ENV} is not; set both (base64 keys)"
        )
    if not encryption_keys:
        raise KeyringError(
            f"${HASH_KEY_ENV} is set but ${ENCRYPTION_KEYS_ENV} is not; set it to "
            '"k1:<base64 key>" (several as "k2:...,k1:...", the current first)'
        )
    decoded_hash = _decode(hash_key, f"${HASH_KEY_ENV}")
    keys = []
    for n, item in enumerate(encryption_keys.split(","), 1):
        key_id, sep, value = item.strip().partition(":")
        if not sep or not key_id:
            raise KeyringError(
                f'${ENCRYPTION_KEYS_ENV}: entry #{n} must be "id:<base64 key>", e.g. k1:...'
            )
        keys.append((key_id, _decode(value, f"${ENCRYPTION_KEYS_ENV} key {key_id}")))
    try:
        return Keyring(decoded_hash, tuple(keys))
    except KeyringError as exc:
        raise KeyringError(f"the keyring in the environment: {exc}") from None


def _load_file(path: Path, source: str) -> Keyring:
    shown = f"{path}{source}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyringMissing(
            f"no keyring at {shown}: create one with `lawful keyring init {path}` "
            f"(or point ${KEYRING_ENV} at yours)"
        ) from None
    except OSError as exc:
        raise KeyringError(f"cannot read the keyring {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyringError(f"the keyring {shown} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise KeyringError(
            f"the keyring {shown} is accessible to other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); restrict it with `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KeyringError(f"{shown} is not a lawful keyring (not UTF-8 text)") from None
    except OSError as exc:
        raise KeyringError(f"cannot read the keyring {shown}: {exc.strerror or exc}") from None
    return Keyring.from_json(text, shown)


def _publish_new(temp: str, target: Path) -> None:
    """Move `temp` to `target` only if `target` still does not exist."""
    try:
        os.link(temp, target)  # atomic, fails if target exists
    except FileExistsError:
        raise KeyringError(f"{target} already exists; pass overwrite=True to replace it") from None
    except OSError:
        # No hard links here (some filesystems): the exists check above has to do.
        os.replace(temp, target)


def _sync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_context(context: Any) -> None:
    # The context is what binds a sealed value to its row; text here is a caller's slip.
    if not isinstance(context, bytes | bytearray):
        raise TypeError(
            f"the encryption context must be bytes (e.g. b'request:<ref>'), got "
            f"{type(context).__name__}"
        )


def _check_key(what: str, key: Any) -> None:
    if not isinstance(key, bytes):
        raise KeyringError(f"{what} must be bytes, got {type(key).__name__}")
    if len(key) != KEY_BYTES:
        raise KeyringError(f"{what} must be {KEY_BYTES} bytes, got {len(key)}")


def _key_field(data: dict[str, Any], field: str, source: str, what: str | None = None) -> bytes:
    value = data.get(field)
    label = what or field
    if not isinstance(value, str):
        owner = f" of {what}" if what else ""
        raise KeyringError(f'{source}: "{field}"{owner} is missing; it must be a base64 key')
    return _decode(value, f"{source}: {label}")


def _decode(value: str, what: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{what} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyringError(f"{what} must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")

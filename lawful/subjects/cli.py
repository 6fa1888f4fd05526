"""`lawful keyring`: create, inspect and rotate the keys that hash and encrypt identities.

Follows the conventions of `lawful.cli`: exit 0 on success, 1 on a refusal, 2 on bad
usage, messages on stderr prefixed `error:`. Keys are never printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from lawful.engine import Engine, policy_path, store_url
from lawful.options import JsonOption, KeyringOption, PolicyOption, StoreOption
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.policy import LoadedPolicy, PolicyError, load_policy
from lawful.store import StoreError
from lawful.subjects.keyring import (
    ENCRYPTION_KEYS_ENV,
    HASH_KEY_ENV,
    Keyring,
    KeyringError,
    KeyringMissing,
    keyring_path,
    load_keyring,
)
from lawful.subjects.registry import Subjects

keyring_app = typer.Typer(help="The keys that hash and encrypt identities.", no_args_is_help=True)


FINGERPRINT_SHOWN = 12  # hex digits of the fingerprint shown: enough to compare two keyrings


def _from_env() -> bool:
    """Whether `load_keyring()` takes the keyring from the environment, not a file."""
    return bool(os.environ.get(HASH_KEY_ENV) or os.environ.get(ENCRYPTION_KEYS_ENV))


def _load(option: Path | None) -> tuple[Keyring, str]:
    """The keyring and where it came from; exit 2 if there is none, 1 if it is unusable."""
    try:
        keyring = load_keyring(option)
    except KeyringMissing as exc:
        _usage(str(exc))
    except KeyringError as exc:
        _refuse(str(exc))
    if option is None and _from_env():
        return keyring, f"${HASH_KEY_ENV} and ${ENCRYPTION_KEYS_ENV}"
    return keyring, str(keyring_path(option))


def _policy(option: Path | None) -> LoadedPolicy:
    path = policy_path(option)
    if not path.exists():
        _usage(f"{path}: no such file (create a policy with `lawful init {path}`)")
    try:
        return load_policy(path)
    except PolicyError as exc:
        typer.echo(f"✗ {path}: {len(exc.errors)} error(s)", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None


@keyring_app.command("init")
def init(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write the keyring (default: $LAWFUL_KEYRING or ./lawful.keys)"
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite an existing keyring (its identities are lost)."),
    ] = False,
) -> None:
    """Create a new keyring file (mode 600): a hash key and a first encryption key."""
    target = keyring_path(path)
    if target.exists() and not force:
        _usage(
            f"{target} already exists; pass --force to overwrite it (identities hashed "
            "with it could no longer be found)"
        )
    try:
        Keyring.generate().save(target, overwrite=force)
    except KeyringError as exc:
        _refuse(str(exc))
    typer.echo(f"wrote {target} (readable by you only)")
    typer.echo(
        "back it up somewhere safe: without it the store's identities can't be found and "
        "kept values can't be decrypted"
    )


@keyring_app.command("status")
def status(keyring: KeyringOption = None, as_json: JsonOption = False) -> None:
    """Show the keyring's key ids and hash-key fingerprint (never the keys)."""
    loaded, source = _load(keyring)
    info: dict[str, Any] = {
        "source": source,
        "fingerprint": loaded.fingerprint()[:FINGERPRINT_SHOWN],
        "current": loaded.current_key_id,
        "keys": list(loaded.key_ids),
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    older = [k for k in loaded.key_ids if k != loaded.current_key_id]
    typer.echo(f"keyring {source}")
    typer.echo(f"  hash key fingerprint {info['fingerprint']}…")
    typer.echo(
        f"  encryption keys: {loaded.current_key_id} (current)"
        + (f", older: {', '.join(older)}" if older else "")
    )


@keyring_app.command("rotate")
def rotate(
    keyring: KeyringOption = None,
    store: StoreOption = None,
    policy: PolicyOption = None,
    reencrypt_only: Annotated[
        bool,
        typer.Option(
            "--reencrypt-only",
            help="Add no key; re-encrypt with the current one (after an interrupted "
            "rotation, or for a keyring from the environment).",
        ),
    ] = False,
) -> None:
    """Add a new current encryption key, then re-encrypt the store's kept values with it.

    The keyring file is saved first (old keys kept), so no value is sealed with a lost key.
    """
    loaded, source = _load(keyring)
    from_env = keyring is None and _from_env()
    if from_env and not reencrypt_only:
        _refuse(
            f"the keyring comes from ${HASH_KEY_ENV} and ${ENCRYPTION_KEYS_ENV}, which lawful "
            f"can't rewrite: put a new key first in ${ENCRYPTION_KEYS_ENV} (e.g. k2:<32 random "
            "bytes, base64>,k1:...), then run `lawful keyring rotate --reencrypt-only`"
        )
    path = keyring_path(keyring)
    policy_file = _policy(policy)
    try:
        engine = Engine.open(policy_file, store_url(store))
    except StoreError as exc:
        _refuse(str(exc))
    with engine:
        key, name = engine.policy.key, engine.policy.controller.name
        try:
            Subjects(engine.store, key, name, loaded).context()  # the right keyring?
        except KeyringError as exc:
            _refuse(f"{source}: {exc}")
        if not reencrypt_only:
            loaded = loaded.rotated()
            try:
                loaded.save(path, overwrite=True)
            except KeyringError as exc:
                _refuse(str(exc))
            typer.echo(f"added encryption key {loaded.current_key_id} to {path} (now current)")
        try:
            count = Subjects(engine.store, key, name, loaded).rotate()
        except (KeyringError, StoreError) as exc:
            again = "" if from_env else f" --keyring {path}"
            _refuse(
                f"{exc}; the keyring's current key is {loaded.current_key_id}: finish with "
                f"`lawful keyring rotate --reencrypt-only{again}`"
            )
    typer.echo(f"{key}: re-encrypted {count} kept value(s) with {loaded.current_key_id}")
    older = [k for k in loaded.key_ids if k != loaded.current_key_id]
    if older:
        typer.echo(
            f"older keys ({', '.join(older)}) are still in the keyring; they decrypt nothing of "
            f"{key} now, but keep them while another controller or a backup may need them"
        )


__all__ = ["keyring_app"]

"""`lawful keys create|list|revoke` and `lawful serve`.

`serve` runs the HTTP API (lawful.api.app) with uvicorn over one Engine; unless
`--no-worker`, a thread of the same process also runs the data-subject requests that are
verified (as `lawful request run` does), so a request submitted over HTTP completes
without another process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated

import typer

from lawful.api.keys import ApiKeyError, ApiKeys, Scope
from lawful.engine import Engine, policy_path, store_url
from lawful.options import (
    DatasetOption,
    JsonOption,
    KeyringOption,
    PolicyOption,
    StoreOption,
    dataset_files,
    open_engine,
)
from lawful.options import print_json as _print
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.store import StoreError, open_store

keys_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)
log = logging.getLogger("lawful.api")


def _keys(policy: Path | None, store: str | None) -> ApiKeys:
    from lawful.cli import _existing, _load_or_exit

    loaded = _load_or_exit(_existing(policy_path(policy)))
    try:
        opened = open_store(store_url(store))
    except StoreError as exc:
        _refuse(str(exc))
    return ApiKeys(opened, loaded.policy.key, loaded.policy.controller.name)


@keys_app.command("create")
def create(
    scope: Annotated[
        str,
        typer.Option(help="admin, operator (privacy team), service (apps), read (dashboards)"),
    ],
    name: Annotated[str | None, typer.Option(help="What the key is for")] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an API key; it is printed this once (lawful keeps only its hash)."""
    if scope not in {s.value for s in Scope}:
        _usage(f"unknown scope {scope!r}: use one of {', '.join(s.value for s in Scope)}")
    keys = _keys(policy, store)
    try:
        key, token = keys.create(scope, name=name)
    except ApiKeyError as exc:
        _usage(str(exc))
    finally:
        keys.store.close()
    if as_json:
        _print({**key.to_dict(), "token": token})
        return
    typer.echo(token)
    typer.echo(
        f"API key {key.ref} ({key.scope.value}{', ' + key.name if key.name else ''}): "
        "the line above is shown only now; keep it secret",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    revoked: Annotated[bool, typer.Option("--revoked", help="Show revoked keys too")] = False,
    policy: PolicyOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The API keys (never their tokens): ref, prefix, scope, name, when made or revoked."""
    keys = _keys(policy, store)
    try:
        found = keys.list(include_revoked=revoked)
    finally:
        keys.store.close()
    if as_json:
        _print([k.to_dict() for k in found])
        return
    if not found:
        typer.echo("no API keys (create one with `lawful keys create --scope service`)")
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        typer.echo(
            f"{k.ref}  {k.prefix}…  {k.scope.value:<8}  {k.created_at:%Y-%m-%d}  {state}  {k.name or ''}".rstrip()
        )


@keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key's ref (or its prefix) from `keys list`")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: servers refuse it within seconds (their cache of checked keys)."""
    keys = _keys(policy, store)
    try:
        revoked = keys.revoke(key)
    except ApiKeyError as exc:
        _refuse(str(exc))
    finally:
        keys.store.close()
    if as_json:
        _print(revoked.to_dict())
    else:
        typer.echo(f"API key {revoked.ref} revoked")


class Worker:
    """Runs verified requests in a thread, every `interval` seconds, until stopped."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lawful-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.engine.requests.run_pending()
            except Exception as exc:  # a failing round must not end the server's worker
                # The type only: the message could name a person.
                log.error(
                    "request worker: %s; retrying in %.0f s", type(exc).__name__, self.interval
                )
            self._stop.wait(self.interval)


def serve(
    host: Annotated[str, typer.Option(help="The address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port to listen on")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run verified requests in this process")
    ] = True,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between the worker's rounds")
    ] = 2.0,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers",
            help="Trust X-Forwarded-For from 127.0.0.1 (behind a reverse proxy): rate limits "
            "then count the real client",
        ),
    ] = False,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    dataset: DatasetOption = None,
) -> None:
    """Serve the HTTP API (docs at /docs, schema at /openapi.json) until interrupted."""
    import uvicorn

    from lawful.api.app import create_app
    from lawful.subjects import KeyringError

    engine = open_engine(
        policy, store, keyring=keyring, datasets=dataset_files(dataset), messages=True
    )
    try:
        engine.keyring  # noqa: B018 - fail now, not on the first request, without a keyring
        app = create_app(engine)
    except KeyringError as exc:
        engine.close()
        _usage(str(exc))
    background = Worker(engine, interval) if worker else None
    if background is not None:
        background.start()
    typer.echo(f"lawful: serving {engine.policy.controller.name} on http://{host}:{port}", err=True)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            proxy_headers=proxy_headers,
            forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
            log_level="info",
            access_log=False,  # paths hold identities (/consents/email:…): not logged
        )
    finally:
        if background is not None:
            background.stop()
        engine.close()

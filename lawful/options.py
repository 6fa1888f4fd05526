"""The command-line options every `lawful` command shares (typer annotations).

In their own module so capability CLIs (lawful/<capability>/cli.py) can use them
without importing lawful.cli, which imports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from lawful.engine import Engine

# Typer's rich help treats "[...]" as markup, so defaults are written "(default: ...)".
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="Policy file (default: $LAWFUL_POLICY or ./policy.yaml)"),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", "-s", help="Store URL (default: $LAWFUL_STORE or sqlite:///./lawful.db)"
    ),
]
KeyringOption = Annotated[
    Path | None,
    typer.Option(
        "--keyring", "-k", help="Keyring file (default: $LAWFUL_KEYRING or ./lawful.keys)"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DEFAULT_DATASETS = "datasets/*.yaml"
DatasetOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--dataset",
        "-d",
        help=f"A dataset annotation file; repeatable (default: {DEFAULT_DATASETS})",
    ),
]


# --- how every command ends ----------------------------------------------------------------


def usage(message: str) -> NoReturn:
    """Bad input: `error: ...` on stderr, exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def refuse(message: str) -> NoReturn:
    """A refusal to act, or a store or database that can't be used: exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def dataset_files(options: list[Path] | None) -> list[Path]:
    """The `--dataset` files, else datasets/*.yaml in the current folder (maybe none);
    a named file that does not exist exits 2."""
    if options is None:
        return sorted(Path().glob(DEFAULT_DATASETS))
    for path in options:
        if not path.exists():
            usage(f"{path}: no such file (draft an annotation with `lawful scan DB_URL -o {path}`)")
    return list(options)


def open_engine(
    policy: Path | None,
    store: str | None,
    *,
    keyring: Path | None = None,
    datasets: list[Path] | None = None,
    messages: bool = False,
    **options: Any,
) -> Engine:
    """The Engine a command runs on: the policy (`--policy`) loaded, a bad one exiting 2;
    the `datasets` files (from `dataset_files`); with `messages`, the mail sender from the
    environment (a bad setting exits 2); the store opened, exiting 1 when it can't be.
    `options` go to `Engine.open` as they are (decision_logging, ...)."""
    from lawful.cli import _existing, _load_or_exit
    from lawful.engine import Engine, policy_path, store_url
    from lawful.requests.messages import sender_from_env
    from lawful.store import StoreError

    loaded = _load_or_exit(_existing(policy_path(policy)))
    if messages:
        try:
            options["sender"] = sender_from_env()
        except ValueError as exc:
            usage(str(exc))
    try:
        return Engine.open(loaded, store_url(store), keyring=keyring, datasets=datasets, **options)
    except StoreError as exc:
        refuse(str(exc))

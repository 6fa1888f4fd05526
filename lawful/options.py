"""The command-line options every `lawful` command shares (typer annotations).

In their own module so capability CLIs (lawful/<capability>/cli.py) can use them
without importing lawful.cli, which imports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

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

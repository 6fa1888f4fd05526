"""`python -m lawful.api serve|keys ...`: the API's commands before (and besides) `lawful`."""

from __future__ import annotations

import typer

from lawful.api.cli import keys_app, serve

app = typer.Typer(
    help="lawful's HTTP API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)

if __name__ == "__main__":
    app(prog_name="lawful")

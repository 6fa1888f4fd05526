"""The retention commands mounted as `lawful` will mount them, runnable as a module.

`python -m tests.retention.cli_app sweep ...` runs a sweep in its own process (the crash
test kills it), before the integrator wires the commands into `lawful`.
"""

from __future__ import annotations

import typer

from lawful.retention.cli import hold_app, sweep

app = typer.Typer(no_args_is_help=True)
app.command("sweep")(sweep)
app.add_typer(hold_app, name="hold")

if __name__ == "__main__":
    app()

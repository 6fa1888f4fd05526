"""The notice commands as the `lawful` command will hold them, for tests."""

from __future__ import annotations

import typer

from lawful.notice.cli import audit_policy_cmd, notice, policy_publish, ropa

app = typer.Typer()
app.command("notice")(notice)
app.command("ropa")(ropa)
app.command("audit-policy")(audit_policy_cmd)
policy_app = typer.Typer()
policy_app.command("publish")(policy_publish)
app.add_typer(policy_app, name="policy")

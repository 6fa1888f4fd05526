"""Alembic environment for lawful's store.

lawful runs its migrations itself (`lawful.store.open_store(...)`, `lawful store
upgrade`): the caller passes an open connection in `config.attributes["connection"]`,
so there is no alembic.ini and no URL here.
"""

from alembic import context

from lawful.store.schema import all_tables

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "lawful's migrations need a connection in config.attributes['connection']; "
        "run them with `lawful store upgrade` or lawful.store.open_store(url)"
    )

context.configure(
    connection=connection,
    target_metadata=all_tables(),
    render_as_batch=True,  # SQLite can't ALTER most things: batch mode rebuilds the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

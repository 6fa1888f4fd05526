"""Every capability's tables on one MetaData, for migrations and schema checks.

Each capability owns its tables (lawful/<capability>/tables.py) on the shared
`lawful.store.tables.metadata`; importing them here registers them all.
"""

from __future__ import annotations

from sqlalchemy import MetaData


def all_tables() -> MetaData:
    import lawful.api.tables
    import lawful.audit.tables
    import lawful.consent.tables
    import lawful.disclosure.tables
    import lawful.incidents.tables
    import lawful.requests.tables
    import lawful.retention.tables
    import lawful.subjects.tables  # noqa: F401
    from lawful.store.tables import metadata

    return metadata

"""The store: lawful's own records (SQLite by default, PostgreSQL in production)."""

from lawful.store.store import DEFAULT_STORE_URL, PolicyVersion, Store, StoreError, open_store

__all__ = ["DEFAULT_STORE_URL", "PolicyVersion", "Store", "StoreError", "open_store"]

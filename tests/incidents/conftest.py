"""The sample shop and lawful's store, shared with the other tests that need both."""

from tests.shop_store import keyring, shop, shop_policy, shop_url, store  # noqa: F401

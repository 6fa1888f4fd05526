"""Sample requests and access rules of the routes added by lawful/api/sweeps.py,
banner.py and opendsr.py, merged into test_auth's tables."""

from __future__ import annotations

from typing import Any

SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/sweeps"): {"json": {"dry_run": True}},
    ("GET", "/api/v1/sweeps/plan"): {},
    ("POST", "/opendsr/v2/requests"): {"json": {}},
    ("GET", "/opendsr/v2/requests/{ref}/status"): {},
    ("POST", "/opendsr/v2/requests/{ref}/cancel"): {},
}
PUBLIC = {
    ("GET", "/banner.js"),
    ("GET", "/api/v1/cookies/categories"),
    ("GET", "/api/v1/cookies/choice"),
    ("POST", "/api/v1/cookies/choice"),
    ("GET", "/opendsr/v2/discovery"),
    ("GET", "/opendsr/v2/key.pem"),
}
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "service": {
        ("POST", "/opendsr/v2/requests"),
        ("GET", "/opendsr/v2/requests/{ref}/status"),
        ("POST", "/opendsr/v2/requests/{ref}/cancel"),
    },
    "operator": {("POST", "/api/v1/sweeps"), ("GET", "/api/v1/sweeps/plan")},
    "read": {("GET", "/api/v1/sweeps/plan")},
}

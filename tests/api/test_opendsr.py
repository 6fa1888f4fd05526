"""OpenDSR 2.0: lawful as a controller's processor (signed answers, status callbacks to
a local HTTP server) and forwarding a request to a processor (a second lawful, served)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lawful.api.opendsr import canonical, forward, verify_signature
from tests.api.conftest import Api, make_api

SIG = "X-OpenDSR-Signature"


def _email(api: Api) -> str:
    return api.shop("SELECT email FROM customers ORDER BY id")[0].email


def _body(email: str, kind: str = "access", callbacks: list[str] | None = None) -> dict:
    return {
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": kind,
        "submitted_time": "2026-01-02T10:00:00Z",
        "regulation": "gdpr",
        "api_version": "2.0",
        "subject_identities": [
            {"identity_type": "email", "identity_value": email, "identity_format": "raw"}
        ],
        "status_callback_urls": callbacks or [],
    }


def _pem(api: Api) -> bytes:
    return api.client.get("/opendsr/v2/key.pem").content


def _signed_by(api: Api, answer: Any) -> bool:
    return verify_signature(_pem(api), answer.content, answer.headers[SIG])


def _events(api: Api, kind: str) -> list[dict]:
    rows = api.sql("SELECT data FROM audit_events WHERE kind = :k ORDER BY seq", k=kind)
    return [json.loads(r.data) if isinstance(r.data, str) else r.data for r in rows]


def test_discovery_is_signed_and_lists_what_the_policy_offers(sqlite_api: Api) -> None:
    answer = sqlite_api.client.get("/opendsr/v2/discovery")
    assert answer.status_code == 200
    body = answer.json()
    assert body["api_version"] == "2.0"
    assert set(body["supported_subject_request_types"]) == {"access", "portability", "erasure"}
    assert {"identity_type": "email", "identity_format": "raw"} in body["supported_identities"]
    assert body["processor_certificate"].endswith("/opendsr/v2/key.pem")
    assert _signed_by(sqlite_api, answer)
    assert answer.headers["X-OpenDSR-Processor-Domain"] == "testserver"
    # A tampered body does not verify.
    assert not verify_signature(_pem(sqlite_api), answer.content + b" ", answer.headers[SIG])


def test_a_request_is_taken_in_processor_mode_and_signed(api: Api) -> None:
    sent = _body(_email(api))
    answer = api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    assert answer.status_code == 201, answer.text
    assert _signed_by(api, answer)
    body = answer.json()
    assert body["subject_request_id"] == sent["subject_request_id"]
    assert json.loads(base64.b64decode(body["encoded_request"])) == sent
    unsigned = {k: v for k, v in body.items() if k != "processor_signature"}
    assert verify_signature(_pem(api), canonical(unsigned), body["processor_signature"])
    # Verified at once (the controller vouches), by plain SQL; no code was sent.
    [row] = api.sql("SELECT ref, state, channel, submitted_by, kind FROM requests")
    assert row.channel == "opendsr" and row.kind == "access"
    assert row.submitted_by == "OpenDSR controller service test key"
    assert row.state != "awaiting_verification"
    assert api.sender.sent == [] or all(m.template != "code" for m in api.sender.sent)
    [event] = _events(api, "opendsr.received")
    assert event["ref"] == row.ref and event["subject_request_id"] == sent["subject_request_id"]
    assert sent["subject_identities"][0]["identity_value"] not in json.dumps(event)
    # The same id again is refused.
    again = api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    assert again.status_code == 409 and again.json()["code"] == "opendsr.duplicate"


def test_status_follows_the_request_to_completion(api: Api) -> None:
    sent = _body(_email(api))
    api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    url = f"/opendsr/v2/requests/{sent['subject_request_id']}/status"
    first = api.client.get(url, headers=api.headers("service"))
    assert first.status_code == 200 and _signed_by(api, first)
    assert first.json()["request_status"] in ("pending", "in_progress")
    api.engine.requests.run_pending()
    done = api.client.get(url, headers=api.headers("service")).json()
    [row] = api.sql("SELECT state FROM requests")
    assert row.state == "completed" and done["request_status"] == "completed"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {
                "subject_identities": [
                    {
                        "identity_type": "email",
                        "identity_value": "ab" * 32,
                        "identity_format": "sha256",
                    }
                ]
            },
            "opendsr.identity",
        ),
        (
            {
                "subject_identities": [
                    {
                        "identity_type": "email",
                        "identity_value": "not an email",
                        "identity_format": "raw",
                    }
                ]
            },
            "identity.invalid",
        ),
        ({"subject_request_id": "42"}, "validation"),
        ({"subject_request_type": "rectification"}, "validation"),
        ({"status_callback_urls": ["ftp://x"]}, "validation"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_taken(
    sqlite_api: Api, change: dict, code: str
) -> None:
    before = len(sqlite_api.sql("SELECT id FROM requests"))
    body = {**_body("someone@example.com"), **change}
    answer = sqlite_api.client.post(
        "/opendsr/v2/requests", json=body, headers=sqlite_api.headers("service")
    )
    assert answer.status_code in (400, 422), answer.text
    if code != "validation":
        assert answer.json()["code"] == code
    assert len(sqlite_api.sql("SELECT id FROM requests")) == before


def test_another_controller_sees_nothing(api: Api) -> None:
    sent = _body(_email(api))
    api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    keys = api.client.app.state.keys  # type: ignore[attr-defined]
    _, other = keys.create("service", name="another controller")
    url = f"/opendsr/v2/requests/{sent['subject_request_id']}/status"
    answer = api.client.get(url, headers={"X-API-Key": other})
    assert answer.status_code == 404 and answer.json()["code"] == "opendsr.not_found"


class _Sink:
    """A local HTTP server that keeps what is POSTed to it."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                # Header names are case-insensitive: kept lower-cased.
                headers = {k.lower(): v for k, v in self.headers.items()}
                sink.received.append((headers, self.rfile.read(size)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def sink() -> Iterator[_Sink]:
    s = _Sink()
    yield s
    s.server.shutdown()


def test_a_signed_callback_is_posted_when_the_request_closes(api: Api, sink: _Sink) -> None:
    service = api.client.app.state.opendsr  # type: ignore[attr-defined]
    sent = _body(_email(api), callbacks=[sink.url])
    api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    assert service.deliver() == 0 and sink.received == []  # still open: nothing to say
    api.engine.requests.run_pending()
    assert service.deliver() == 1
    [(headers, raw)] = sink.received
    assert verify_signature(_pem(api), raw, headers[SIG.lower()])
    body = json.loads(raw)
    assert body["request_status"] == "completed"
    assert body["status_callback_url"] == sink.url
    assert body["subject_request_id"] == sent["subject_request_id"]
    assert service.deliver() == 0 and len(sink.received) == 1  # sent once
    [event] = _events(api, "opendsr.callback")
    assert event["delivered"] is True and event["status"] == "completed"


def test_cancel_withdraws_and_calls_back(api: Api, sink: _Sink) -> None:
    service = api.client.app.state.opendsr  # type: ignore[attr-defined]
    sent = _body(_email(api), kind="erasure", callbacks=[sink.url])  # erasure awaits approval
    api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    url = f"/opendsr/v2/requests/{sent['subject_request_id']}/cancel"
    answer = api.client.post(url, headers=api.headers("service"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["request_status"] == "cancelled" and _signed_by(api, answer)
    [row] = api.sql("SELECT state FROM requests")
    assert row.state == "withdrawn"
    again = api.client.post(url, headers=api.headers("service"))
    assert again.status_code == 409
    assert service.deliver() == 1
    assert json.loads(sink.received[0][1])["request_status"] == "cancelled"


def test_an_unreachable_callback_is_retried_then_given_up(api: Api) -> None:
    service = api.client.app.state.opendsr  # type: ignore[attr-defined]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/gone"
    sent = _body(_email(api), kind="erasure", callbacks=[dead])
    api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
    api.client.post(
        f"/opendsr/v2/requests/{sent['subject_request_id']}/cancel",
        headers=api.headers("service"),
    )
    for _ in range(7):
        assert service.deliver() == 0
    events = _events(api, "opendsr.callback")
    assert len(events) == 5 and not any(e["delivered"] for e in events)


def test_forward_to_a_processor_that_speaks_opendsr(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller (api) forwards its request to a processor: a second lawful with
    its own store, served over HTTP by uvicorn."""
    import uvicorn

    email = _email(api)
    ref = api.engine.requests.submit("erasure", email, submitted_by="test").ref
    processor_store = f"sqlite:///{tmp_path / 'processor.db'}"
    for processor in make_api(processor_store, api.shop_url):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(processor.client.app, host="127.0.0.1", port=port, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            base = f"http://127.0.0.1:{port}/opendsr/v2"
            done = forward(api.engine, ref, base, processor.tokens["service"])
            assert done.status_code == 201 and done.signature_valid is True
            [row] = processor.sql("SELECT kind, channel, submitted_by FROM requests")
            assert (row.kind, row.channel) == ("erasure", "opendsr")
            [event] = _events(api, "opendsr.forwarded")
            assert event["ref"] == ref and event["signature_valid"] is True
            assert event["subject_request_id"] == done.subject_request_id
            assert email not in json.dumps(event)
            status = processor.client.get(
                f"/opendsr/v2/requests/{done.subject_request_id}/status",
                headers=processor.headers("service"),
            )
            assert status.json()["request_status"] == "pending"  # awaiting approval there
            # A wrong key is refused, and said so.
            from lawful.api.opendsr import ForwardError

            with pytest.raises(ForwardError, match="HTTP 401"):
                forward(api.engine, ref, base, "lawful_" + "x" * 43)
        finally:
            server.should_exit = True
            thread.join(10)


def test_the_server_sends_callbacks_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: _Sink
) -> None:
    """With the app started, a thread delivers callbacks without being asked."""
    monkeypatch.setenv("LAWFUL_OPENDSR_CALLBACK_INTERVAL", "0.2")
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    for api in make_api(f"sqlite:///{tmp_path / 'lawful.db'}", shop):
        assert "opendsr-callbacks" in {t.name for t in threading.enumerate()}
        sent = _body(_email(api), callbacks=[sink.url])
        api.client.post("/opendsr/v2/requests", json=sent, headers=api.headers("service"))
        api.engine.requests.run_pending()
        deadline = time.monotonic() + 10
        while not sink.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.received) == 1
        assert json.loads(sink.received[0][1])["request_status"] == "completed"

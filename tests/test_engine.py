"""The engine records each policy version in the store, per controller, with its changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from lawful.engine import Engine, policy_path, store_url
from lawful.policy import load_policy_text, starter_policy
from lawful.store import open_store

STARTER = starter_policy()


def _write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_first_open_records_version_one_and_reopening_records_nothing(
    tmp_path: Path, store_url: str
) -> None:
    path = _write(tmp_path, STARTER)
    with Engine.open(path, store_url) as engine:
        assert engine.recorded.created
        assert engine.policy_version.number == 1
        assert engine.policy_version.controller_key == "example-ltd"
        assert engine.policy_version.text == STARTER
        assert engine.policy_version.label == "1"
        assert str(engine.policy_version.effective_date) == "2026-01-01"
    # a reformatted file says the same thing: no new version
    _write(
        tmp_path,
        "# reformatted\n" + STARTER.replace("jurisdictions: [eu]", "jurisdictions:\n  - eu"),
    )
    with Engine.open(path, store_url) as engine:
        assert not engine.recorded.created
        assert engine.policy_version.number == 1


def test_a_changed_policy_becomes_a_new_version_with_its_material_changes(
    tmp_path: Path, store_url: str
) -> None:
    path = _write(tmp_path, STARTER)
    Engine.open(path, store_url).close()
    _write(
        tmp_path,
        STARTER.replace("[user.contact.email, user.name.first]", "[user.contact.email, user.name]"),
    )
    with Engine.open(path, store_url) as engine:
        version = engine.policy_version
        assert engine.recorded.created and version.number == 2
        assert version.material
        assert engine.recorded.diff is not None
        assert engine.recorded.diff.renew_consent == ("newsletter",)
        assert [c["path"] for c in version.changes or []] == ["purposes.newsletter.categories"]
    # wording only: a new version, not material
    _write(
        tmp_path,
        STARTER.replace(
            "[user.contact.email, user.name.first]", "[user.contact.email, user.name]"
        ).replace("Send our newsletter to people who asked for it", "Send our monthly newsletter"),
    )
    with Engine.open(path, store_url) as engine:
        assert engine.policy_version.number == 3
        assert not engine.policy_version.material
    with open_store(store_url) as store:
        assert [v.number for v in store.policy_versions("example-ltd")] == [1, 2, 3]


def test_controllers_keep_separate_histories_in_one_store(tmp_path: Path, store_url: str) -> None:
    first = _write(tmp_path, STARTER, "a.yaml")
    second = _write(
        tmp_path,
        STARTER.replace("name: Example Ltd", "name: Other GmbH").replace(
            "country: IE", "country: DE"
        ),
        "b.yaml",
    )
    with Engine.open(first, store_url) as a, Engine.open(second, store_url) as b:
        assert (a.policy.key, a.policy_version.number) == ("example-ltd", 1)
        assert (b.policy.key, b.policy_version.number) == ("other-gmbh", 1)
    with open_store(store_url) as store, store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.key, count(*) FROM policy_versions v JOIN controllers c ON c.id = v.controller_id "
                "GROUP BY c.key ORDER BY c.key"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("example-ltd", 1), ("other-gmbh", 1)]


def test_a_stored_version_loads_again_as_the_same_policy(tmp_path: Path, store_url: str) -> None:
    with Engine.open(_write(tmp_path, STARTER), store_url) as engine:
        stored = engine.policy_version
        reloaded = load_policy_text(stored.text, "<stored>")
        assert reloaded.content_hash == stored.content_hash == engine.loaded.content_hash


def test_conventions_for_policy_and_store_locations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAWFUL_POLICY", raising=False)
    monkeypatch.delenv("LAWFUL_STORE", raising=False)
    assert policy_path(None) == Path("policy.yaml")
    assert store_url(None) == "sqlite:///./lawful.db"
    monkeypatch.setenv("LAWFUL_POLICY", "/etc/lawful/p.yaml")
    monkeypatch.setenv("LAWFUL_STORE", "postgresql://db/lawful")
    assert policy_path(None) == Path("/etc/lawful/p.yaml")
    assert store_url(None) == "postgresql://db/lawful"
    assert policy_path("x.yaml") == Path("x.yaml")
    assert store_url("sqlite:///x.db") == "sqlite:///x.db"


def test_reverting_the_policy_file_records_the_old_text_as_current(
    tmp_path: Path, store_url: str
) -> None:
    path = _write(tmp_path, STARTER)
    Engine.open(path, store_url).close()
    _write(
        tmp_path,
        STARTER.replace("channels: [email]\n    lists", "channels: [email, sms]\n    lists"),
    )
    Engine.open(path, store_url).close()
    _write(tmp_path, STARTER)
    with Engine.open(path, store_url) as engine:
        assert engine.recorded.created and engine.policy_version.number == 3
        # the diff is against version 2: the sms channel went away (narrowing, not material)
        assert engine.recorded.diff is not None
        assert [c.path for c in engine.recorded.diff.changes] == [
            ("purposes", "newsletter", "channels")
        ]


def test_each_new_version_writes_one_audit_event_and_reloading_writes_none(
    tmp_path: Path, store_url: str
) -> None:
    from lawful.audit import AuditLog

    path = _write(tmp_path, STARTER)
    Engine.open(path, store_url).close()
    Engine.open(path, store_url).close()  # unchanged: no event
    with Engine.open(path, store_url) as engine:
        log = AuditLog(engine.store, engine.policy.key)
        events = log.events()
        assert [(e.seq, e.kind, e.data["version"]) for e in events] == [
            (1, "policy.version_recorded", 1)
        ]
        assert events[0].data["content_hash"] == engine.policy_version.content_hash
        assert log.verify().ok


def test_a_version_and_its_audit_event_are_recorded_together_or_not_at_all(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lawful.engine

    def broken_append(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    path = _write(tmp_path, STARTER)
    monkeypatch.setattr(lawful.engine, "append", broken_append)
    with pytest.raises(RuntimeError, match="audit log"):
        Engine.open(path, store_url)
    key = load_policy_text(STARTER).policy.key
    with open_store(store_url) as store:
        assert store.policy_versions(key) == []
    monkeypatch.undo()
    with Engine.open(path, store_url) as engine:
        assert engine.policy.key == key
        assert engine.policy_version.number == 1

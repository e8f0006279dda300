"""The console's pure parts: users file, triage workflow, action store, shore coverage."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from console_helpers import SITE

from pipeline.console.coverage import coast_pieces, uncovered_report
from pipeline.console.store import ActionStore
from pipeline.console.triage import Board, Triage, apply, check, in_queue, is_escalated
from pipeline.console.users import UsersFile
from pipeline.errors import ConsoleError
from schemas.records import AlertAction


def act(action: str, alert: str = "a1", role: str = "operator", t_ms: int = 1000, **kw):
    return AlertAction(
        action_id=f"{alert}-{action}-{t_ms}",
        alert_id=alert,
        action=action,  # type: ignore[arg-type]
        t_ms=t_ms,
        user=kw.pop("user", "olga"),
        role=role,  # type: ignore[arg-type]
        site="haikou",
        **kw,
    )


@pytest.mark.unit
def test_users_file_hashes_with_argon2_and_has_no_default(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    uf = UsersFile(path)
    assert uf.users == {}
    uf.add("olga", "correct horse", "operator")
    with pytest.raises(ConsoleError):
        uf.add("bad name!", "correct horse", "operator")
    with pytest.raises(ConsoleError):
        uf.add("short", "1234", "operator")
    with pytest.raises(ConsoleError):
        uf.add("rolf", "correct horse", "admin")
    uf.save()
    text = path.read_text()
    assert "correct horse" not in text and "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = UsersFile(path)
    assert again.verify("olga", "correct horse").role == "operator"
    assert again.verify("olga", "wrong horse") is None
    assert again.verify("nobody", "correct horse") is None
    again.passwd("olga", "battery staple", "supervisor")
    assert again.verify("olga", "battery staple").role == "supervisor"
    again.remove("olga")
    assert again.verify("olga", "battery staple") is None


@pytest.mark.unit
def test_triage_follows_bam_and_roles() -> None:
    t = Triage()
    assert check(act("acknowledge", role="viewer"), t) is not None
    assert check(act("reopen"), t) is not None  # operators do not reopen
    assert check(act("dismiss", reason="because"), t) is not None
    assert check(act("assign", assignee="sam"), t, assigner_is_self=False) is not None
    t = apply(t, act("acknowledge", t_ms=10))
    assert (t.state, t.acked_by, t.acked_t_ms) == ("acknowledged", "olga", 10)
    assert check(act("acknowledge"), t) is not None
    t = apply(t, act("start", user="sam", t_ms=20))
    assert (t.state, t.assignee, t.acked_by) == ("in_progress", "sam", "olga")
    t = apply(t, act("comment", text="boat at the beach"))
    t = apply(t, act("escalate"))
    assert t.escalated and t.n_comments == 1
    t = apply(t, act("dismiss", reason="false_alarm", text="a buoy"))
    assert (t.state, t.dismiss_reason) == ("dismissed", "false_alarm")
    assert apply(t, act("resolve")) == t  # a late action leaves the state unchanged
    t = apply(t, act("reopen", role="supervisor"))
    assert t.state == "acknowledged"
    # the detector closing an alert nobody acknowledged keeps it in the queue
    assert in_queue(Triage(), "closed")
    assert not in_queue(Triage(state="acknowledged"), "closed")
    assert in_queue(Triage(state="in_progress"), "closed")
    # escalation of a high-severity alert left new
    assert not is_escalated(Triage(), 80, 0, 119_000, 70, 120)
    assert is_escalated(Triage(), 80, 0, 121_000, 70, 120)
    assert not is_escalated(Triage(), 60, 0, 999_000, 70, 120)


@pytest.mark.unit
def test_board_silences_vessels_and_places() -> None:
    b = Board()
    b.apply(act("silence", alert="x", t_ms=0, silence_until_t_ms=60_000, silence_mmsi=412000001))
    b.apply(
        act(
            "silence",
            alert="y",
            t_ms=0,
            silence_until_t_ms=60_000,
            silence_lonlat=[110.3, 20.05],
            silence_radius_m=300,
        )
    )
    assert b.silenced(412000001, 0, 0, 30_000)
    assert not b.silenced(412000001, 0, 0, 61_000)
    assert b.silenced(None, 110.301, 20.05, 30_000)  # ~100 m away
    assert not b.silenced(None, 110.31, 20.05, 30_000)  # ~1 km away


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}"
    url = request.getfixturevalue("postgres_url")
    s = ActionStore(url)
    s.clear()  # one cluster per session: start from an empty store
    s.close()
    return url


@pytest.mark.unit
def test_store_is_idempotent_and_filters_the_audit(store_url: str) -> None:
    url = store_url
    s = ActionStore(url)
    a1 = act("acknowledge", alert="a1", t_ms=100)
    a2 = act("comment", alert="a2", t_ms=200, user="sam", text="x")
    assert s.add(0, [(0, a1), (1, None), (2, a2)]) == 2
    assert s.add(0, [(2, a2)]) == 0
    assert s.offsets() == {0: 3}
    s.close()
    s = ActionStore(url)  # survives a restart
    assert [a.action_id for a in s.all_actions()] == [a1.action_id, a2.action_id]
    assert [r.action.user for r in s.audit(user="sam")] == ["sam"]
    assert [r.action.alert_id for r in s.audit(alert_id="a1")] == ["a1"]
    assert [r.action.t_ms for r in s.audit(since_t_ms=150)] == [200]
    assert [r.action.t_ms for r in s.audit(until_t_ms=150)] == [100]
    s.clear()
    assert s.offsets() == {} and s.all_actions() == []


@pytest.mark.unit
def test_coverage_follows_the_cameras_field_of_view() -> None:
    from pipeline.site import load_site

    site = load_site(SITE)
    pieces = coast_pieces(site.coast_segments(), 250.0)
    none = uncovered_report(pieces, [], 5000.0)
    assert none["uncovered_km"] == none["coast_km"] > 10
    cams = [(c.lon, c.lat, c.heading_deg, c.hfov_deg or 60.0) for c in site.cameras]
    all_on = uncovered_report(pieces, cams, 5000.0)
    assert 0 < all_on["uncovered_km"] < none["uncovered_km"]
    # a camera turned away from the shore covers less of it than one looking along it
    c = site.cameras[0]
    along = uncovered_report(pieces, [(c.lon, c.lat, c.heading_deg, 80.0)], 5000.0)
    away = uncovered_report(pieces, [(c.lon, c.lat, (c.heading_deg + 180) % 360, 10.0)], 5000.0)
    assert along["uncovered_km"] < away["uncovered_km"]


@pytest.mark.unit
def test_console_refuses_to_start_without_a_user(tmp_path: Path) -> None:
    from pipeline.console.web import Console, ConsoleConfig

    base = dict(bootstrap="127.0.0.1:1", site_dir=SITE, store_url=":memory:")
    with pytest.raises(ConsoleError, match="no console user"):
        Console(ConsoleConfig(users_file=tmp_path / "none.json", **base))
    with pytest.raises(ConsoleError, match="127.0.0.1"):
        Console(ConsoleConfig(users_file=None, demo=True, host="0.0.0.0", **base))
    Console(ConsoleConfig(users_file=None, demo=True, **base)).store.close()


@pytest.mark.unit
def test_users_and_console_commands(tmp_path: Path, monkeypatch, capsys) -> None:
    import io

    from pipeline.cli import main

    users = str(tmp_path / "users.json")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert (
        main(["users", "--file", users, "add", "olga", "--role", "viewer", "--password-stdin"]) == 0
    )
    assert main(["users", "--file", users, "list"]) == 0
    assert "olga\tviewer" in capsys.readouterr().out
    assert UsersFile(users).verify("olga", "a long password") is not None
    # no user: the console refuses to start (before it looks for a broker)
    empty = str(tmp_path / "none.json")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    rc = main(
        ["console", "--users", empty, "--keep-running", "--store", ":memory:", "--run-for-s", "0"]
    )
    assert rc == 1 and "no console user" in capsys.readouterr().err
    assert main(["users", "--file", users, "remove", "olga"]) == 0
    assert UsersFile(users).users == {}

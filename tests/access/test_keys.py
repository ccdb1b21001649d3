"""Keys: pure parsing, and the repository against SQLite and PostgreSQL."""

from __future__ import annotations

import calendar

import pytest

from wilton_core.access.keys import (
    KEY_PREFIX,
    KeyAdminError,
    KeyRepo,
    KeySpec,
    hash_key,
    model_allowed,
    parse_duration,
    parse_models,
    period_start,
)
from wilton_core.types import LedgerRecord


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("45m", 2700), ("90", 90),
                                               ("2w", 14 * 86400), ("1.5h", 5400)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "-3d", "0d", "3y", "1e9w", "30 days"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(KeyAdminError):
        parse_duration(text)


def test_parse_models() -> None:
    assert parse_models("local-*, gpt-4o,,gpt-4o") == ("local-*", "gpt-4o")
    assert parse_models("") == () and parse_models(None) == ()
    assert parse_models("local-*,*") == ()  # '*' means every model
    with pytest.raises(KeyAdminError):
        parse_models("local a")
    with pytest.raises(KeyAdminError):
        parse_models("x" * 200)


def test_model_allowed() -> None:
    assert model_allowed((), "anything")
    assert model_allowed(("local-*", "gpt-4o"), "local-small")
    assert model_allowed(("local-*", "gpt-4o"), "gpt-4o")
    assert not model_allowed(("local-*", "gpt-4o"), "gpt-4o-mini")
    assert not model_allowed(("local-*",), "LOCAL-small")  # case matters, like model ids


def test_period_start() -> None:
    t = calendar.timegm((2026, 12, 2, 15, 30, 0))  # a Wednesday
    assert period_start("day", t) == calendar.timegm((2026, 12, 2, 0, 0, 0))
    assert period_start("week", t) == calendar.timegm((2026, 11, 30, 0, 0, 0))  # Monday
    assert period_start("month", t) == calendar.timegm((2026, 12, 1, 0, 0, 0))
    assert period_start("total", t) == 0.0
    assert period_start("week", calendar.timegm((2026, 11, 30, 0, 0, 0))) == calendar.timegm((2026, 11, 30, 0, 0, 0))


def test_spec_validation() -> None:
    for bad in (dict(name=""), dict(name="a b"), dict(name="x", budget_usd=-1.0), dict(name="x", rpm=0),
                dict(name="x", budget_period="year"), dict(name="x", tpm=-5)):
        with pytest.raises(KeyAdminError):
            KeySpec(**bad)  # type: ignore[arg-type]


def test_create_stores_only_a_hash(store) -> None:
    repo = KeyRepo(store)
    key, secret = repo.create(KeySpec("team-a", budget_usd=50.0, budget_period="month", rpm=60, tpm=100000,
                                      models=("local-*", "gpt-4o"), local_only=True, expires_in_s=86400), now=1000.0)
    assert secret.startswith(KEY_PREFIX) and len(secret) >= len(KEY_PREFIX) + 43
    dump = repr(store.query("SELECT * FROM api_keys"))
    assert secret not in dump and secret[len(KEY_PREFIX) + 6:] not in dump
    assert hash_key(secret) in dump
    got = repo.get("team-a")
    assert got == key and got.models == ("local-*", "gpt-4o") and got.local_only and got.rpm == 60
    assert got.expires_at == 1000.0 + 86400 and repo.get(key.id) == key and repo.find(secret) == key
    with pytest.raises(KeyAdminError, match="exists already"):
        repo.create(KeySpec("team-a"))


def test_revoke_and_rotate(store) -> None:
    repo = KeyRepo(store)
    key, old = repo.create(KeySpec("svc"), now=1000.0)
    rotated, new = repo.rotate("svc", grace_s=60.0, now=2000.0)
    assert rotated.id == key.id and rotated.key_hash == hash_key(new) != key.key_hash
    assert rotated.previous_hash == hash_key(old) and rotated.previous_until == 2060.0
    revoked = repo.revoke("svc", now=3000.0)
    assert revoked.state(3000.0) == "revoked" and revoked.previous_until is None
    with pytest.raises(KeyAdminError, match="revoked"):
        repo.rotate("svc", now=3001.0)
    with pytest.raises(KeyAdminError, match="no key"):
        repo.revoke("nope")


def _rec(ts: float, key_id: str, cost: float, error_class: str | None = None) -> LedgerRecord:
    return LedgerRecord(ts=ts, request_id=f"r{ts}", model_id="api-x", tier="frontier", is_local=False,
                        provider="openai", tokens_in=10, tokens_out=5, cost_usd=cost, key_id=key_id,
                        status="error" if error_class else "ok", error_class=error_class)


def test_usage_from_the_ledger_trigger(store) -> None:
    repo = KeyRepo(store)
    day = calendar.timegm((2026, 12, 2, 12, 0, 0))
    k, _ = repo.create(KeySpec("a", budget_usd=1.0, budget_period="day"), now=day - 10 * 86400)
    m, _ = repo.create(KeySpec("b", budget_usd=1.0, budget_period="month"), now=day - 10 * 86400)
    store.insert_ledger([
        _rec(day - 86400, k.id, 0.25),          # yesterday: not in today's budget
        _rec(day, k.id, 0.5),
        _rec(day + 60, k.id, 0.0, "insufficient_quota"),
        _rec(day - 86400, m.id, 0.125),
        _rec(day, "", 9.0),                     # no key: not counted anywhere
    ])
    u = repo.usage([k, m], now=day + 120)
    assert u[k.id].period_cost_usd == pytest.approx(0.5) and u[k.id].total_cost_usd == pytest.approx(0.75)
    assert u[k.id].requests == 3 and u[k.id].refused == 1 and u[k.id].tokens == 45
    assert u[m.id].period_cost_usd == pytest.approx(0.125)
    assert store.query_one("SELECT COUNT(*) FROM api_key_usage WHERE key_id = ''")[0] == 0
    assert repo.usage([k], now=day + 120, totals=False)[k.id].period_cost_usd == pytest.approx(0.5)

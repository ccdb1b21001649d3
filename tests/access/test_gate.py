"""The gate's pure decisions: who is asking, which model, budget, limits, exposure."""

from __future__ import annotations

import pytest

from wilton_core.access.caller import Caller
from wilton_core.access.gate import (
    KeyTable,
    Refusal,
    authenticate,
    check_budget,
    check_model,
    exposure_error,
    presented_key,
    privacy_local_only,
    rate_refusal,
)
from wilton_core.access.keys import ApiKey, hash_key
from wilton_core.access.ratelimit import LimitCheck, format_reset, storage_uri

MODELS = {"local-a": True, "local-b": True, "api-x": False}
SECRET = "sk-wilton-" + "a" * 43


def key(**kw: object) -> ApiKey:
    base: dict[str, object] = dict(id="key_1", name="team", key_hash=hash_key(SECRET), prefix=SECRET[:16],
                                   created_at=0.0, updated_at=0.0)
    base.update(kw)
    return ApiKey(**base)  # type: ignore[arg-type]


def test_presented_key_forms() -> None:
    assert presented_key([(b"authorization", b"Bearer sk-1")]) == "sk-1"
    assert presented_key([(b"Authorization", b"bearer   sk-1 ")]) == "sk-1"
    assert presented_key([(b"x-api-key", b"sk-2")]) == "sk-2"
    assert presented_key([]) is None
    assert presented_key([(b"authorization", b"Basic dXNlcjpwYXNz")]) == ""  # present, but wrong
    assert len(presented_key([(b"x-api-key", b"k" * 10000)]) or "") == 512


def test_privacy_header_fails_closed() -> None:
    assert privacy_local_only([(b"x-wilton-privacy", b"local-only")]) is True
    assert privacy_local_only([]) is False
    bad = privacy_local_only([(b"x-wilton-privacy", b"lcoal-only")])
    assert isinstance(bad, Refusal) and bad.status == 400 and bad.local_only


def test_authenticate() -> None:
    import hashlib

    master = "m" * 24
    mh = hashlib.sha256(master.encode()).digest()
    table = KeyTable.of([key()], now=10.0)
    assert isinstance(authenticate(master, mh, table, 10.0), Caller)
    assert authenticate(master, mh, table, 10.0).admin  # type: ignore[union-attr]
    assert authenticate(SECRET, mh, table, 10.0) == key()
    for presented in (None, "", "sk-wilton-wrong", master + "x", "Bearer"):
        r = authenticate(presented, mh, table, 10.0)
        assert isinstance(r, Refusal) and r.status == 401 and r.code == "invalid_api_key"
        assert SECRET not in r.message and master not in r.message
    revoked = KeyTable.of([key(revoked_at=5.0)], now=10.0)
    r = authenticate(SECRET, None, revoked, 10.0)
    assert isinstance(r, Refusal) and "revoked" in r.message and r.key_id == "key_1"
    assert revoked.configured  # a revoked last key keeps the gate closed
    expired = KeyTable.of([key(expires_at=9.0)], now=10.0)
    assert "expired" in authenticate(SECRET, None, expired, 10.0).message  # type: ignore[union-attr]


def test_rotation_grace() -> None:
    old = "sk-wilton-" + "b" * 43
    k = key(previous_hash=hash_key(old), previous_until=20.0)
    assert authenticate(old, None, KeyTable.of([k], now=10.0), 10.0) == k
    assert isinstance(authenticate(old, None, KeyTable.of([k], now=21.0), 21.0), Refusal)


def test_check_model() -> None:
    team = Caller("key_1", "team", False, ("local-*",))
    assert check_model(team, "auto", MODELS) is None
    assert check_model(team, "local-b", MODELS) is None
    r = check_model(team, "api-x", MODELS)
    assert r is not None and r.status == 403 and r.code == "model_not_allowed"
    assert check_model(team, "does-not-exist", MODELS).status == 403  # type: ignore[union-attr]
    nothing = Caller("key_2", "x", False, ("gpt-*",))
    assert check_model(nothing, "auto", MODELS).code == "model_not_allowed"  # type: ignore[union-attr]
    private = Caller("key_3", "p", False, (), True)
    assert check_model(private, "api-x", MODELS).code == "model_not_local"  # type: ignore[union-attr]
    assert check_model(private, "api", MODELS).code == "model_not_local"  # type: ignore[union-attr]
    assert check_model(private, "local", MODELS) is None and check_model(private, "local-a", MODELS) is None


def test_check_budget() -> None:
    k = key(budget_usd=1.0, budget_period="month")
    assert check_budget(k, 0.99, 0.0) is None
    r = check_budget(k, 1.0, 0.0)
    assert r is not None and r.status == 429 and r.code == "insufficient_quota" and "1970-02-01" in r.message
    assert check_budget(key(), 1e9, 0.0) is None  # no budget
    assert check_budget(key(budget_usd=0.0), 0.0, 0.0) is not None


def test_rate_refusal_headers() -> None:
    checks = [LimitCheck("tokens", 1000, 400, 30.0, True), LimitCheck("requests", 2, 0, 12.2, False)]
    r = rate_refusal(checks, key())
    assert r is not None and r.status == 429 and r.code == "rate_limit_exceeded" and r.type == "requests"
    h = dict(r.headers)
    assert h[b"retry-after"] == b"13" and h[b"x-ratelimit-limit-requests"] == b"2"
    assert h[b"x-ratelimit-remaining-requests"] == b"0" and h[b"x-ratelimit-remaining-tokens"] == b"400"
    assert h[b"x-ratelimit-reset-requests"] == b"12.2s"
    assert rate_refusal(checks[:1], key()) is None


def test_format_reset_and_uri() -> None:
    assert format_reset(0.02) == "20ms" and format_reset(1.5) == "1.5s" and format_reset(360) == "6m0s"
    assert storage_uri(None) == "async+memory://"
    assert storage_uri("redis://127.0.0.1:6379/0") == "async+redis://127.0.0.1:6379/0"
    with pytest.raises(ValueError):
        storage_uri("http://x")


def test_exposure() -> None:
    assert exposure_error("127.0.0.1", False, False) is None
    assert exposure_error("::1", False, False) is None and exposure_error("localhost", False, False) is None
    msg = exposure_error("0.0.0.0", False, False)
    assert msg is not None and "WILTON_MASTER_KEY" in msg and "\n" not in msg
    assert exposure_error("0.0.0.0", True, False) is None and exposure_error("10.0.0.2", False, True) is None


def test_spend_book_counts_each_record_once() -> None:
    from wilton_core.access.spend import SpendBook

    book = SpendBook()
    book.add("k", 1.0)      # seq 1
    book.tick()             # seq 2: a refusal row (no cost) through the same writer
    book.add("k", 2.0)      # seq 3
    book.add("j", 5.0)      # seq 4
    assert book.of("k") == 3.0 and book.of("j") == 5.0
    # the store has the first two rows written (settled count 2) and says k spent 1.0
    book.settle({"k": 1.0}, settled_seq=2)
    assert book.of("k") == 3.0 and book.of("j") == 5.0  # 1.0 stored + 2.0 still pending
    book.settle({"k": 3.0, "j": 5.0}, settled_seq=4)
    assert book.of("k") == 3.0 and book.of("j") == 5.0 and book.pending == {}

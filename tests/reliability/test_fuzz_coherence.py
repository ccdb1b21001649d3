"""Schemathesis against the coherence daemon's FastAPI schema, anonymous and with a phi:write token.

Zero 5xx; every 4xx in the daemon's documented shape: {"detail": "<message>"} or, for 422,
{"detail": [{"loc": [...], "msg": "...", "type": "..."}]} (never echoing the rejected input).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from wilton_core.coherence.app import create_app

from ._coherence import PASSWORD, make_service, snapshot
from ._fuzz import fuzz, operations

MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    svc, store = make_service(tmp_path_factory.mktemp("fuzz-coherence"))
    app = create_app(svc)
    yield svc, app
    svc.stop()
    store.close()


@pytest.fixture(scope="module")
def coherence_schema(daemon):
    _, app = daemon
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _ops() -> list[tuple[str, str]]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        svc, store = make_service(Path(d))
        try:
            return operations(schemathesis.openapi.from_dict(create_app(svc).openapi()))
        finally:
            svc.stop()
            store.close()


OPERATIONS = _ops()


def assert_daemon_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"detail"}, body
    detail = body["detail"]
    if response.status_code == 422:
        assert isinstance(detail, list) and detail
        for item in detail:
            assert set(item) == {"loc", "msg", "type"}, item
    else:
        assert isinstance(detail, str) and detail


def check(case, response) -> None:
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    assert "Traceback" not in response.text
    assert PASSWORD not in response.text
    if 400 <= response.status_code < 500:
        assert_daemon_error_shape(response)


@pytest.mark.parametrize(("label", "mode"), OPERATIONS)
def test_anonymous_fuzz_never_5xx_and_changes_nothing(daemon, coherence_schema, label, mode) -> None:
    svc, _ = daemon
    before = snapshot(svc)
    assert fuzz(coherence_schema, label, mode, check, max_examples=MAX_EXAMPLES) >= 1
    after = snapshot(svc)
    # anonymous requests may only add login-failure rows; nothing protected moves
    assert after["target"] == before["target"] and after["audit"] == before["audit"]
    assert after["users"] == before["users"]


@pytest.mark.parametrize(("label", "mode"), OPERATIONS)
def test_authenticated_fuzz_never_5xx(daemon, coherence_schema, label, mode) -> None:
    svc, _app = daemon
    pair = svc.auth.login("admin", PASSWORD, "fuzzer")
    fuzz(coherence_schema, label, mode, check, max_examples=MAX_EXAMPLES,
         headers={"Authorization": f"Bearer {pair.access_token}"})
    st = svc.state()
    assert 0.0 <= st.phi_target <= 1.0 and 0.0 <= st.threshold <= 1.0


async def test_zz_daemon_still_serves_after_fuzzing(daemon) -> None:
    _svc, app = daemon
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as c:
        assert (await c.get("/healthz")).status_code == 200

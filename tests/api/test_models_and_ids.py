"""GET /v1/models/{id} as OpenAI serves it; x-request-id honoured and echoed; body id = ledger id."""

from __future__ import annotations

import openai
import pytest

from tests.api.conftest import ledger_row
from wilton_core.router.request_ids import client_request_id

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(stack):
    return openai.OpenAI(base_url=stack["base"] + "/v1", api_key="unused", max_retries=0, timeout=30)


def test_retrieve_model(client):
    m = client.models.retrieve("local-a")
    assert m.id == "local-a" and m.object == "model" and m.owned_by == "openai" and m.created > 0
    assert client.models.retrieve("auto").owned_by == "wilton"


def test_retrieve_unknown_model_is_openai_404(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.models.retrieve("nope")
    assert ei.value.body["code"] == "model_not_found" and ei.value.body["param"] == "model"


def test_body_id_is_the_ledger_request_id(client, stack):
    raw = client.chat.completions.with_raw_response.create(
        model="local-a", messages=[{"role": "user", "content": "hi"}])
    r = raw.parse()
    assert r.id == raw.headers["x-request-id"] and r.id.startswith("chatcmpl-")
    assert ledger_row(stack["db"], r.id)[1] == "local-a"


def test_stream_chunks_carry_the_ledger_request_id(client, stack):
    raw = client.chat.completions.with_raw_response.create(
        model="local-b", messages=[{"role": "user", "content": "hi"}], stream=True)
    ids = {c.id for c in raw.parse()}
    assert ids == {raw.headers["x-request-id"]}
    assert ledger_row(stack["db"], ids.pop())[1] == "local-b"


def test_client_request_id_honoured_and_echoed(client, stack):
    raw = client.chat.completions.with_raw_response.create(
        model="local-a", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-request-id": "job-7:step-3"})
    assert raw.headers["x-request-id"] == "job-7:step-3" == raw.parse().id
    assert ledger_row(stack["db"], "job-7:step-3")[2] == "ok"


def test_unsafe_request_id_is_replaced(client):
    raw = client.chat.completions.with_raw_response.create(
        model="local-a", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-request-id": "a b\"c"})
    assert raw.headers["x-request-id"].startswith("chatcmpl-")


def test_error_replies_echo_the_request_id(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}],
                                       extra_headers={"x-request-id": "err-1"})
    assert ei.value.response.headers["x-request-id"] == "err-1"


@pytest.mark.parametrize(("value", "ok"), [
    (b"abc", True), (b"A-1_2.3:4/5+6=7@8", True), (b"x" * 128, True), (b"x" * 129, False), (b"", False),
    (b"-lead", False), (b"has space", False), (b"new\nline", False), (b"caf\xc3\xa9", False), (b"q\"", False),
])
def test_client_request_id_validation(value, ok):
    got = client_request_id([(b"host", b"x"), (b"x-request-id", value)])
    assert (got == value.decode("utf-8", "replace")) if ok else got is None
    assert client_request_id([]) is None

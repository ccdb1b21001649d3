"""Schemathesis over the extra client APIs on a real router process: never a 5xx, never a traceback,
and every 4xx in the API's own error shape (Anthropic's for /v1/messages*, OpenAI's elsewhere)."""

from __future__ import annotations

import pytest
import schemathesis

from tests.reliability._fuzz import fuzz, operations
from wilton_core.router.openapi import openapi_schema

pytestmark = pytest.mark.e2e

NEW_PATHS = ("/v1/messages", "/v1/responses", "/v1/embeddings", "/v1/feedback", "/v1/models/{model_id}")
OPERATIONS = [o for o in operations(schemathesis.openapi.from_dict(openapi_schema()))
              if o[0].split(" ", 1)[1].startswith(NEW_PATHS)
              # any string is a valid model id in a path: there is no negative case to generate
              and o != ("GET /v1/models/{model_id}", "negative")]
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def api_schema(stack):
    schema = schemathesis.openapi.from_url(stack["base"] + "/openapi.json")
    schema.config.update(base_url=stack["base"])
    return schema


def check(case, response) -> None:
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    assert "Traceback" not in response.text
    if response.status_code < 400:
        return
    body = response.json()
    if case.path.startswith("/v1/messages"):
        assert body["type"] == "error" and set(body) == {"type", "error"}, body
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)
    else:
        assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"]), body


def test_every_new_operation_is_covered() -> None:
    assert {o[0] for o in OPERATIONS} == {"POST /v1/messages", "POST /v1/messages/count_tokens",
                                          "POST /v1/responses", "POST /v1/embeddings", "POST /v1/feedback",
                                          "GET /v1/models/{model_id}"}


@pytest.mark.parametrize(("label", "mode"), OPERATIONS)
def test_new_apis_never_5xx(api_schema, label, mode) -> None:
    assert fuzz(api_schema, label, mode, check, max_examples=MAX_EXAMPLES, call_kwargs={"timeout": 60}) >= 1


def test_zz_no_unhandled_errors_in_the_router_log(stack) -> None:
    assert "unhandled error" not in stack["router"].log_text()

"""Schemathesis against the real router process's own /openapi.json (positive and negative cases).

Every answer is either a success or a 4xx in the documented OpenAI error shape
({"error": {"message", "type", "param", "code"}}); never a 5xx, never a traceback.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from wilton_core.router.openapi import openapi_schema

from ._bench import load
from ._fuzz import fuzz, operations

faults = load("faults")

pytestmark = pytest.mark.e2e
MAX_EXAMPLES = 50
# the extra client APIs have their own error shapes and are fuzzed in tests/api/test_fuzz_apis.py
_OTHER_APIS = ("/v1/messages", "/v1/responses", "/v1/embeddings", "/v1/models/{model_id}")
OPERATIONS = [o for o in operations(schemathesis.openapi.from_dict(openapi_schema()))
              if not o[0].split(" ", 1)[1].startswith(_OTHER_APIS)]


@pytest.fixture(scope="module")
def router_stack(tmp_path_factory):
    s = faults.RouterStack(tmp_path_factory.mktemp("fuzz-router")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def router_schema(router_stack):
    schema = schemathesis.openapi.from_url(router_stack.url + "/openapi.json")
    schema.config.update(base_url=router_stack.url)
    return schema


def assert_router_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str)
    assert err["param"] is None or isinstance(err["param"], str)
    assert err["code"] is None or isinstance(err["code"], str)


def check(case, response) -> None:
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    assert "Traceback" not in response.text
    if 400 <= response.status_code < 500:
        assert_router_error_shape(response)


@pytest.mark.parametrize(("label", "mode"), OPERATIONS)
def test_router_never_5xx_and_4xx_are_openai_errors(router_schema, label, mode) -> None:
    ran = fuzz(router_schema, label, mode, check, max_examples=MAX_EXAMPLES, call_kwargs={"timeout": 30})
    assert ran >= 1


def test_the_schema_is_the_one_served(router_stack) -> None:
    assert httpx.get(router_stack.url + "/openapi.json").json() == openapi_schema()


def test_zz_no_unhandled_errors_in_the_router_log(router_stack) -> None:
    # after the fuzzer (file order): an exception caught by the 500 handler is logged there
    assert "unhandled error" not in router_stack.log_text()

"""Schemathesis against the real router process's own /openapi.json, once per provider kind.

Every answer is either a success or a 4xx in the documented OpenAI error shape
({"error": {"message", "type", "param", "code"}}); never a 5xx, never a traceback. The router
runs with a single model in front of the fake upstream, once for each provider kind
(OpenAI-compatible, Ollama, Anthropic, Gemini), so every generated request that passes the
router's own validation goes through that provider's translation and reply parsing.
Generated bodies name `model: "auto"` so they reach the provider instead of a 404.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from wilton_core.router.openapi import openapi_schema
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

from ._fuzz import MODES, operations

pytestmark = pytest.mark.e2e
KINDS = ("openai", "ollama", "anthropic", "gemini")
# Four router runs of the chat operation, positive and negative: bounded so the four together
# stay well under a minute on a 2-core VM; the other operations take no body.
MAX_EXAMPLES = 20
# the extra client APIs have their own error shapes and are fuzzed in tests/api/test_fuzz_apis.py
_OTHER_APIS = ("/v1/messages", "/v1/responses", "/v1/embeddings", "/v1/feedback", "/v1/models/{model_id}",
               "/v1/audio")
OPERATIONS = [o for o in operations(schemathesis.openapi.from_dict(openapi_schema()))
              if not o[0].split(" ", 1)[1].startswith(_OTHER_APIS)]
FUZZ_ENV = {"FUZZ_UPSTREAM_KEY": "sk-fuzz-not-a-real-key-0123456789"}

CONFIG = """
[[models]]
id = "only-{kind}"
provider = "{kind}"
model = "fuzz-{kind}"
base_url = "{base_url}"
api_key_env = "FUZZ_UPSTREAM_KEY"
tier = "selfhost"
is_local = true
capability = "advanced"
context_window = 1000000
supports_tools = true
supports_vision = true
timeout_s = 5.0

[routing]
backoff_base_s = 0.01
backoff_max_s = 0.05
cooldown_s = 0.5
cooldown_max_s = 2.0
control_refresh_s = 0.5
"""


class OneModelStack:
    """The fake upstream in this process and one `wilton-router` process with one model of `kind`."""

    def __init__(self, workdir: Path, kind: str) -> None:
        self.workdir = workdir
        self.kind = kind
        self.fake: FakeUpstream | None = None
        self.router: ManagedProcess | None = None
        self.url = ""

    def start(self) -> OneModelStack:
        from wilton_core.store import open_store
        from wilton_core.store.base import ControlState

        self.fake = FakeUpstream(models=(f"fuzz-{self.kind}",), name=f"fuzz-{self.kind}").start()
        base_url = self.fake.url + ("/v1" if self.kind == "openai" else "")
        config = self.workdir / "wilton.toml"
        config.write_text(CONFIG.format(kind=self.kind, base_url=base_url))
        store_url = f"sqlite:///{self.workdir / 'wilton.db'}"
        store = open_store(store_url)
        try:
            store.put_control_state(ControlState(phi_target=0.75, threshold=1.0, updated_at=time.time()))
        finally:
            store.close()
        port = free_port()
        env = {"WILTON_STORE_URL": store_url, "WILTON_LEDGER_FLUSH_S": "0.2", "WILTON_LOG_LEVEL": "warning",
               **FUZZ_ENV}
        self.router = ManagedProcess.python_module(
            "wilton_core.router.cli", "--config", str(config), "--port", str(port), "--replica-id", "fuzz",
            env=env, log=self.workdir / "router.log").start(f"http://127.0.0.1:{port}/readyz", timeout=60)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def log_text(self) -> str:
        return self.router.log_text() if self.router else ""

    def stop(self) -> None:
        if self.router is not None:
            self.router.stop()
        if self.fake is not None:
            self.fake.stop()


@pytest.fixture(scope="module", params=KINDS)
def router_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    s = OneModelStack(tmp_path_factory.mktemp(f"fuzz-router-{request.param}"), request.param).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def router_schema(router_stack: OneModelStack):
    schema = schemathesis.openapi.from_url(router_stack.url + "/openapi.json")
    schema.config.update(base_url=router_stack.url)
    return schema


def assert_router_error_shape(response: Any) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str)
    assert err["param"] is None or isinstance(err["param"], str)
    assert err["code"] is None or isinstance(err["code"], str)


def check(case: Any, response: Any) -> None:
    assert response.status_code < 500, f"{case.method} {case.path} {response.text[:500]}\nbody: {case.body!r:.3000}"
    assert "Traceback" not in response.text
    if 400 <= response.status_code < 500:
        assert_router_error_shape(response)


def fuzz_auto(schema: Any, label: str, mode: str, *, max_examples: int) -> tuple[int, int]:
    """Run `check` on up to `max_examples` generated cases; (cases run, cases answered 200)."""
    method, path = label.split(" ", 1)
    op = schema[path][method]
    ran, ok = [0], [0]

    # no shrinking: against a live router it can take minutes; the failing case is reported as is
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=MODES[mode]))
    def run(case: Any) -> None:
        if isinstance(case.body, dict) and isinstance(case.body.get("model", "auto"), str):
            case.body["model"] = "auto"  # reach the one model, whatever string was generated
        ran[0] += 1
        response = case.call(timeout=30)
        ok[0] += response.status_code == 200
        check(case, response)

    run()
    return ran[0], ok[0]


@pytest.mark.parametrize(("label", "mode"), OPERATIONS)
def test_router_never_5xx_and_4xx_are_openai_errors(router_schema, router_stack: OneModelStack,
                                                    label: str, mode: str) -> None:
    ran, ok = fuzz_auto(router_schema, label, mode, max_examples=MAX_EXAMPLES)
    assert ran >= 1
    if label == "POST /v1/chat/completions" and mode == "positive":
        # valid requests did reach the provider under test and were answered through it
        assert ok >= 1 and router_stack.fake is not None
        assert router_stack.fake.stats()["total"] >= 1


def test_the_schema_is_the_one_served(router_stack: OneModelStack) -> None:
    assert httpx.get(router_stack.url + "/openapi.json").json() == openapi_schema()


def test_zz_no_unhandled_errors_in_the_router_log(router_stack: OneModelStack) -> None:
    # after the fuzzer (file order within each kind): an exception caught by the 500 handler is logged there
    assert "unhandled error" not in router_stack.log_text()

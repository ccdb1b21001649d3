"""One real router process over one fake upstream speaking every provider's wire format, shared by
the API tests (Anthropic Messages, Responses, embeddings, model lookup)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

CONFIG = """
[[models]]
id = "local-a"
provider = "openai"
model = "local-a"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
supports_tools = true

[[models]]
id = "local-b"
provider = "ollama"
model = "local-b"
base_url = "{fake}"
tier = "selfhost"
is_local = true
supports_tools = true

[[models]]
id = "local-vis"
provider = "openai"
model = "local-vis"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
supports_tools = true
supports_vision = true

[[models]]
id = "api-edge"
provider = "gemini"
model = "api-edge"
base_url = "{fake}"
api_key_env = "FAKE_GEMINI_KEY"
tier = "edge"
is_local = false
supports_tools = true
supports_vision = true
input_cost_per_mtok = 0.1
output_cost_per_mtok = 0.4

[[models]]
id = "api-frontier"
provider = "anthropic"
model = "api-frontier"
base_url = "{fake}"
api_key_env = "FAKE_ANTHROPIC_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
supports_tools = true
supports_vision = true
input_cost_per_mtok = 3.0
output_cost_per_mtok = 15.0

[[models]]
id = "emb-local"
provider = "openai"
model = "emb-a"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
kind = "embedding"
embedding_group = "emb-a"

[[models]]
id = "emb-ollama"
provider = "ollama"
model = "emb-a"
base_url = "{fake}"
tier = "selfhost"
is_local = true
kind = "embedding"
embedding_group = "emb-a"

[[models]]
id = "emb-api"
provider = "openai"
model = "emb-b"
base_url = "{fake}/v1"
api_key_env = "FAKE_OPENAI_KEY"
tier = "edge"
is_local = false
kind = "embedding"
input_cost_per_mtok = 20.0

[[models]]
id = "emb-gemini"
provider = "gemini"
model = "emb-g"
base_url = "{fake}"
api_key_env = "FAKE_GEMINI_KEY"
tier = "edge"
is_local = false
kind = "embedding"

[[models]]
id = "local-embed"
provider = "minilm"
model = "all-MiniLM-L6-v2"
tier = "selfhost"
is_local = true
kind = "embedding"

[routing]
probe_models = false  # scripted upstream failures must meet the test's requests, not background probes
embedding_default = "emb-local"
backoff_base_s = 0.01
max_body_bytes = 262144
max_retry_after_s = 0.2
"""

CHAT_MODELS = ["local-a", "local-b", "api-edge", "api-frontier"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("api-e2e")
    fake = FakeUpstream(models=[*CHAT_MODELS, "local-vis"]).start()
    cfg = tmp / "wilton.toml"
    cfg.write_text(CONFIG.format(fake=fake.url))
    port = free_port()
    db = tmp / "wilton.db"
    env = {"WILTON_STORE_URL": f"sqlite:///{db}", "FAKE_GEMINI_KEY": "g-secret-123",
           "FAKE_ANTHROPIC_KEY": "a-secret-456", "FAKE_OPENAI_KEY": "o-secret-789", "WILTON_LEDGER_FLUSH_S": "0.05"}
    from wilton_core.store import open_store
    from wilton_core.store.base import ControlState

    store = open_store(f"sqlite:///{db}")
    store.migrate()
    # every auto request local-first: deterministic whatever the difficulty scorer says
    store.put_control_state(ControlState(phi_target=0.75, threshold=1.0, updated_at=time.time()))
    store.close()
    router = ManagedProcess.python_module(
        "wilton_core.router.cli", "--config", str(cfg), "--port", str(port), env=env, log=tmp / "router.log"
    ).start(f"http://127.0.0.1:{port}/readyz", timeout=60)
    state = {"base": f"http://127.0.0.1:{port}", "fake": fake, "router": router, "db": db}
    yield state
    router.stop()
    fake.stop()


def ledger_row(db: Any, request_id: str, timeout: float = 5.0) -> tuple[Any, ...]:
    """The ledger row of one request (the writer flushes every 50 ms here); polls, bounded in time."""
    from wilton_core.store import open_store

    deadline = time.monotonic() + timeout
    while True:
        store = open_store(f"sqlite:///{db}")
        try:
            rows = store.query("SELECT request_id, model_id, status, tokens_in, tokens_out, cost_usd, stream, "
                               "http_status FROM ledger WHERE request_id = ?", (request_id,))
        finally:
            store.close()
        if rows or time.monotonic() > deadline:
            assert rows, f"no ledger row for {request_id}"
            return tuple(rows[0])
        time.sleep(0.05)

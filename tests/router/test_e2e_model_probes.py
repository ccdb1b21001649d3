"""The router tests every model at start and keeps the ones that failed out of auto routing."""

from __future__ import annotations

import time

import httpx
import pytest

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = pytest.mark.e2e

CONFIG = """
[[models]]
id = "good"
provider = "openai"
model = "good"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true

[[models]]
id = "broken"
provider = "openai"
model = "broken"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
"""


def test_failed_probe_excludes_model_from_auto(tmp_path):
    with FakeUpstream(models=["good", "broken"]) as fake:
        fake.script("broken", status=500)
        cfg = tmp_path / "w.toml"
        cfg.write_text(CONFIG.format(fake=fake.url))
        port = free_port()
        env = {"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WILTON_CAPTURE_PROMPTS": "1"}
        with ManagedProcess.python_module("wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                                          env=env, log=tmp_path / "router.log") as router:
            router.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            status = {}
            while time.monotonic() < deadline:
                status = {m["id"]: m.get("wilton", {}).get("status") for m in
                          httpx.get(base + "/v1/models").json()["data"]}
                if status.get("broken") == "failed" and status.get("good") == "available":
                    break
                time.sleep(0.2)
            assert status["broken"] == "failed" and status["good"] == "available", status
            seen = set()
            for i in range(20):
                r = httpx.post(base + "/v1/chat/completions",
                               json={"messages": [{"role": "user", "content": f"hello {i}"}]}, timeout=30)
                assert r.status_code == 200
                seen.add(r.headers["x-wilton-model"])
                assert r.headers["x-wilton-fallbacks"] == "0"
            assert seen == {"good"}
            # a pinned request still reaches the model the operator asked for (and fails honestly)
            r = httpx.post(base + "/v1/chat/completions", json={
                "model": "broken", "messages": [{"role": "user", "content": "x"}]}, timeout=30)
            assert r.status_code == 503 and "broken" in r.json()["error"]["message"]
        # opt-in prompt capture: the text went to request_prompts (for insight --include-prompts)
        from wilton_core.store import open_store

        store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
        try:
            prompts = dict(store.query("SELECT request_id, prompt FROM request_prompts"))
            ids = {r[0] for r in store.query("SELECT request_id FROM ledger")}
        finally:
            store.close()
        assert len(prompts) == 21 and set(prompts) <= ids
        assert "user: hello 7" in prompts.values()

"""The hpc batch runner presents the router's client key (api_key=, from Settings.router_api_key: WILTON_ROUTER_API_KEY)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from wilton_core.hpc.repo import TaskRepo
from wilton_core.hpc.runner import BatchRunner
from wilton_core.store import open_store


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_runner_sends_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    seen: list[str | None] = []

    def router(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer sk-wilton-test":
            return httpx.Response(401, json={"error": {"message": "no", "type": "invalid_request_error",
                                                       "param": None, "code": "invalid_api_key"}})
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "auto"}]})
        return httpx.Response(200, headers={"x-wilton-model": "local-a"}, json={
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    store.migrate()
    repo = TaskRepo(store)
    from wilton_core.hpc.model import parse_task_file

    bid = repo.create_batch(parse_task_file({"name": "keys", "tasks": [{"prompt": "hello"}]}), now=0, concurrency=1)
    if how == "argument":
        key = "sk-wilton-test"
    else:  # what `wiltonctl hpc` and the detached worker do: the key is a field of the settings
        from wilton_core.settings import load_settings

        monkeypatch.setenv("WILTON_ROUTER_API_KEY", "sk-wilton-test")
        key = load_settings().router_api_key_value()
    out = await BatchRunner(repo, "http://router.test", transport=httpx.MockTransport(router), api_key=key).run(bid)
    store.close()
    assert out.ran == 1 and seen and all(h == "Bearer sk-wilton-test" for h in seen)

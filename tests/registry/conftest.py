import json

import httpx
import pytest

from wilton_core.config import ModelConfig


def openai_reply(model="m"):
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }


class Upstream:
    """A scripted upstream at the transport layer: behaviour per upstream model name."""

    def __init__(self):
        self.requests: list[httpx.Request] = []
        self.behaviour: dict[str, tuple[int, dict, dict]] = {}
        self.tags = ["dolphin-mistral:latest", "qwen2.5-coder:7b"]
        self.v1_models = ["smollm2"]

    def set(self, model, status=200, body=None, headers=None):
        self.behaviour[model] = (status, body if body is not None else openai_reply(model), headers or {})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/api/tags"):
            return httpx.Response(200, json={"models": [{"name": n, "model": n} for n in self.tags]})
        if path.endswith("/models") and request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [{"id": n, "object": "model"}
                                                                          for n in self.v1_models]})
        body = json.loads(request.content)
        status, reply, headers = self.behaviour.get(body["model"], (200, openai_reply(body["model"]), {}))
        if path.endswith("/api/chat") and status == 200:
            reply = {"model": body["model"], "message": {"role": "assistant", "content": "ok"},
                     "done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 1}
        return httpx.Response(status, json=reply, headers=headers)


@pytest.fixture
def upstream():
    return Upstream()


def model(id_, provider="openai", name=None, **kw):
    base = dict(id=id_, provider=provider, model=name or id_, base_url="http://upstream.test/v1",
                tier="edge", is_local=False)
    if provider == "ollama":
        base.update(base_url="http://ollama.test:11434", tier="selfhost", is_local=True)
    base.update(kw)
    return ModelConfig.model_validate(base)

"""The pure OpenAI → native request translations (Ollama, Gemini, Anthropic)."""

from __future__ import annotations

import httpx
import pytest

from wilton_core.config import ModelConfig
from wilton_core.errors import AuthError, BadRequestError
from wilton_core.providers.anthropic import finish_reason_of as anthropic_finish
from wilton_core.providers.anthropic import to_anthropic_request
from wilton_core.providers.gemini import GeminiProvider, to_gemini_request
from wilton_core.providers.gemini import finish_reason_of as gemini_finish
from wilton_core.providers.ollama import ollama_base_url, to_ollama_request


def cfg(provider: str, **kw: object) -> ModelConfig:
    return ModelConfig(id="t", provider=provider, model="up", tier="edge", is_local=False, **kw)  # type: ignore[arg-type]


USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("configured", "env", "expected"), [
    (None, {}, "http://127.0.0.1:11434"),
    (None, {"OLLAMA_HOST": "gpu-box:11434"}, "http://gpu-box:11434"),
    ("http://h:1/v1/", {"OLLAMA_HOST": "x"}, "http://h:1"),
])
def test_ollama_base_url(configured: str | None, env: dict[str, str], expected: str) -> None:
    assert ollama_base_url(configured, env) == expected


def test_ollama_formats_and_limits() -> None:
    r = to_ollama_request({"messages": [USER], "response_format": {"type": "json_object"}, "stop": "X",
                           "max_completion_tokens": 9}, cfg("ollama"), stream=True)
    assert r["format"] == "json" and r["options"] == {"stop": ["X"], "num_predict": 9} and r["stream"] is True
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    r = to_ollama_request({"messages": [USER], "response_format": {"type": "json_schema",
                                                                   "json_schema": {"name": "s", "schema": schema}}},
                          cfg("ollama", max_output_tokens=5), stream=False)
    assert r["format"] == schema and r["options"] == {"num_predict": 5}
    r = to_ollama_request({"messages": [{"role": "developer", "content": "rules"}, USER], "tools": [TOOL],
                           "tool_choice": "none"}, cfg("ollama"), stream=False)
    assert r["messages"][0]["role"] == "system" and "tools" not in r


def test_ollama_rejects_remote_image_urls() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}
    with pytest.raises(BadRequestError, match="data: URLs"):
        to_ollama_request(body, cfg("ollama"), stream=False)


def test_gemini_config_and_tool_choice() -> None:
    contents, config = to_gemini_request({
        "messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"}, USER,
                     {"role": "assistant", "content": "yo"}, USER],
        "temperature": 0.1, "n": 2, "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        "tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}}}, cfg("gemini"))
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert config["system_instruction"] == "a\n\nb" and config["candidate_count"] == 2
    assert config["response_mime_type"] == "application/json" and config["response_json_schema"] == {"type": "object"}
    assert config["tool_config"] == {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}}
    _, config = to_gemini_request({"messages": [USER], "tools": [TOOL], "tool_choice": "none"}, cfg("gemini"))
    assert "tools" not in config
    contents, _ = to_gemini_request({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, cfg("gemini"))
    assert contents[0]["parts"] == [{"file_data": {"file_uri": "https://example.com/cat.png", "mime_type": "image/png"}}]


def test_finish_reasons() -> None:
    assert [gemini_finish(r, False) for r in ("STOP", "MAX_TOKENS", "SAFETY", None)] == \
        ["stop", "length", "content_filter", "stop"]
    assert gemini_finish("STOP", True) == "tool_calls"
    assert [anthropic_finish(r) for r in ("end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal")] == \
        ["stop", "stop", "length", "tool_calls", "content_filter"]


def test_anthropic_request() -> None:
    r = to_anthropic_request({"messages": [
        {"role": "system", "content": "sys"}, USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "tool_call_id": "a", "content": "ra"},
        {"role": "tool", "tool_call_id": "b", "content": "rb"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}}]}],
        "temperature": 1.7, "tools": [TOOL], "tool_choice": "required", "user": "u-1"}, cfg("anthropic"), stream=True)
    assert r["system"] == "sys" and r["max_tokens"] == 1024 and r["temperature"] == 1.0 and r["stream"] is True
    assert [m["role"] for m in r["messages"]] == ["user", "assistant", "user"]
    # both tool results and the next user turn merge into one user message, as the API requires
    assert [b["type"] for b in r["messages"][2]["content"]] == ["tool_result", "tool_result", "image"]
    assert r["messages"][2]["content"][2]["source"] == {"type": "url", "url": "https://x/cat.jpg"}
    assert r["messages"][1]["content"][1]["input"] == {"x": 1}
    assert r["tools"] == [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    assert r["tool_choice"] == {"type": "any"} and r["metadata"] == {"user_id": "u-1"}
    assert to_anthropic_request({"messages": [USER]}, cfg("anthropic", max_output_tokens=77), False)["max_tokens"] == 77


def test_bad_base64_image_is_bad_request() -> None:
    body = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not base64@@"}}]}]}
    with pytest.raises(BadRequestError):
        to_anthropic_request(body, cfg("anthropic"), stream=False)


async def test_gemini_without_key_fails_before_any_request() -> None:
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        return httpx.Response(500)

    p = GeminiProvider(cfg("gemini", api_key_env="GEMINI_KEY"), transport=httpx.MockTransport(handler), environ={})
    with pytest.raises(AuthError, match="GEMINI_KEY"):
        await p.complete({"messages": [USER]})
    assert calls == []
    await p.aclose()


async def test_gemini_reads_the_key_at_call_time() -> None:
    keys: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        keys.append(req.headers["x-goog-api-key"])
        assert req.url.path == "/v1beta/models/up:generateContent"
        return httpx.Response(200, json={"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]},
                                                         "finishReason": "STOP"}],
                                         "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1}})

    env = {"GEMINI_KEY": "key-one-1234"}
    p = GeminiProvider(cfg("gemini", api_key_env="GEMINI_KEY", base_url="http://g.test"),
                       transport=httpx.MockTransport(handler), environ=env)
    c = await p.complete({"messages": [USER]})
    assert c.usage.prompt_tokens == 2 and c.data["choices"][0]["message"]["content"] == "ok"
    env["GEMINI_KEY"] = "key-two-5678"  # rotated without a restart
    await p.complete({"messages": [USER]})
    assert keys == ["key-one-1234", "key-two-5678"]
    await p.aclose()


def test_gemini_system_only_conversation_becomes_the_user_turn() -> None:
    # OpenAI answers it; Gemini's SDK refused it ("contents are required") and the provider called
    # that an unavailable upstream, opening the breaker (found by schemathesis, issue 13).
    contents, config = to_gemini_request({"messages": [{"role": "system", "content": "be brief"},
                                                       {"role": "developer", "content": "and kind"}]}, cfg("gemini"))
    assert contents == [{"role": "user", "parts": [{"text": "be brief\n\nand kind"}]}]
    assert "system_instruction" not in config
    with pytest.raises(BadRequestError, match="at least one message"):
        to_gemini_request({"messages": []}, cfg("gemini"))

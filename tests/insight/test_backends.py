"""Each backend against a local fake speaking its real wire format, through the real SDK."""

from __future__ import annotations

import pytest

from wilton_core.errors import AuthError, BadRequestError, RateLimitedError, UnavailableError
from wilton_core.insight.backends import (
    GeminiBackend,
    OpenAIBackend,
    RouterBackend,
    default_backend_name,
    make_backend,
)

from .conftest import FakeLLM, Seen, gemini_response, openai_completion


async def test_openai_backend_speaks_chat_completions(fake_llm: FakeLLM) -> None:
    fake_llm.reply = lambda s: (200, {}, openai_completion("## Explanation\nphi held."))
    b = OpenAIBackend(api_key="sk-test-key-0123456789abcdef", base_url=fake_llm.url + "/v1", max_retries=0)
    try:
        ans = await b.complete("sys", "numbers", max_tokens=500)
    finally:
        await b.aclose()
    assert ans.text.startswith("## Explanation") and ans.model == "gpt-4o-2024-08-06"
    assert (ans.prompt_tokens, ans.completion_tokens, ans.backend) == (321, 45, "openai")
    (seen,) = fake_llm.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test-key-0123456789abcdef"
    assert seen.body["model"] == "gpt-4o" and seen.body["max_tokens"] == 500
    assert [m["role"] for m in seen.body["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RateLimitedError), (401, AuthError), (400, BadRequestError), (503, UnavailableError)],
)
async def test_openai_backend_maps_status_errors(fake_llm: FakeLLM, status: int, error: type) -> None:
    fake_llm.reply = lambda s: (status, {"retry-after": "7"}, {"error": {"message": f"boom {status}"}})
    b = OpenAIBackend(api_key="k" * 20, base_url=fake_llm.url + "/v1", max_retries=0)
    with pytest.raises(error) as info:
        await b.complete("s", "u", 100)
    await b.aclose()
    assert f"boom {status}" in info.value.message
    if status == 429:
        assert info.value.retry_after == 7.0


async def test_openai_backend_without_key_or_server(refused_url: str) -> None:
    with pytest.raises(AuthError, match="OPENAI_API_KEY"):
        await OpenAIBackend(api_key=None).complete("s", "u", 10)
    b = OpenAIBackend(api_key="k" * 20, base_url=refused_url + "/v1", max_retries=0, timeout_s=5)
    with pytest.raises(UnavailableError):
        await b.complete("s", "u", 10)
    await b.aclose()


async def test_gemini_backend_speaks_generate_content(fake_llm: FakeLLM) -> None:
    fake_llm.reply = lambda s: (200, {}, gemini_response("Gemini says: rate limits at 14:00."))
    b = GeminiBackend.from_env({"GEMINI_KEY": "AIza-test-key", "WILTON_GEMINI_BASE_URL": fake_llm.url})
    try:
        ans = await b.complete("the system text", "the numbers", max_tokens=256)
    finally:
        await b.aclose()
    assert ans.text == "Gemini says: rate limits at 14:00." and ans.model == "gemini-2.5-flash-001"
    assert (ans.prompt_tokens, ans.completion_tokens) == (210, 30)
    (seen,) = fake_llm.seen
    assert seen.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert seen.headers["x-goog-api-key"] == "AIza-test-key"
    assert seen.body["contents"][0]["parts"][0]["text"] == "the numbers"
    assert seen.body["systemInstruction"]["parts"][0]["text"] == "the system text"
    assert seen.body["generationConfig"]["maxOutputTokens"] == 256


async def test_gemini_backend_errors(fake_llm: FakeLLM, refused_url: str) -> None:
    fake_llm.reply = lambda s: (429, {}, {"error": {"code": 429, "message": "Resource exhausted",
                                                    "status": "RESOURCE_EXHAUSTED"}})
    b = GeminiBackend(api_key="AIza-test-key", base_url=fake_llm.url)
    with pytest.raises(RateLimitedError, match="Resource exhausted"):
        await b.complete("s", "u", 10)
    await b.aclose()
    with pytest.raises(AuthError, match="GEMINI_KEY"):
        await GeminiBackend.from_env({}).complete("s", "u", 10)
    b = GeminiBackend(api_key="AIza-test-key", base_url=refused_url, timeout_s=5)
    with pytest.raises(UnavailableError):
        await b.complete("s", "u", 10)
    await b.aclose()


async def test_router_backend_uses_auto_and_reports_the_chosen_model(fake_llm: FakeLLM) -> None:
    def reply(s: Seen) -> tuple[int, dict[str, str], dict[str, object]]:
        return 200, {"x-wilton-model": "local-small", "x-wilton-tier": "selfhost"}, openai_completion("ok", "auto")

    fake_llm.reply = reply
    b = make_backend("local", environ={}, router_url=fake_llm.url)
    try:
        ans = await b.complete("s", "u", 64)
    finally:
        await b.aclose()
    assert ans.model == "local-small" and ans.backend == "local"
    assert fake_llm.seen[0].path == "/v1/chat/completions" and fake_llm.seen[0].body["model"] == "local"


async def test_router_backend_errors(fake_llm: FakeLLM, refused_url: str) -> None:
    fake_llm.reply = lambda s: (503, {}, {"error": {"message": "no healthy model", "type": "x"}})
    b = RouterBackend(base_url=fake_llm.url)
    with pytest.raises(UnavailableError, match="no healthy model"):
        await b.complete("s", "u", 10)
    fake_llm.reply = lambda s: (200, {}, {"choices": []})
    with pytest.raises(UnavailableError, match="malformed"):
        await b.complete("s", "u", 10)
    await b.aclose()
    b = RouterBackend(base_url=refused_url, timeout_s=5)
    with pytest.raises(UnavailableError, match="unreachable"):
        await b.complete("s", "u", 10)
    await b.aclose()


def test_default_backend_is_local_first() -> None:
    assert default_backend_name({}) == "local"
    assert default_backend_name({"GOOGLE_API_KEY": "x"}) == "openai"
    assert default_backend_name({"OPENAI_API_KEY": "x"}) == "openai"
    with pytest.raises(ValueError, match="unknown insight model"):
        make_backend("claude", environ={})

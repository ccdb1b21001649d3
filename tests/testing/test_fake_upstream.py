"""The fake upstream itself: control endpoint, scripts over time, pacing, stats, CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from wilton_core.testing.fake_script import PROFILES, Script, decide
from wilton_core.testing.fake_upstream import FakeUpstream


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream(models=("base",)).start() as fake:
        yield fake


@pytest.fixture
def client(server: FakeUpstream) -> Iterator[httpx.Client]:
    server.clear()
    with httpx.Client(base_url=server.url, timeout=5) as c:
        yield c


def ask(c: httpx.Client, model: str = "m", stream: bool = False, **kw: object) -> httpx.Response:
    return c.post("/v1/chat/completions", json={"model": model, "stream": stream,
                                                "messages": [{"role": "user", "content": "ping"}], **kw})


def test_control_endpoint_scripts_failures_then_recovery(client: httpx.Client) -> None:
    r = client.post("/_fake/script", json={"model": "m", "fail": [429, 503], "retry_after": 1})
    assert r.json() == {"ok": True}
    first, second, third = ask(client), ask(client), ask(client)
    assert (first.status_code, first.headers["retry-after"]) == (429, "1")
    assert first.json()["error"]["type"] == "rate_limit_exceeded"
    assert second.status_code == 503 and third.status_code == 200
    assert third.json()["choices"][0]["message"]["content"] == "[m] ping"
    assert ask(client, "other").status_code == 200  # scripts are per model


def test_status_times_and_flap(client: httpx.Client) -> None:
    client.post("/_fake/script", json=[{"model": "a", "status": 500, "times": 2}, {"model": "b", "flap": 2}])
    assert [ask(client, "a").status_code for _ in range(3)] == [500, 500, 200]
    assert [ask(client, "b").status_code for _ in range(6)] == [200, 200, 503, 503, 200, 200]


def test_bad_script_rejected(client: httpx.Client) -> None:
    r = client.post("/_fake/script", json={"model": "m", "explode": True})
    assert r.status_code == 400 and "explode" in r.json()["error"]
    assert client.post("/_fake/script", json={"profile": "warp"}).status_code == 400


def test_stats_record_bodies_and_counts(client: httpx.Client) -> None:
    ask(client, "x", temperature=0.2, stop=["Z"])
    client.post("/api/chat", json={"model": "x", "stream": False, "messages": [{"role": "user", "content": "yo"}]})
    s = client.get("/_fake/stats").json()
    assert s["total"] == 2 and s["by_model"] == {"x": 2}
    assert s["by_path"] == {"/v1/chat/completions": 1, "/api/chat": 1}
    assert s["last"][0]["body"]["temperature"] == 0.2 and s["last"][0]["body"]["stop"] == ["Z"]
    assert client.post("/_fake/script", json={"clear": True}).status_code == 200
    assert client.get("/_fake/stats").json()["total"] == 0


def test_openai_stream_wire_format(client: httpx.Client) -> None:
    r = ask(client, "m", stream=True, stream_options={"include_usage": True})
    assert r.headers["content-type"] == "text/event-stream"
    events = [e for e in r.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [orjson.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    r = ask(client, "m", stream=True)
    assert "usage" not in r.text  # only when asked, like OpenAI


def test_latency_and_token_pacing(client: httpx.Client, server: FakeUpstream) -> None:
    server.script("slow", latency_ms=120)
    t = time.perf_counter()
    ask(client, "slow")
    assert time.perf_counter() - t >= 0.12
    server.script("paced", tokens_per_s=200, reply_words=40)
    t = time.perf_counter()
    r = ask(client, "paced", stream=True)
    elapsed = time.perf_counter() - t
    assert r.text.count('"content":') >= 40 and 0.18 <= elapsed < 1.5


def test_routes_and_health(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/nope").status_code == 404
    assert client.post("/v1/chat/completions", content=b"[1, 2]").status_code == 400
    names = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert names == ["base"]


def test_decide_is_pure_and_profiles_shape_latency() -> None:
    frontier = Script(profile="frontier")
    med = PROFILES["frontier"].ttft_median_ms / 1000
    lo, mid, hi = (decide(frontier, 0, 0, u)[0].ttft_s for u in (0.1, 0.5, 0.9))
    assert lo < mid < hi and mid == pytest.approx(med)
    assert decide(frontier, 0, 0, 0.5) == decide(frontier, 0, 0, 0.5)
    assert decide(Script(reset=True, times=1), 0, 1, 0.5)[0].kind == "ok"
    action, consumed = decide(Script(malformed=True), 5, 3, 0.5)
    assert action.kind == "malformed" and consumed


@pytest.mark.e2e
def test_cli_serves_and_lists_its_name() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "wilton_core.testing.fake_upstream", "--port", "0",
                             "--name", "sim-frontier", "--latency-ms", "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(url + "/v1/models", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert [m["id"] for m in r.json()["data"]] == ["sim-frontier"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_hostile_scripts_send_exactly_what_they_say(client: httpx.Client, server: FakeUpstream) -> None:
    client.post("/_fake/script", json={"model": "raw", "raw_reply": '{"not": "openai"}', "times": 1})
    r = ask(client, "raw")
    assert r.status_code == 200 and r.content == b'{"not": "openai"}'
    assert ask(client, "raw").json()["choices"]  # `times` bounds it: then a normal answer
    client.post("/_fake/script", json={"model": "frames", "raw_frames": [": ping\n\n", "data: [DONE]\n\n"]})
    assert ask(client, "frames", stream=True).text == ": ping\n\ndata: [DONE]\n\n"
    client.post("/_fake/script", json={"model": "huge", "huge_bytes": 300_000})
    r = ask(client, "huge")
    assert len(r.content) == 300_000 and r.content.startswith(b'{"x": "aaa')
    for _ in range(200):  # the handler notes its count as it ends, just after the last byte
        if "huge" in server.stats()["sent_bytes"]:
            break
        time.sleep(0.01)
    assert server.stats()["sent_bytes"]["huge"] == 300_000  # read to the end: all of it went out
    client.post("/_fake/script", json={"model": "cut", "raw_reply": '{"choices": []}', "cut_after_bytes": 5})
    with pytest.raises(httpx.RemoteProtocolError):
        ask(client, "cut")


def test_hostile_script_keys_are_checked(client: httpx.Client) -> None:
    for bad in ({"raw_frames": [1]}, {"huge_bytes": 0}, {"huge_bytes": 2 << 30}, {"tail_every_ms": 0}):
        r = client.post("/_fake/script", json={"model": "m", **bad})
        assert r.status_code == 400, bad

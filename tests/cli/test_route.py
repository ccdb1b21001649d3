import json

from wilton_core.cli.main import main as wiltonctl
from wilton_core.core.classify import classify_request
from wilton_core.core.difficulty import load_default_scorer
from wilton_core.testing.procs import free_port


def test_route_score_adds_difficulty_and_intent_exactly_as_the_router(tmp_path, capsys):
    lines = [
        {"id": "a", "prompt": "olá, tudo bem?"},
        {"id": "b", "messages": [{"role": "user", "content": "Write a Python function that merges two sorted lists"}]},
        {"id": "c", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert wiltonctl(["route", "score", str(f)]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c"]
    assert [o["intent"] for o in out] == ["chat", "code", "vision"]
    scorer = load_default_scorer()
    for src, o in zip(lines, out, strict=True):
        intent, difficulty = classify_request(src.get("messages") or src["prompt"], scorer)
        assert o["difficulty"] == round(difficulty, 6) and 0.0 <= o["difficulty"] <= 1.0
        assert o["intent"] == intent.value


def test_route_score_rejects_bad_lines_before_writing_anything(tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": "fine"}\n{"text": "no prompt"}\n')
    assert wiltonctl(["route", "score", str(f)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "bad.jsonl:2" in cap.err and "Traceback" not in cap.err
    g = tmp_path / "notjson.jsonl"
    g.write_text("{oops\n")
    assert wiltonctl(["route", "score", str(g)]) == 2
    assert "notjson.jsonl:1: not valid JSON" in capsys.readouterr().err
    assert wiltonctl(["route", "score", str(tmp_path / "missing.jsonl")]) == 2


def test_route_explain(capsys):
    assert wiltonctl(["route", "explain", "Prove that the square root of 2 is irrational", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert 0.0 <= info["difficulty"] <= 1.0 and info["difficulty"] == info["scorer"]["score"]
    assert info["intent"] in ("chat", "code", "vision", "system") and info["scorer"]["features"]
    assert info["destination"] in ("local", "api", None)
    assert wiltonctl(["route", "explain", "hello", "--features"]) == 0
    out = capsys.readouterr().out
    assert "difficulty" in out and "contribution" in out


EXPLAIN_CONFIG = """
[[models]]
id = "local-small"
provider = "openai"
model = "smollm2"
base_url = "http://127.0.0.1:1/v1"
tier = "selfhost"
is_local = true
capability = "basic"

[[models]]
id = "api-frontier"
provider = "openai"
model = "gpt-x"
base_url = "http://127.0.0.1:1/v1"
api_key_env = "EXPLAIN_TEST_KEY"
tier = "frontier"
is_local = false
capability = "advanced"

[[models]]
id = "api-nokey"
provider = "openai"
model = "gpt-y"
api_key_env = "EXPLAIN_TEST_MISSING_KEY"
tier = "edge"
is_local = false
"""
HARD = "Prove that the square root of 2 is irrational, then write a Rust Sieve of Eratosthenes with SIMD"


def _explain_env(tmp_path, monkeypatch):
    cfg = tmp_path / "w.toml"
    cfg.write_text(EXPLAIN_CONFIG)
    monkeypatch.setenv("EXPLAIN_TEST_KEY", "k")
    monkeypatch.delenv("EXPLAIN_TEST_MISSING_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("WILTON_ROUTER_URL", f"http://127.0.0.1:{free_port()}")  # no router: the config's models
    monkeypatch.chdir(tmp_path)
    return cfg


def test_route_explain_says_where_and_why_with_the_published_threshold(tmp_path, capsys, monkeypatch):
    # issue 18: explain printed a raw dict, never said local or API, nor the threshold
    import time

    from wilton_core.store import open_store
    from wilton_core.store.base import ControlState

    cfg = _explain_env(tmp_path, monkeypatch)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = open_store(url)
    store.put_control_state(ControlState(phi_target=0.75, threshold=0.05, updated_at=time.time()))
    store.close()
    assert wiltonctl(["route", "explain", HARD, "-c", str(cfg), "--store-url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("→ API: api-frontier (then local-small)")
    assert "> threshold 0.050 → the API class" in out and "published by the coherence daemon" in out
    assert "intent " in out and "needs capability" in out
    assert "eligible local: local-small" in out and "eligible API: api-frontier" in out
    assert "api-nokey (not configured (no key))" in out
    assert "{" not in out  # no raw dict
    assert wiltonctl(["route", "explain", "hi", "-c", str(cfg), "--store-url", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["threshold"] == 0.05 and data["threshold_source"].startswith("published")
    assert data["destination"] == ("api" if data["difficulty"] > 0.05 else "local")
    assert data["eligible"] == {"local": ["local-small"], "api": ["api-frontier"]}


def test_route_explain_without_a_store_uses_the_default_and_creates_nothing(tmp_path, capsys, monkeypatch):
    cfg = _explain_env(tmp_path, monkeypatch)
    monkeypatch.delenv("WILTON_STORE_URL", raising=False)
    monkeypatch.delenv("WILTON_DATA_DIR", raising=False)
    assert wiltonctl(["route", "explain", "olá, tudo bem?", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("→ local: local-small")
    assert "≤ threshold 0.500 → the local class (threshold: the default: no store at" in out
    assert not (tmp_path / "data").exists()


def test_route_explain_rejects_an_empty_prompt(tmp_path, capsys, monkeypatch):
    cfg = _explain_env(tmp_path, monkeypatch)
    for empty in ("", "   \n"):
        assert wiltonctl(["route", "explain", empty, "-c", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert "the prompt is empty" in err and "Traceback" not in err


def test_route_explain_uses_the_models_the_running_router_serves(tmp_path, capsys, monkeypatch):
    # the walk behind issue 18: with the router on a demo config, explain read the embedded
    # defaults and said "no API model is eligible" while the router served sim-frontier
    import time

    from wilton_core.store import open_store
    from wilton_core.store.base import ControlState
    from wilton_core.testing.procs import ManagedProcess

    _explain_env(tmp_path, monkeypatch)
    served = tmp_path / "served.toml"
    # no probes at start: the upstreams are not there (a probe would mark them failed, rightly)
    served.write_text("[routing]\nprobe_models = false\n" + EXPLAIN_CONFIG.replace('"api-frontier"', '"sim-frontier"'))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = open_store(url)
    store.put_control_state(ControlState(phi_target=0.75, threshold=0.05, updated_at=time.time()))
    store.close()
    port = free_port()
    router = ManagedProcess.python_module(
        "wilton_core.router.cli", "--config", str(served), "--port", str(port),
        env={"WILTON_STORE_URL": url, "EXPLAIN_TEST_KEY": "k"}, log=tmp_path / "router.log",
    ).start(f"http://127.0.0.1:{port}/healthz", timeout=60)
    try:
        monkeypatch.delenv("EXPLAIN_TEST_KEY")  # this shell has no key: only the router knows it is set
        code = wiltonctl(["route", "explain", HARD, "--router-url", f"http://127.0.0.1:{port}",
                          "--store-url", url])
    finally:
        router.stop()
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("→ API: sim-frontier"), out
    assert f"models: as the running router at http://127.0.0.1:{port} serves them" in out


def test_models_from_router_rejects_what_is_not_a_model_list():
    from wilton_core.cli.explain import models_from_router

    assert models_from_router({"data": "x"}) is None and models_from_router([1]) is None
    assert models_from_router({"data": [{"id": "m", "wilton": {"tier": "edge"}}]}) is None
    assert models_from_router({"data": [{"id": "auto", "object": "model"}]}) is None


def test_explain_reads_a_router_listing_with_embedding_and_audio_models() -> None:
    """The router lists embedding and audio models too (with other fields): explain must still use
    the listing, and never route chat to them."""
    from wilton_core.cli.explain import models_from_router

    chat = {"id": "local-a", "object": "model", "wilton": {
        "provider": "openai", "upstream_model": "m", "tier": "selfhost", "is_local": True, "capability": "basic",
        "context_window": 8192, "supports_tools": False, "supports_vision": False, "input_cost_per_mtok": 0.0,
        "output_cost_per_mtok": 0.0, "configured": True, "status": "available", "kind": "chat"}}
    body = {"data": [{"id": "auto"}, chat,
                     {"id": "local-embed", "wilton": {**chat["wilton"], "kind": "embedding"}},
                     {"id": "whisper", "wilton": {"kind": "stt", "provider": "faster_whisper", "is_local": True}}]}
    got = models_from_router(body)
    assert got is not None and [v.id for v in got[0]] == ["local-a"]

"""Intent detection: the labelled set per language, seed examples, tricky negatives, env defaults."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from importlib import resources
from typing import Any

import pytest

from wilton_core.core.intent import (
    INTENT_CAPABILITY,
    Intent,
    IntentDefaults,
    detect_intent,
    intent_defaults_from_env,
)

IMG = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}


def _labelled(name: str = "intent_labelled.jsonl") -> list[dict[str, Any]]:
    text = resources.files("wilton_core.data").joinpath(name).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_heldout_set_accuracy() -> None:
    """`intent_heldout.jsonl` was written before the natural-language command rules and is never
    used to tune them: it estimates accuracy on phrasings the rules were not written for."""
    rows = _labelled("intent_heldout.jsonl")
    assert len(rows) >= 100
    assert {r["lang"] for r in rows} == {"pt", "en", "fr", "es"}
    tuning = {r.get("text") for r in _labelled()}
    assert not tuning.intersection(r["text"] for r in rows)  # disjoint from the tuning set
    wrong = [(r["intent"], r["text"]) for r in rows if detect_intent(r["text"]).value != r["intent"]]
    assert 1 - len(wrong) / len(rows) >= 0.95, wrong
    for lang in ("pt", "en", "fr", "es"):
        system = [r for r in rows if r["lang"] == lang and r["intent"] == "system"]
        assert sum(detect_intent(r["text"]) is Intent.SYSTEM for r in system) >= 0.9 * len(system), lang


def test_labelled_set_covers_four_languages_and_intents() -> None:
    rows = _labelled()
    assert len(rows) >= 200
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        cells[(r["lang"], r["intent"])] += 1
    for lang in ("pt", "en", "fr", "es"):
        for intent in Intent:
            assert cells[(lang, intent.value)] >= 5, (lang, intent)


@pytest.mark.parametrize("lang", ["pt", "en", "fr", "es"])
def test_accuracy_per_language(lang: str) -> None:
    rows = [r for r in _labelled() if r["lang"] == lang]
    wrong = []
    for r in rows:
        got = detect_intent(r.get("text", r.get("messages")))
        if got.value != r["intent"]:
            wrong.append((r["intent"], got.value, str(r.get("text", ""))[:60]))
    accuracy = 1 - len(wrong) / len(rows)
    assert accuracy >= 0.95, wrong


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Escreva um codigo Python", Intent.CODE),
        ("escribe una función que sume dos números", Intent.CODE),
        ("écris une fonction qui trie une liste", Intent.CODE),
        ("write a function that parses dates", Intent.CODE),
        ("I love the code of conduct", Intent.CHAT),
        ("the system of the world", Intent.CHAT),
        ("O código civil protege o consumidor?", Intent.CHAT),
        ("I saw a python at the zoo", Intent.CHAT),
        ("I lived in Java for two years", Intent.CHAT),
        ("reinicie o sistema", Intent.SYSTEM),
        ("status do sistema", Intent.SYSTEM),
        ("redémarre le routeur", Intent.SYSTEM),
        ("!status", Intent.SYSTEM),
        ("/status", Intent.SYSTEM),
        ("system: reload", Intent.SYSTEM),
        ("wiltonctl phi get", Intent.SYSTEM),
        ("/usr/bin/python3 crashed with Segmentation fault", Intent.CODE),
        ("ValueError: invalid literal for int() with base 10", Intent.CODE),
        ("hi", Intent.CHAT),
        ("", Intent.CHAT),
        # natural-language commands to the assistant (issue 16's failures) and their near misses
        ("Limpe a memória da conversa", Intent.SYSTEM),
        ("Switch the voice to female", Intent.SYSTEM),
        ("Restart the local model service", Intent.SYSTEM),
        ("Réinitialise la conversation", Intent.SYSTEM),
        ("Mude o modelo de chat para qwen2.5-coder", Intent.SYSTEM),
        ("Borra el historial", Intent.SYSTEM),
        ("Show me how to clear the cache", Intent.CHAT),
        ("Make a list of female voice actors", Intent.CHAT),
        ("Change this sentence to the passive voice: the dog bit the man", Intent.CHAT),
        ("Mets cette phrase à la voix passive : le chat mange la souris", Intent.CHAT),
        ("Tell me about the memory of elephants", Intent.CHAT),
        ("Set the temperature parameter in my PyTorch code", Intent.CODE),
        ("Prove that the Sieve of Eratosthenes is correct, then write a Rust implementation using SIMD",
         Intent.CODE),
    ],
)
def test_seed_and_tricky_examples(text: str, expected: Intent) -> None:
    assert detect_intent(text) is expected


def test_messages_with_images_are_vision() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "write a function for this"}, IMG]}]
    assert detect_intent(parts) is Intent.VISION
    data_url = {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ"}
    assert detect_intent([{"role": "user", "content": [data_url]}]) is Intent.VISION
    assert detect_intent("look: data:image/png;base64,iVBORw0KGgo=") is Intent.VISION


def test_last_user_turn_decides_for_message_lists() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "write a function that adds two numbers in Python"},
        {"role": "assistant", "content": "def add(a, b):\n    return a + b"},
        {"role": "user", "content": [{"type": "text", "text": "thanks! and what is the capital of Chile?"}]},
    ]
    assert detect_intent(messages) is Intent.CHAT
    assert detect_intent(messages[:2]) is Intent.CODE


def test_typical_call_is_fast() -> None:
    samples = [r.get("text", r.get("messages")) for r in _labelled()]
    for s in samples:  # warm up
        detect_intent(s)
    t0 = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        for s in samples:
            detect_intent(s)
    per_call_us = (time.perf_counter() - t0) / (rounds * len(samples)) * 1e6
    # 50 us typical; the bound is loose because the test machine is shared.
    assert per_call_us < 150, per_call_us


def test_capability_table_is_complete() -> None:
    assert INTENT_CAPABILITY == {
        Intent.CHAT: "basic", Intent.CODE: "standard", Intent.VISION: "standard", Intent.SYSTEM: "basic",
    }
    assert [i.value for i in Intent] == ["chat", "code", "vision", "system"]


def test_intent_defaults_from_env() -> None:
    env = {
        "CHAT_PROVIDER": "local", "CODE_PROVIDER": "Gemini", "VISION_PROVIDER": "gpt-9",
        "CHAT_LOCAL_MODEL": "dolphin-mistral", "VISION_LOCAL_MODEL": " minicpm-v ",
    }
    d = intent_defaults_from_env(env)
    assert d == IntentDefaults(
        chat_provider="local", code_provider="gemini", vision_provider="auto",
        chat_local_model="dolphin-mistral", code_local_model=None, vision_local_model="minicpm-v",
        invalid=("VISION_PROVIDER",),
    )
    assert d.provider_for(Intent.CODE) == "gemini"
    assert d.provider_for(Intent.SYSTEM) == "local"
    assert d.local_model_for(Intent.VISION) == "minicpm-v"
    assert intent_defaults_from_env({}) == IntentDefaults()

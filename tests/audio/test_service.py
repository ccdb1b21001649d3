"""The audio service: local-first chains, fallback, local-only, ledger rows and their cost."""

from __future__ import annotations

import random

import numpy as np
import pytest

from wilton_core.audio.decode import Pcm
from wilton_core.audio.encode import encode_audio
from wilton_core.audio.service import AudioService
from wilton_core.audio.stt import Segment, Transcript, TranscriptionRequest
from wilton_core.audio.tts import Speech, SpeechRequest
from wilton_core.config import parse_config
from wilton_core.errors import NoHealthyModelError, RateLimitedError, RequestError, UnavailableError
from wilton_core.types import LedgerRecord

CFG = parse_config({
    "models": [
        dict(id="chat", provider="openai", model="m", base_url="http://x/v1", tier="selfhost", is_local=True),
        dict(id="api-stt", kind="stt", provider="openai", model="whisper-1", base_url="http://x/v1",
             api_key_env="K", tier="frontier", is_local=False, cost_per_audio_minute=0.006),
        dict(id="local-stt", kind="stt", provider="faster_whisper", model="tiny.en", tier="selfhost", is_local=True),
        dict(id="nokey-stt", kind="stt", provider="openai", model="w", base_url="http://x/v1",
             api_key_env="UNSET_K", tier="edge", is_local=False),
        dict(id="local-tts", kind="tts", provider="espeak_ng", model="espeak-ng", tier="selfhost", is_local=True),
        dict(id="api-tts", kind="tts", provider="openai", model="tts-1", base_url="http://x/v1", api_key_env="K",
             tier="frontier", is_local=False, cost_per_mchars=15.0),
    ],
    "routing": {"backoff_base_s": 0.0, "max_attempts_per_model": 2, "max_retry_after_s": 0.0},
})
ENV = {"K": "secret"}
# two seconds of silence as a WAV: the service decodes every upload before trying a model
WAV = encode_audio(Pcm(np.zeros(32000, dtype=np.float32)), "wav")


class FakeSTT:
    def __init__(self, name: str, fail: list[Exception] | None = None) -> None:
        self.name = name
        self.fail = list(fail or [])
        self.calls = 0

    async def transcribe(self, req: TranscriptionRequest) -> Transcript:
        self.calls += 1
        if self.fail:
            raise self.fail.pop(0)
        return Transcript(f"[{self.name}] {len(req.audio)}", 120.0, segments=[Segment(0, 60, "a"), Segment(60, 120, "b")])

    async def stream_segments(self, req: TranscriptionRequest):
        t = await self.transcribe(req)
        for s in t.segments:
            yield s
        yield t


    async def aclose(self) -> None:
        return None


class FakeTTS:
    def __init__(self, name: str, fail: list[Exception] | None = None) -> None:
        self.name = name
        self.fail = list(fail or [])

    async def synthesize(self, req: SpeechRequest) -> Speech:
        if self.fail:
            raise self.fail.pop(0)
        return Speech(f"{self.name}:{req.text}".encode(), "audio/wav", 1.0)

    async def aclose(self) -> None:
        return None


class Ledger:
    def __init__(self) -> None:
        self.rows: list[LedgerRecord] = []

    def submit(self, r: LedgerRecord) -> None:
        self.rows.append(r)


def _svc(local_fail=None, api_fail=None, tts_local_fail=None):
    ledger = Ledger()
    stt = {"local-stt": FakeSTT("local", local_fail), "api-stt": FakeSTT("api", api_fail),
           "nokey-stt": FakeSTT("nokey")}
    tts = {"local-tts": FakeTTS("local", tts_local_fail), "api-tts": FakeTTS("api")}
    svc = AudioService(CFG, ledger=ledger, environ=ENV, stt_engines=stt, tts_engines=tts, rng=random.Random(1))
    return svc, ledger, stt


def test_chains_are_local_first_and_skip_unconfigured():
    svc, _, _ = _svc()
    assert svc.chain("stt", "whisper-1") == ["local-stt", "api-stt"]
    assert svc.chain("stt", "auto") == ["local-stt", "api-stt"]
    assert svc.chain("stt", "api") == ["api-stt"]
    assert svc.chain("stt", "whisper-1", local_only=True) == ["local-stt"]
    assert svc.chain("stt", "api-stt") == ["api-stt"]
    assert svc.chain("tts", "tts-1") == ["local-tts", "api-tts"]


@pytest.mark.parametrize(("model", "code", "status"), [
    ("chat", "model_not_supported", 400), ("local-tts", "model_not_supported", 400),
    ("nokey-stt", "model_not_configured", 400), ("nope", "model_not_found", 404)])
def test_bad_model_names(model, code, status):
    svc, _, _ = _svc()
    with pytest.raises(RequestError) as e:
        svc.chain("stt", model)
    assert e.value.code == code and e.value.status == status


def test_a_local_only_request_cannot_pin_an_api_model():
    svc, _, _ = _svc()
    with pytest.raises(RequestError) as e:
        svc.chain("stt", "api-stt", local_only=True)
    assert e.value.status == 403


async def test_local_answers_and_the_row_says_so():
    svc, ledger, _ = _svc()
    out = await svc.transcribe(TranscriptionRequest(WAV), "whisper-1")
    assert out.transcript.text == f"[local] {len(WAV)}" and out.model.id == "local-stt" and out.attempts == []
    (row,) = ledger.rows
    # the duration is the decoded audio's, not what an engine claims (the fakes say 120 s)
    assert (row.intent, row.model_id, row.is_local, row.audio_s, row.chars, row.cost_usd, row.status) == (
        "stt", "local-stt", True, 2.0, len(out.transcript.text), 0.0, "ok")
    assert svc.latency.get_stats()["stt"]["count"] == 1


async def test_failing_local_falls_back_to_the_api_and_pays_per_minute():
    svc, ledger, stt = _svc(local_fail=[UnavailableError("model.bin missing"), UnavailableError("again")])
    out = await svc.transcribe(TranscriptionRequest(WAV), "whisper-1", key_id="k1")
    assert out.model.id == "api-stt" and [a.model_id for a in out.attempts] == ["local-stt", "local-stt"]
    assert stt["local-stt"].calls == 2  # retried once (max_attempts_per_model=2), then moved on
    (row,) = ledger.rows
    assert row.model_id == "api-stt" and row.fallbacks == 2 and row.tried == "local-stt,local-stt"
    assert row.attempt_errors == "local-stt:unavailable,local-stt:unavailable"
    assert row.cost_usd == pytest.approx(2.0 / 60 * 0.006) and row.key_id == "k1"


async def test_undecodable_audio_is_the_clients_400_and_no_model_is_tried():
    from wilton_core.audio.errors import UndecodableAudioError

    svc, ledger, stt = _svc()
    with pytest.raises(UndecodableAudioError):
        await svc.transcribe(TranscriptionRequest(b"not audio" * 10), "auto")
    assert all(e.calls == 0 for e in stt.values())
    assert ledger.rows[0].http_status == 400 and ledger.rows[0].error_class == "invalid_audio"


async def test_local_only_request_never_reaches_the_api():
    svc, ledger, stt = _svc(local_fail=[UnavailableError("x"), UnavailableError("y")])
    with pytest.raises(NoHealthyModelError):
        await svc.transcribe(TranscriptionRequest(WAV), "auto", local_only=True)
    assert stt["api-stt"].calls == 0
    (row,) = ledger.rows
    assert row.status == "error" and row.local_only and row.error_class == "no_healthy_model"
    assert row.http_status == 503 and row.cost_usd == 0.0


async def test_everything_failing_is_one_error_row():
    svc, ledger, _ = _svc(local_fail=[UnavailableError("x")] * 2, api_fail=[RateLimitedError("slow", retry_after=60)])
    with pytest.raises(NoHealthyModelError) as e:
        await svc.transcribe(TranscriptionRequest(WAV), "auto")
    assert [k for _, k in e.value.tried] == ["unavailable", "unavailable", "rate_limited"]
    assert len(ledger.rows) == 1 and ledger.rows[0].status == "error"


async def test_refused_requests_are_rows_too():
    svc, ledger, _ = _svc()
    with pytest.raises(RequestError):
        await svc.transcribe(TranscriptionRequest(WAV), "chat")
    assert ledger.rows[0].status == "error" and ledger.rows[0].http_status == 400 and ledger.rows[0].intent == "stt"


async def test_stream_commits_after_the_first_segment():
    svc, ledger, _ = _svc(local_fail=[UnavailableError("x")] * 2)
    out = await svc.open_transcript_stream(TranscriptionRequest(WAV), "auto")
    events = [e async for e in out.events]
    assert out.model.id == "api-stt"
    assert [type(e).__name__ for e in events] == ["Segment", "Segment", "Transcript"]
    (row,) = ledger.rows
    assert row.stream and row.status == "ok" and row.audio_s == 2.0


async def test_speech_falls_back_and_costs_per_character():
    svc, ledger, _ = _svc(tts_local_fail=[UnavailableError("espeak gone")] * 2)
    out = await svc.speak(SpeechRequest("hello " * 100), "tts-1")
    assert out.model.id == "api-tts" and out.speech.audio.startswith(b"api:")
    (row,) = ledger.rows
    assert (row.intent, row.chars, row.audio_s) == ("tts", 600, 1.0)
    assert row.cost_usd == pytest.approx(600 * 15.0 / 1e6)
    assert svc.latency.get_stats()["tts_generate"]["count"] == 1


def test_audio_models_are_listed_with_their_kind():
    svc, _, _ = _svc()
    listing = {m["id"]: m["wilton"] for m in svc.list_models(0)}
    assert listing["local-stt"]["kind"] == "stt" and listing["nokey-stt"]["configured"] is False
    assert listing["nokey-stt"]["status"] == "not_configured" and listing["local-stt"]["status"] == "untested"
    assert "chat" not in listing

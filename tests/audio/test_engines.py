"""Each engine at its wire: OpenAI-compatible clients against httpx.MockTransport, espeak-ng for real."""

from __future__ import annotations

import json

import httpx
import pytest

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.espeak import EspeakTTS
from wilton_core.audio.stt import TranscriptionRequest
from wilton_core.audio.stt_openai import OpenAICompatSTT
from wilton_core.audio.tts import MAX_INPUT_CHARS, SpeechRequest
from wilton_core.audio.tts_openai import OpenAICompatTTS
from wilton_core.config import ModelConfig
from wilton_core.errors import AuthError, BadRequestError, RateLimitedError, UnavailableError

from .conftest import speak_wav

STT = ModelConfig(id="groq-whisper", kind="stt", provider="openai", model="whisper-large-v3-turbo",
                  base_url="http://up/openai/v1", api_key_env="GROQ_API_KEY", tier="edge", is_local=False)
TTS = ModelConfig(id="openai-tts", kind="tts", provider="openai", model="tts-1", base_url="http://up/v1",
                  api_key_env="OPENAI_API_KEY", tier="frontier", is_local=False, voice="nova")


def _stt(handler) -> OpenAICompatSTT:
    return OpenAICompatSTT(STT, api_key="sk-secret-1", transport=httpx.MockTransport(handler))


async def test_stt_sends_openais_multipart_and_reads_verbose_json():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["authorization"]
        seen["body"] = request.read()
        return httpx.Response(200, json={"text": " hi there", "duration": 2.5, "language": "english",
                                         "segments": [{"start": 0, "end": 2.5, "text": " hi there"}],
                                         "words": [{"word": "hi", "start": 0.1, "end": 0.4}]})

    t = await _stt(handler).transcribe(TranscriptionRequest(b"AUDIO", "a.mp3", language="en", prompt="names",
                                                            word_timestamps=True))
    assert seen["url"] == "http://up/openai/v1/audio/transcriptions" and seen["auth"] == "Bearer sk-secret-1"
    body = seen["body"]
    for part in (b'name="model"\r\n\r\nwhisper-large-v3-turbo', b'name="response_format"\r\n\r\nverbose_json',
                 b'name="language"\r\n\r\nen', b'name="prompt"\r\n\r\nnames', b'filename="a.mp3"', b"AUDIO",
                 b'name="timestamp_granularities[]"\r\n\r\nword'):
        assert part in body, part
    assert (t.text, t.duration_s, len(t.segments), t.words[0].word) == (" hi there", 2.5, 1, "hi")


@pytest.mark.parametrize(("status", "err"), [(500, UnavailableError), (503, UnavailableError),
                                             (429, RateLimitedError), (401, AuthError), (400, BadRequestError)])
async def test_stt_http_errors_map_to_the_taxonomy_and_never_leak_the_key(status, err):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "bad key sk-secret-1"}}, headers={"retry-after": "2"})

    with pytest.raises(err) as e:
        await _stt(handler).transcribe(TranscriptionRequest(b"A"))
    assert "sk-secret-1" not in e.value.message


@pytest.mark.parametrize("reply", [b"not json", b"[]", b'{"text": 5}', b'{"segments": []}'])
async def test_stt_malformed_reply_is_unavailable(reply):
    with pytest.raises(UnavailableError, match="malformed"):
        await _stt(lambda r: httpx.Response(200, content=reply)).transcribe(TranscriptionRequest(b"A"))


async def test_stt_hostile_numbers_are_dropped():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"text": "x", "duration": -5, "segments": [{"start": "a", "end": 1, '
                                           b'"text": "x"}, {"start": 0, "end": 1e999, "text": "y"}]}')

    t = await _stt(handler).transcribe(TranscriptionRequest(b"A"))
    assert t.duration_s == 0.0 and t.segments == []


async def test_stt_connection_failure_is_unavailable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UnavailableError, match="connection failed"):
        await _stt(handler).transcribe(TranscriptionRequest(b"A"))


async def test_tts_sends_openais_json_and_returns_the_bytes():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.read()))
        return httpx.Response(200, content=b"ID3fake-mp3")

    eng = OpenAICompatTTS(TTS, api_key="k", transport=httpx.MockTransport(handler))
    s = await eng.synthesize(SpeechRequest("Hi " * 3000, None, "opus", 1.5))
    assert seen == {"model": "tts-1", "input": ("Hi " * 3000)[:MAX_INPUT_CHARS], "voice": "nova",
                    "response_format": "opus", "speed": 1.5}
    assert s.audio == b"ID3fake-mp3" and s.content_type == "audio/ogg"


async def test_tts_errors_and_empty_reply():
    eng = OpenAICompatTTS(TTS, api_key="k", transport=httpx.MockTransport(lambda r: httpx.Response(502)))
    with pytest.raises(UnavailableError):
        await eng.synthesize(SpeechRequest("hi"))
    eng = OpenAICompatTTS(TTS, api_key="k", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(UnavailableError, match="empty"):
        await eng.synthesize(SpeechRequest("hi"))


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "aac", "flac"])
async def test_espeak_speaks_each_format(fmt):
    speak_wav("x")  # skips when espeak-ng is missing
    s = await EspeakTTS("espeak").synthesize(SpeechRequest("Testing one two three.", "alloy", fmt))
    pcm = decode_audio(s.audio, max_bytes=10_000_000, max_duration_s=60)
    assert 0.8 < pcm.duration_s < 5 and abs(pcm.duration_s - s.duration_s) < 0.15


async def test_espeak_speed_changes_the_length():
    speak_wav("x")
    text = "The quick brown fox jumps over the lazy dog."
    slow = await EspeakTTS("espeak").synthesize(SpeechRequest(text, None, "wav", 0.5))
    fast = await EspeakTTS("espeak").synthesize(SpeechRequest(text, None, "wav", 2.0))
    assert slow.duration_s > 1.8 * fast.duration_s


@pytest.mark.parametrize("voice", ["--help", "en-us; rm -rf /", "../../etc", "x" * 40])
async def test_espeak_refuses_odd_voice_names(voice):
    with pytest.raises(BadRequestError, match="unknown voice"):
        await EspeakTTS("espeak").synthesize(SpeechRequest("hi", voice, "wav"))


async def test_espeak_text_is_data_not_options():
    speak_wav("x")
    s = await EspeakTTS("espeak").synthesize(SpeechRequest("--version -w /tmp/owned.wav", None, "wav"))
    assert s.duration_s > 0.5


async def test_espeak_missing_binary_is_unavailable():
    with pytest.raises(UnavailableError, match="not installed"):
        await EspeakTTS("espeak", binary="espeak-ng-not-here").synthesize(SpeechRequest("hi"))

"""Whatever a client sends, the audio endpoints' parsers answer with a RequestError (a 4xx in
OpenAI's error shape) or a valid request: never another exception (which would be a 500)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.form import Form, read_form
from wilton_core.errors import RequestError
from wilton_core.router.audio_routes import parse_speech_body, parse_transcription_form

json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=50),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
                           max_leaves=10)
speech_bodies = st.dictionaries(
    st.sampled_from(["model", "input", "voice", "response_format", "speed", "stream_format", "x"]),
    json_values | st.sampled_from(["mp3", "wav", "alloy", "tts-1", "hello", "audio", "sse"]), max_size=7)


@settings(max_examples=300, deadline=None)
@given(speech_bodies | json_values)
def test_speech_body_parser(body):
    try:
        req, model = parse_speech_body(body)
    except RequestError as e:
        assert 400 <= e.status < 500 and e.message
        return
    assert isinstance(model, str) and 0 < len(req.text) <= 4096 and 0.25 <= req.speed <= 4.0


form_fields = st.dictionaries(
    st.sampled_from(["model", "language", "prompt", "response_format", "temperature", "stream",
                     "timestamp_granularities[]", "x"]),
    st.lists(st.text(max_size=20) | st.sampled_from(["json", "srt", "true", "word", "0.5", "en", "nan", "inf"]),
             min_size=1, max_size=3), max_size=8)


@settings(max_examples=300, deadline=None)
@given(form_fields, st.one_of(st.none(), st.binary(max_size=20)))
def test_transcription_form_parser(fields, file):
    try:
        req, _, fmt, _, _ = parse_transcription_form(Form(fields=fields, file=file))
    except RequestError as e:
        assert 400 <= e.status < 500 and e.message
        return
    assert req.audio and 0.0 <= req.temperature <= 1.0 and fmt in ("json", "text", "srt", "vtt", "verbose_json")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_multipart_reader_on_garbage(raw, chunk):
    async def chunks():
        for i in range(0, len(raw), chunk):
            yield raw[i:i + chunk]

    try:
        asyncio.run(read_form(b"multipart/form-data; boundary=xyz", chunks(), max_file_bytes=100, max_field_bytes=50))
    except RequestError as e:
        assert e.status in (400, 413)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=600) | st.builds(lambda b: b"RIFF" + b, st.binary(max_size=200))
       | st.builds(lambda b: b"OggS" + b, st.binary(max_size=200)) | st.builds(lambda b: b"ID3" + b, st.binary(max_size=200)))
def test_decoder_on_garbage(data):
    try:
        pcm = decode_audio(data, max_bytes=10_000, max_duration_s=5.0)
    except RequestError as e:
        assert e.status in (400, 413)
        return
    assert pcm.duration_s <= 5.0


def test_speed_of_the_wrong_json_type_is_a_400_not_a_500():
    # found by test_speech_body_parser: float([1]) raised TypeError (a 500)
    import pytest

    for speed in ([1], {"x": 1}, True, "fast", float("inf")):
        with pytest.raises(RequestError) as e:
            parse_speech_body({"input": "hi", "speed": speed})
        assert e.value.status == 400 and e.value.param == "speed"

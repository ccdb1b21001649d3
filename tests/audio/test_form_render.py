"""Multipart parsing with limits, and the transcript renderings."""

from __future__ import annotations

import httpx
import pytest

from wilton_core.audio.errors import AudioTooLargeError
from wilton_core.audio.form import MAX_PARTS, read_form
from wilton_core.audio.render import render_transcript, srt, vtt
from wilton_core.audio.stt import Segment, Transcript, Word
from wilton_core.errors import RequestError


def _multipart(fields: dict[str, str], file: bytes | None = b"RIFFdata") -> tuple[bytes, bytes]:
    req = httpx.Request("POST", "http://x/", data=fields, files={"file": ("a.wav", file)} if file is not None else None)
    if file is None:
        req = httpx.Request("POST", "http://x/", data=fields, files={"dummy": ("d", b"")})
    return req.headers["content-type"].encode(), req.read()


async def _chunks(raw: bytes, size: int = 7):
    for i in range(0, len(raw), size):
        yield raw[i:i + size]


async def test_fields_and_file_arrive_in_small_chunks():
    ctype, raw = _multipart({"model": "whisper-1", "timestamp_granularities[]": "word", "language": "en"})
    form = await read_form(ctype, _chunks(raw), max_file_bytes=100, max_field_bytes=100)
    assert form.file == b"RIFFdata" and form.filename == "a.wav"
    assert form.get("model") == "whisper-1" and form.get("language") == "en"
    assert form.fields["timestamp_granularities[]"] == ["word"]


async def test_file_over_the_limit_is_413():
    ctype, raw = _multipart({}, b"x" * 1000)
    with pytest.raises(AudioTooLargeError) as e:
        await read_form(ctype, _chunks(raw, 100), max_file_bytes=999, max_field_bytes=100)
    assert e.value.status == 413


async def test_field_over_the_limit_is_413():
    ctype, raw = _multipart({"prompt": "p" * 200})
    with pytest.raises(RequestError) as e:
        await read_form(ctype, _chunks(raw), max_file_bytes=100, max_field_bytes=100)
    assert e.value.status == 413 and e.value.param == "prompt"


async def test_too_many_parts():
    ctype, raw = _multipart({f"f{i}": "v" for i in range(MAX_PARTS + 1)})
    with pytest.raises(RequestError, match="parts"):
        await read_form(ctype, _chunks(raw, 4096), max_file_bytes=100, max_field_bytes=100)


@pytest.mark.parametrize("ctype", [b"application/json", b"multipart/form-data", b""])
async def test_not_multipart_is_400(ctype):
    with pytest.raises(RequestError) as e:
        await read_form(ctype, _chunks(b"{}"), max_file_bytes=100, max_field_bytes=100)
    assert e.value.status == 400 and e.value.code == "invalid_content_type"


async def test_garbage_after_the_boundary_is_400():
    with pytest.raises(RequestError) as e:
        await read_form(b"multipart/form-data; boundary=abc", _chunks(b"--abc\r\n\x00\x01garbage"),
                        max_file_bytes=100, max_field_bytes=100)
    assert e.value.status == 400


T = Transcript("Hello there. General Kenobi.", 3.2, segments=[Segment(0.0, 1.5, " Hello there."),
                                                             Segment(1.5, 3712.25, " General Kenobi.")],
               words=[Word(0.0, 0.5, " Hello")])


def test_srt_and_vtt_cues():
    assert srt(T) == ("1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
                      "2\n00:00:01,500 --> 01:01:52,250\nGeneral Kenobi.\n\n")
    assert vtt(T).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n")


def test_json_text_and_verbose():
    assert render_transcript(T, "json") == ("application/json", {"text": T.text,
                                                                 "usage": {"type": "duration", "seconds": 4}})
    assert render_transcript(T, "text")[1] == T.text + "\n"
    _, v = render_transcript(T, "verbose_json", words=True)
    assert v["duration"] == 3.2 and len(v["segments"]) == 2 and v["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.5}]

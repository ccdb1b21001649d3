"""Real speech for the voice bridge's tests: espeak-ng speaks, PyAV re-encodes into each format."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytest.importorskip("av", reason="the [voice] extra (PyAV) is not installed")

# (container, codec) per file type a client may upload
FORMATS: dict[str, tuple[str, str]] = {
    "mp3": ("mp3", "libmp3lame"),
    "ogg": ("ogg", "libopus"),
    "webm": ("webm", "libopus"),
    "m4a": ("ipod", "aac"),
    "flac": ("flac", "flac"),
}


def speak_wav(text: str, voice: str = "en-us", wpm: int = 130) -> bytes:
    """`text` spoken by espeak-ng, as a WAV file."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (scripts/test.sh installs it with apt-get)")
    out = subprocess.run([exe, "-v", voice, "-s", str(wpm), "--stdin", "--stdout"], input=text.encode(),
                         capture_output=True, timeout=30, check=True)
    return out.stdout


def as_format(wav: bytes, kind: str) -> bytes:
    """The WAV re-encoded as a file of `kind` (mp3, ogg, webm, m4a, flac) with PyAV."""
    from wilton_core.audio.decode import decode_audio
    from wilton_core.audio.encode import encode_container

    pcm = decode_audio(wav, max_bytes=50_000_000, max_duration_s=600, rate=48000)
    container, codec = FORMATS[kind]
    return encode_container(pcm, container, codec, (48000,) if codec == "libopus" else None)


@pytest.fixture(scope="session")
def hello_wav() -> bytes:
    return speak_wav("Hello world. The weather is nice today.")

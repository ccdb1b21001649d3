"""The embedded voice: Debian's espeak-ng, run as a subprocess that writes a WAV to stdout.

The text goes in on stdin (never on the command line: no option injection, no length limit of
argv) and is bounded by MAX_INPUT_CHARS before that. espeak-ng's words-per-minute (default 175)
carries OpenAI's `speed` (0.25-4.0), clamped to the range espeak-ng accepts (80-450).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.encode import CONTENT_TYPES, encode_audio
from wilton_core.audio.tts import MAX_INPUT_CHARS, Speech, SpeechRequest
from wilton_core.errors import BadRequestError, UnavailableError

__all__ = ["OPENAI_VOICES", "EspeakTTS"]

# OpenAI's voice names map to espeak-ng variants so an unchanged client still gets a voice
OPENAI_VOICES: dict[str, str] = {
    "alloy": "en-us", "ash": "en-us+m3", "ballad": "en-gb+m2", "coral": "en-us+f3", "echo": "en-us+m1",
    "fable": "en-gb", "nova": "en-us+f2", "onyx": "en-us+m4", "sage": "en-us+f4", "shimmer": "en-us+f1",
    "verse": "en-gb+m3",
}
_VOICE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?(\+[a-z0-9]{1,8})?$")
_MAX_WAV_BYTES = 64 * 1024 * 1024


class EspeakTTS:
    def __init__(self, model_id: str, *, default_voice: str = "en-us", binary: str = "espeak-ng",
                 timeout_s: float = 30.0) -> None:
        self.model_id = model_id
        self._default_voice = default_voice
        self._binary = binary
        self._timeout_s = timeout_s

    async def aclose(self) -> None:
        return None  # one subprocess per request, none kept

    def _voice(self, name: str | None) -> str:
        v = (name or self._default_voice).lower()
        v = OPENAI_VOICES.get(v, v)
        if not _VOICE_RE.match(v):
            raise BadRequestError(f"{self.model_id}: unknown voice '{name}'", provider="espeak_ng",
                                  model=self.model_id)
        return v

    async def synthesize(self, req: SpeechRequest) -> Speech:
        text = req.text[:MAX_INPUT_CHARS]
        exe = shutil.which(self._binary)
        if exe is None:
            raise UnavailableError(f"{self.model_id}: {self._binary} is not installed", provider="espeak_ng",
                                   model=self.model_id)
        wpm = str(int(min(450, max(80, 175 * req.speed))))
        proc = await asyncio.create_subprocess_exec(
            exe, "-v", self._voice(req.voice), "-s", wpm, "--stdin", "--stdout",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(text.encode("utf-8")), self._timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise UnavailableError(f"{self.model_id}: espeak-ng timed out", provider="espeak_ng",
                                   model=self.model_id) from None
        if proc.returncode != 0 or not out:
            detail = err.decode("utf-8", "replace")[:200].strip()
            raise UnavailableError(f"{self.model_id}: espeak-ng failed ({proc.returncode}): {detail}",
                                   provider="espeak_ng", model=self.model_id)
        # espeak-ng writes a streaming WAV (size fields unknown): decode it rather than trust headers
        pcm = await asyncio.to_thread(decode_audio, out, max_bytes=_MAX_WAV_BYTES, max_duration_s=3600.0,
                                      rate=22050)
        fmt = req.response_format
        audio = await asyncio.to_thread(encode_audio, pcm, fmt)
        return Speech(audio=audio, content_type=CONTENT_TYPES[fmt], duration_s=pcm.duration_s)

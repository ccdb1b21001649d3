"""The voice bridge's service: choose the audio chain, run it with fallback, record the ledger row.

No HTTP here (router/audio_routes.py renders). Chains are local first: the configured local
models of the asked kind in config order, then the API models in config order; a `model` that
names a configured audio model pins it; OpenAI's own model names ("whisper-1", "tts-1", ...) mean
"let the stack choose", so an unchanged OpenAI client gets the local-first chain. A local-only
request (the `x-wilton-privacy: local-only` header) never reaches an API model.

Fallback, retries and breakers are chat's (router/fallback.py FallbackExecutor), with audio
calls. Each request is one ledger row: intent "stt" or "tts", seconds of audio and characters of
text in `audio_s`/`chars`, cost from the model's per-minute and per-million-character prices.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.engines import AudioLimits, make_stt, make_tts
from wilton_core.audio.stt import Segment, SpeechToText, Transcript, TranscriptionRequest
from wilton_core.audio.tts import Speech, SpeechRequest, TextToSpeech
from wilton_core.audio.whisper_local import FasterWhisperSTT
from wilton_core.config import ModelConfig, StackConfig
from wilton_core.core.health import Breaker
from wilton_core.core.latency import LatencyTracker
from wilton_core.errors import (
    BadRequestError,
    NoHealthyModelError,
    ProviderError,
    RequestError,
    UnknownModelError,
)
from wilton_core.router.fallback import Attempt, FallbackExecutor, ModelRuntime
from wilton_core.types import Completion, Ledger, LedgerRecord

__all__ = ["AUTO_AUDIO_MODELS", "AudioService", "SpeechOutcome", "TranscriptOutcome", "TranscriptStream"]

log = logging.getLogger("wilton.router")

AudioKind = Literal["stt", "tts"]
_T = TypeVar("_T")

# `model` values that mean "the stack chooses" (None), or restrict the choice to local/API models;
# OpenAI's own audio model names are among them, so the SDK's examples work unchanged
AUTO_AUDIO_MODELS: dict[str, bool | None] = {
    "auto": None, "": None, "local": True, "api": False,
    "whisper-1": None, "gpt-4o-transcribe": None, "gpt-4o-mini-transcribe": None,
    "tts-1": None, "tts-1-hd": None, "gpt-4o-mini-tts": None,
}
_STAGE = {"stt": "stt", "tts": "tts_generate"}


class _NotChat:
    """The chat face of an audio model's runtime: an audio model answers no chat request."""

    name = "audio"

    def __init__(self, model: ModelConfig) -> None:
        self.model = model

    def _refuse(self) -> BadRequestError:
        return BadRequestError(f"{self.model.id} is a {self.model.kind} model, not a chat model",
                               provider=self.model.provider, model=self.model.id)

    async def complete(self, body: object) -> Completion:
        raise self._refuse()

    async def stream(self, body: object) -> AsyncIterator[dict[str, object]]:
        raise self._refuse()
        yield {}  # pragma: no cover - makes this an async generator

    async def list_models(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        return None


@dataclass(slots=True)
class TranscriptOutcome:
    transcript: Transcript
    model: ModelConfig
    attempts: list[Attempt]
    request_id: str


@dataclass(slots=True)
class SpeechOutcome:
    speech: Speech
    model: ModelConfig
    attempts: list[Attempt]
    request_id: str


@dataclass(slots=True)
class TranscriptStream:
    """A transcription stream whose model is committed: segments, then the Transcript last."""

    model: ModelConfig
    attempts: list[Attempt]
    request_id: str
    events: AsyncIterator[Segment | Transcript]


@dataclass(slots=True)
class _Ctx:
    kind: AudioKind
    request_id: str
    started: float
    stream: bool
    key_id: str
    local_only: bool
    chain: list[str]


class AudioService:
    def __init__(
        self,
        config: StackConfig,
        *,
        ledger: Ledger | None = None,
        latency: LatencyTracker | None = None,
        environ: Mapping[str, str] | None = None,
        stt_engines: Mapping[str, SpeechToText] | None = None,
        tts_engines: Mapping[str, TextToSpeech] | None = None,
        limits: AudioLimits | None = None,
        replica: str = "",
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits or AudioLimits()
        self.ledger = ledger
        self.latency = latency or LatencyTracker(config.latency_targets)
        self.replica = replica
        self._clock = clock
        self._ids = random.Random()
        self.models = {m.id: m for m in config.audio_models}
        self._chat_ids = {m.id for m in config.models}
        routing = config.routing
        self.runtimes: dict[str, ModelRuntime] = {}
        self.stt: dict[str, SpeechToText] = {}
        self.tts: dict[str, TextToSpeech] = {}
        for m in config.audio_models:
            breaker = Breaker(routing.cooldown_failures, routing.cooldown_s, routing.cooldown_max_s)
            self.runtimes[m.id] = ModelRuntime(m, _NotChat(m), breaker, m.is_configured(environ))
            if m.kind == "stt":
                self.stt[m.id] = (stt_engines or {}).get(m.id) or make_stt(m, self.limits, environ)
            else:
                self.tts[m.id] = (tts_engines or {}).get(m.id) or make_tts(m, environ)
        self.executor = FallbackExecutor(self.runtimes, routing, clock=time.monotonic, rng=rng)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Load the embedded speech-to-text models in the background (a few seconds of CPU), so the
        first transcription does not pay for it; a failure is logged and the chain falls back."""

        async def warm(engine: FasterWhisperSTT) -> None:
            try:
                await asyncio.to_thread(engine.warm_up)
            except Exception as e:
                log.warning("embedded speech-to-text %s did not load: %s", engine.model_id, e)

        for engine in self.stt.values():
            if isinstance(engine, FasterWhisperSTT):
                self._tasks.append(asyncio.get_running_loop().create_task(warm(engine)))

    async def aclose(self) -> None:
        for t in self._tasks:
            with contextlib.suppress(Exception):
                await t
        engines: list[SpeechToText | TextToSpeech] = [*self.stt.values(), *self.tts.values()]
        for engine in engines:
            with contextlib.suppress(Exception):
                await engine.aclose()

    # ---- chains ------------------------------------------------------------------------------

    def chain(self, kind: AudioKind, requested: str, *, local_only: bool = False) -> list[str]:
        """The models to try, in order, for a request of `kind` naming `requested`."""
        if requested in self.models and requested not in AUTO_AUDIO_MODELS:
            m = self.models[requested]
            if m.kind != kind:
                raise RequestError(f"The model '{requested}' is a {m.kind} model; this endpoint needs a {kind} model.",
                                   param="model", code="model_not_supported", status=400)
            if not self.runtimes[requested].configured:
                raise RequestError(f"The model '{requested}' is not configured: set "
                                   f"{' or '.join(m.key_env_names)} to use it.", param="model",
                                   code="model_not_configured", status=400)
            if local_only and not m.is_local:
                raise RequestError(f"The model '{requested}' is an API model and this request is local-only.",
                                   param="model", code="local_only", status=403, type_="permission_error")
            return [requested]
        if requested not in AUTO_AUDIO_MODELS:
            if requested in self._chat_ids:
                raise RequestError(f"The model '{requested}' is a chat model; this endpoint needs a {kind} model.",
                                   param="model", code="model_not_supported", status=400)
            raise UnknownModelError(requested, [m.id for m in self.models.values() if m.kind == kind])
        only_local = AUTO_AUDIO_MODELS[requested]
        if local_only:
            only_local = True
        usable = [m for m in self.models.values() if m.kind == kind and self.runtimes[m.id].configured
                  and (only_local is None or m.is_local is only_local)]
        chain = [m.id for m in usable if m.is_local] + [m.id for m in usable if not m.is_local]
        if not chain:
            scope = {True: "local ", False: "API ", None: ""}[only_local]
            what = "speech-to-text" if kind == "stt" else "text-to-speech"
            raise RequestError(f"No {scope}{what} model is configured (see docs/voice.md).", param="model",
                               code="model_not_found", status=400)
        return chain

    def _ctx(self, kind: AudioKind, requested: str, *, stream: bool, key_id: str, local_only: bool) -> _Ctx:
        rid = f"audio-{self._ids.getrandbits(96):024x}"
        ctx = _Ctx(kind, rid, time.perf_counter(), stream, key_id, local_only, [])
        try:
            ctx.chain = self.chain(kind, requested, local_only=local_only)
        except RequestError as e:
            self._row(ctx, None, [], status="error", error_class=e.code or "bad_request", http_status=e.status)
            raise
        return ctx

    # ---- speech to text ---------------------------------------------------------------------

    async def _decoded(self, ctx: _Ctx, req: TranscriptionRequest) -> TranscriptionRequest:
        """Decode the upload once, before any model is tried: what cannot be heard is the client's
        400 (never a reason to try the next model), and the ledger gets the true duration."""
        if importlib.util.find_spec("av") is None:  # without the [voice] extra, remote servers decode
            return req
        try:
            pcm = await asyncio.to_thread(decode_audio, req.audio, max_bytes=self.limits.max_upload_bytes,
                                          max_duration_s=self.limits.max_duration_s)
        except RequestError as e:
            self._row(ctx, None, [], status="error", error_class=e.code or "bad_request", http_status=e.status)
            raise
        return replace(req, pcm=pcm)

    async def transcribe(self, req: TranscriptionRequest, requested: str, *, key_id: str = "",
                         local_only: bool = False) -> TranscriptOutcome:
        ctx = self._ctx("stt", requested, stream=False, key_id=key_id, local_only=local_only)
        req = await self._decoded(ctx, req)

        async def call(rt: ModelRuntime) -> Transcript:
            return await self.stt[rt.cfg.id].transcribe(req)

        rt, transcript, attempts, _ = await self._run(ctx, call)
        audio_s = req.pcm.duration_s if req.pcm is not None else transcript.duration_s
        self._row(ctx, rt.cfg, attempts, audio_s=audio_s, chars=len(transcript.text))
        return TranscriptOutcome(transcript, rt.cfg, attempts, ctx.request_id)

    async def open_transcript_stream(self, req: TranscriptionRequest, requested: str, *, key_id: str = "",
                                     local_only: bool = False) -> TranscriptStream:
        """Falls back until a model produced its first segment (or finished): then it is committed."""
        ctx = self._ctx("stt", requested, stream=True, key_id=key_id, local_only=local_only)
        req = await self._decoded(ctx, req)

        async def first(rt: ModelRuntime) -> tuple[Segment | Transcript, AsyncGenerator[Segment | Transcript, None]]:
            agen = self.stt[rt.cfg.id].stream_segments(req)
            try:
                return await agen.__anext__(), agen
            except StopAsyncIteration:
                raise ProviderError(f"{rt.cfg.id}: no transcript", provider=rt.cfg.provider,
                                    model=rt.cfg.id) from None
            except BaseException:
                with contextlib.suppress(Exception):
                    await agen.aclose()
                raise

        rt, (head, rest), attempts, _ = await self._run(ctx, first)
        heard = req.pcm.duration_s if req.pcm is not None else None
        return TranscriptStream(rt.cfg, attempts, ctx.request_id,
                                self._relay(ctx, rt, attempts, head, rest, heard))

    async def _relay(self, ctx: _Ctx, rt: ModelRuntime, attempts: list[Attempt], head: Segment | Transcript,
                     rest: AsyncGenerator[Segment | Transcript, None],
                     heard: float | None) -> AsyncIterator[Segment | Transcript]:
        status, final = "stream_error", None
        error_class: str | None = "client_disconnected"
        try:
            item: Segment | Transcript | None = head
            while item is not None:
                yield item
                if isinstance(item, Transcript):
                    final = item
                    status, error_class = "ok", None
                    break
                try:
                    item = await rest.__anext__()
                except StopAsyncIteration:
                    item = None
        except ProviderError as e:
            status, error_class = "stream_error", e.kind
            raise
        finally:
            with contextlib.suppress(Exception):
                await rest.aclose()
            audio_s = heard if heard is not None else (final.duration_s if final else 0.0)
            self._row(ctx, rt.cfg, attempts, status=status, error_class=error_class,
                      audio_s=audio_s, chars=len(final.text) if final else 0)

    # ---- live transcription -----------------------------------------------------------------

    def live_engine(self, requested: str, *, local_only: bool = False) -> tuple[ModelConfig, FasterWhisperSTT]:
        """The embedded model that transcribes live audio: the first of the chain (remote servers
        take whole files, not a stream). No fallback: a live stream cannot be replayed elsewhere."""
        chain = self.chain("stt", requested, local_only=local_only)
        for mid in chain:
            engine = self.stt[mid]
            if isinstance(engine, FasterWhisperSTT) and self.runtimes[mid].breaker.available(time.monotonic()):
                return self.models[mid], engine
        raise RequestError("Live transcription needs an embedded speech-to-text model (provider faster_whisper);"
                           f" none is available among: {', '.join(chain)}.", param="model",
                           code="model_not_supported", status=400)

    def record_live(self, m: ModelConfig, *, started: float, audio_s: float, chars: int, status: str = "ok",
                    error_class: str | None = None, key_id: str = "", local_only: bool = False) -> str:
        """The ledger row of a finished live transcription (one per upload); returns its request id."""
        ctx = _Ctx("stt", f"audio-{self._ids.getrandbits(96):024x}", started, True, key_id, local_only, [m.id])
        self._row(ctx, m, [], status=status, error_class=error_class, audio_s=audio_s, chars=chars)
        return ctx.request_id

    # ---- text to speech ---------------------------------------------------------------------

    async def speak(self, req: SpeechRequest, requested: str, *, key_id: str = "",
                    local_only: bool = False) -> SpeechOutcome:
        ctx = self._ctx("tts", requested, stream=False, key_id=key_id, local_only=local_only)

        async def call(rt: ModelRuntime) -> Speech:
            return await self.tts[rt.cfg.id].synthesize(req)

        rt, speech, attempts, _ = await self._run(ctx, call)
        self._row(ctx, rt.cfg, attempts, audio_s=speech.duration_s, chars=len(req.text))
        return SpeechOutcome(speech, rt.cfg, attempts, ctx.request_id)

    # ---- shared -----------------------------------------------------------------------------

    async def _run(self, ctx: _Ctx, call: Callable[[ModelRuntime], Awaitable[_T]]
                   ) -> tuple[ModelRuntime, _T, list[Attempt], float]:
        try:
            return await self.executor.run(ctx.chain, call)
        except NoHealthyModelError as e:
            attempts = [Attempt(m, k) for m, k in e.tried if k != "cooldown"]
            last = attempts[-1].model_id if attempts else ctx.chain[0]
            self._row(ctx, self.models[last], attempts, status="error", error_class="no_healthy_model",
                      http_status=e.status, served=False)
            raise
        except Exception:
            log.exception("unhandled error on audio request %s", ctx.request_id)
            with contextlib.suppress(Exception):
                self._row(ctx, None, [], status="error", error_class="internal_error", http_status=500)
            raise

    def _row(self, ctx: _Ctx, m: ModelConfig | None, attempts: Sequence[Attempt], *, status: str = "ok",
             error_class: str | None = None, http_status: int = 200, audio_s: float = 0.0, chars: int = 0,
             served: bool = True) -> None:
        latency_s = time.perf_counter() - ctx.started
        if m is not None and status == "ok":
            self.latency.record(_STAGE[ctx.kind], latency_s)
        if self.ledger is None:
            return
        cost = m.audio_cost_usd(audio_s, chars) if m is not None and served else 0.0
        self.ledger.submit(LedgerRecord(
            ts=self._clock(), request_id=ctx.request_id, model_id=m.id if m else "", tier=m.tier if m else "",
            is_local=bool(m and m.is_local), provider=m.provider if m else "", intent=ctx.kind,
            latency_s=latency_s, cost_usd=cost, status=status, error_class=error_class,
            fallbacks=len(attempts), tried=",".join(a.model_id for a in attempts), stream=ctx.stream,
            replica=self.replica, attempt_errors=",".join(f"{a.model_id}:{a.kind}" for a in attempts),
            http_status=http_status, key_id=ctx.key_id, local_only=ctx.local_only, audio_s=audio_s,
            chars=chars))

    def list_models(self, created: int) -> list[dict[str, object]]:
        now = time.monotonic()
        out: list[dict[str, object]] = []
        for m in self.models.values():
            rt = self.runtimes[m.id]
            status = "not_configured" if not rt.configured else (
                "cooling_down" if not rt.breaker.available(now) else "untested")
            out.append({"id": m.id, "object": "model", "created": created, "owned_by": m.provider,
                        "wilton": {"kind": m.kind, "provider": m.provider, "upstream_model": m.model, "tier": m.tier,
                                   "is_local": m.is_local, "configured": rt.configured, "status": status,
                                   "cost_per_audio_minute": m.cost_per_audio_minute,
                                   "cost_per_mchars": m.cost_per_mchars}})
        return out

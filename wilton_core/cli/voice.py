"""`wiltonctl voice`: one assistant turn by voice through the running router, timed per stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from wilton_core.errors import WiltonError

__all__ = ["app"]

app = typer.Typer(help="The voice bridge: speech in, answer, speech out.", no_args_is_help=True)


@app.command("ask")
def ask(
    file: Annotated[Path, typer.Argument(help="the question, as audio (wav, mp3, ogg, webm, m4a)")],
    router_url: Annotated[str | None, typer.Option(
        "--router-url", help="WILTON_ROUTER_URL (default http://127.0.0.1:8080)")] = None,
    out: Annotated[Path | None, typer.Option(help="write the spoken answer here (wav)")] = None,
    model: Annotated[str, typer.Option(help="chat model (auto = the local-first split)")] = "auto",
    voice: Annotated[str, typer.Option(help="voice of the answer")] = "alloy",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object instead of the table")] = False,
    timeout: Annotated[float, typer.Option(help="seconds per request")] = 120.0,
) -> None:
    """Transcribe FILE, answer it through the router's chat split, speak the answer; time each stage
    against the latency targets (seed 000: stt 0.8 s, llm 2.0 s, tts_generate 3.0 s, tts_playback 0.5 s)."""
    import httpx

    from wilton_core.audio.turn import STAGES, run_turn
    from wilton_core.config import LatencyTargets

    try:
        audio = file.read_bytes()
    except OSError as e:
        raise WiltonError(f"{file}: cannot read ({e.strerror})") from None
    from wilton_core.settings import load_settings

    settings = load_settings(router_url=router_url)
    router = settings.resolved_router_url()
    key = settings.router_api_key_value()  # a client key (WILTON_ROUTER_API_KEY), when the router asks for one
    headers = {"authorization": f"Bearer {key}"} if key else {}
    base = router.rstrip("/") + ("" if router.rstrip("/").endswith("/v1") else "/v1")
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
            turn = run_turn(client, audio, filename=file.name, chat_model=model, voice=voice)
    except httpx.HTTPError as e:
        raise WiltonError(f"router at {router} unreachable: {type(e).__name__}") from None
    if out is not None:
        out.write_bytes(turn.audio)
    targets = LatencyTargets().as_dict()
    if as_json:
        typer.echo(json.dumps({"transcript": turn.transcript, "answer": turn.answer, "stages": turn.stages,
                               "targets": targets, "models": turn.models}))
        return
    typer.echo(f"heard:    {turn.transcript}\nanswered: {turn.answer}")
    typer.echo(f"{'stage':<14}{'seconds':>9}{'target':>9}  ")
    for stage in STAGES:
        v, target = turn.stages[stage], targets[stage]
        typer.echo(f"{stage:<14}{v:>9.3f}{target:>9.1f}  {'ok' if v <= target else 'OVER'}")
    typer.echo(f"models: {', '.join(f'{k}={v}' for k, v in turn.models.items())}"
               + (f"\nanswer audio: {out}" if out else ""))


@app.command("phi")
def phi(
    store_url: Annotated[str | None, typer.Option(
        "--store-url", help="WILTON_STORE_URL (default sqlite under ./data)")] = None,
    window: Annotated[float, typer.Option(help="seconds back from now", min=1.0)] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object instead of the table")] = False,
) -> None:
    """The local share of audio requests (transcription, speech), apart from the chat phi the
    controller holds (audio rows are not in that window: docs/voice.md)."""
    import time

    from wilton_core.audio.phi import audio_phi
    from wilton_core.settings import load_settings
    from wilton_core.store import open_store

    store = open_store(load_settings(store_url=store_url).resolved_store_url())
    try:
        now = time.time()
        shares = audio_phi(store, now - window, now)
    finally:
        store.close()
    rows = {k: {"requests": v.requests, "local_requests": v.local_requests, "phi": v.phi, "audio_s": v.audio_s,
                "chars": v.chars, "cost_usd": v.cost_usd, "errors": v.errors} for k, v in sorted(shares.items())}
    if as_json:
        typer.echo(json.dumps({"window_s": window, "intents": rows}))
        return
    if not rows:
        typer.echo(f"no audio requests in the last {window:g} s")
        return
    typer.echo(f"{'intent':<7}{'served':>8}{'local':>7}{'phi':>8}{'audio s':>10}{'chars':>8}{'cost $':>10}{'errors':>8}")
    for k, r in rows.items():
        share = "-" if r["phi"] is None else f"{r['phi'] * 100:.1f}%"
        typer.echo(f"{k:<7}{r['requests']:>8}{r['local_requests']:>7}{share:>8}{r['audio_s']:>10.1f}"
                   f"{r['chars']:>8}{r['cost_usd']:>10.4f}{r['errors']:>8}")

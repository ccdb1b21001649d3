"""`wiltonctl voice`: one assistant turn by voice through the running router, timed per stage."""

from __future__ import annotations

import json
import os
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

    router = load_settings(router_url=router_url).resolved_router_url()
    key = os.environ.get("WILTON_API_KEY", "")  # a client key, when the router asks for one
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

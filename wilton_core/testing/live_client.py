"""A client for live transcription that uploads in real time and reads events at the same time.

httpx sends a whole request before it reads the reply, so this speaks HTTP/1.1 on a raw asyncio
connection: chunked upload paced at the audio's own rate, SSE read concurrently. For the tests
and bench/voice.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["LiveRun", "live_transcribe"]

BYTES_PER_S = 16_000 * 2  # 16 kHz, 16-bit mono


@dataclass(slots=True)
class LiveRun:
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (monotonic time, event)
    upload_ended: float = 0.0
    sent_at: dict[float, float] = field(default_factory=dict)  # audio second -> monotonic time it was sent

    def finals(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e.get("type") == "transcript.segment"]


async def live_transcribe(port: int, pcm16: bytes, *, marks: list[float], chunk_s: float = 0.1,
                          path: str = "/v1/audio/transcriptions/live", timeout_s: float = 180.0) -> LiveRun:
    """Upload `pcm16` paced in real time; note when the audio second of each of `marks` was sent."""
    run = LiveRun()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: audio/pcm\r\n"
                 "transfer-encoding: chunked\r\n\r\n".encode())
    step = int(chunk_s * 16_000) * 2

    async def upload() -> None:
        t0 = time.monotonic()
        for i in range(0, len(pcm16), step):
            await asyncio.sleep(max(0.0, t0 + i / BYTES_PER_S - time.monotonic()))
            chunk = pcm16[i:i + step]
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            for m in marks:
                if m not in run.sent_at and (i + len(chunk)) / BYTES_PER_S >= m:
                    run.sent_at[m] = time.monotonic()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        run.upload_ended = time.monotonic()

    async def download() -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"live transcription refused: {head[:200]!r}")
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    if line.startswith(b"data: "):  # chunk-size lines interleave; keep SSE data lines
                        ev = orjson.loads(line[6:])
                        run.events.append((time.monotonic(), ev))
                        if ev.get("type") == "transcript.text.done":
                            return

    up = asyncio.create_task(upload())
    try:
        await asyncio.wait_for(download(), timeout_s)
        await up
    finally:
        up.cancel()
        writer.close()
    return run

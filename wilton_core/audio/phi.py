"""phi over audio requests, reported apart from chat's (docs/voice.md says why).

The controller's phi window counts chat requests only: audio rows (intent "stt"/"tts") are left
out of it, since the audio chain is always local first and ignores the controller's threshold;
counting them would let transcriptions push chat traffic to the API to "balance" a share the
audio path never tries to hold. This reads the ledger for the audio share on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from wilton_core.store.base import Store

__all__ = ["AudioPhi", "audio_phi"]

_SQL = """
SELECT intent,
       COALESCE(CAST(SUM(CASE WHEN status <> 'error' THEN 1 ELSE 0 END) AS BIGINT), 0),
       COALESCE(CAST(SUM(CASE WHEN status <> 'error' AND is_local = 1 THEN 1 ELSE 0 END) AS BIGINT), 0),
       COALESCE(SUM(audio_s), 0), COALESCE(CAST(SUM(chars) AS BIGINT), 0), COALESCE(SUM(cost_usd), 0),
       COALESCE(CAST(SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END) AS BIGINT), 0)
FROM ledger WHERE ts >= ? AND ts < ? AND intent IN ('stt', 'tts') GROUP BY intent
"""


@dataclass(frozen=True, slots=True)
class AudioPhi:
    intent: str  # "stt" or "tts"
    requests: int  # served (status ok or stream_error)
    local_requests: int
    audio_s: float
    chars: int
    cost_usd: float
    errors: int

    @property
    def phi(self) -> float | None:
        return self.local_requests / self.requests if self.requests else None


def audio_phi(store: Store, since: float, until: float) -> dict[str, AudioPhi]:
    out = {}
    for intent, req, local, audio_s, chars, cost, errors in store.query(_SQL, (since, until)):
        out[str(intent)] = AudioPhi(str(intent), int(req), int(local), float(audio_s), int(chars), float(cost),
                                    int(errors))
    return out

"""The one function that turns a request into (intent, difficulty): the router and
`wiltonctl route score` both call it, so offline audits see exactly what routing saw."""

from __future__ import annotations

from typing import Protocol

from wilton_core.core.features import MessagesOrText, flatten_request
from wilton_core.core.intent import Intent, detect_intent

__all__ = ["Scorer", "classify_request"]


class Scorer(Protocol):
    def score(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> float: ...


def classify_request(messages_or_text: MessagesOrText, scorer: Scorer) -> tuple[Intent, float]:
    intent = detect_intent(messages_or_text)
    # the scorer reads the request as one text: flattened here once (score(text) is score(messages))
    return intent, float(scorer.score(flatten_request(messages_or_text), intent=intent))

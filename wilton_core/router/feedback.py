"""POST /v1/feedback: an app says how good an answer was; the router keeps it as a routing label.

Body: `{"request_id": "<the x-request-id the router returned>", "score": 0..1, "comment": "..."}`
(`comment` optional, at most `MAX_COMMENT_CHARS`). Unknown fields are refused (400
`unknown_parameter`): a typo such as `"scroe"` must not be taken for a feedback without a score.

Who may rate what: behind the same key gate as chat (app.py runs it before `handle`); a virtual
key may rate only requests made with that key (the ledger's `key_id`), the master key (and a
router without keys) any request. Another key's request id answers 404, exactly like an unknown
id, so ids of other tenants cannot be probed.

What is stored: one `RouteLabel(source="feedback")` (store/route_labels.py). The ledger row says
which model answered and whether it is local: a local answer's score is the weak tier's
(`weak_score`), an API answer's the strong tier's (`strong_score`); the other tier stays unknown.
The prompt text comes from the opt-in `request_prompts` table (`WILTON_CAPTURE_PROMPTS`); without
it the label is kept and counted (`wiltonctl route labels`) but cannot be learned from, and the
reply says so (`"learnable": false`). A second feedback for the same request replaces the first.

Ledger rows are written by a batching thread (store/ledger_writer.py), so a feedback sent right
after its answer may find no row yet: then the router flushes its writer (bounded by
`flush_timeout_s`) and looks again; only then is an unknown id a 404. If the flush could not
finish (store down), the answer is 503 (retry shortly), never a wrong 404.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from wilton_core.access.caller import Caller
from wilton_core.errors import RequestError
from wilton_core.router.endpoints import JsonReply, OpenAIErrors
from wilton_core.router.request_ids import MAX_REQUEST_ID_LEN
from wilton_core.store.route_labels import RouteLabel, add_labels

if TYPE_CHECKING:
    from wilton_core.router.service import RouterService
    from wilton_core.store.base import Store

__all__ = ["MAX_COMMENT_CHARS", "Feedback", "FeedbackRequest", "LedgerHit", "label_of", "pick_row",
           "validate_feedback"]

MAX_COMMENT_CHARS = 1000
FIELDS = frozenset({"request_id", "score", "comment"})
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]*")  # what the router issues or echoes (request_ids.py)
NOT_RATEABLE_INTENTS = frozenset({"embedding", "stt", "tts"})  # no answer text to judge
MAX_ROWS_PER_ID = 20  # a client may reuse an x-request-id; the lookup reads a bounded number of rows


class LedgerFlush(Protocol):
    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued now; True once written, False on timeout."""
        ...


@dataclass(frozen=True, slots=True)
class FeedbackRequest:
    request_id: str
    score: float
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerHit:
    """The ledger facts a feedback needs about the request it rates."""

    model_id: str
    is_local: bool
    status: str
    intent: str | None
    key_id: str


def _bad(message: str, param: str | None, code: str = "invalid_value") -> RequestError:
    return RequestError(message, param=param, code=code)


def validate_feedback(body: Any) -> FeedbackRequest:
    """The feedback of a valid body, else a RequestError naming the field."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_type")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        shown = ", ".join(repr(str(k)[:40]) for k in unknown[:5])
        raise _bad(f"Unrecognized request argument(s): {shown}. Known: request_id, score, comment.",
                   str(unknown[0])[:40], "unknown_parameter")
    rid = body.get("request_id")
    if rid is None:
        raise _bad("'request_id' is required: the x-request-id header of the answer you rate.", "request_id",
                   "missing_required_parameter")
    if not isinstance(rid, str):
        raise _bad("'request_id' must be a string.", "request_id", "invalid_type")
    if not 1 <= len(rid) <= MAX_REQUEST_ID_LEN or not _ID.fullmatch(rid):
        raise _bad(f"'request_id' must be 1-{MAX_REQUEST_ID_LEN} characters of [A-Za-z0-9._:@/+=-] "
                   "(the x-request-id the router returned).", "request_id")
    score = body.get("score")
    if score is None:
        raise _bad("'score' is required: a number from 0 (bad answer) to 1 (good answer).", "score",
                   "missing_required_parameter")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise _bad("'score' must be a number from 0 to 1.", "score", "invalid_type")
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise _bad("'score' must be a number from 0 to 1.", "score")
    comment = body.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            raise _bad("'comment' must be a string.", "comment", "invalid_type")
        if len(comment) > MAX_COMMENT_CHARS:
            raise _bad(f"'comment' may hold at most {MAX_COMMENT_CHARS} characters.", "comment")
    return FeedbackRequest(rid, float(score), comment or None)


def pick_row(rows: Sequence[LedgerHit], caller: Caller | None) -> LedgerHit | None:
    """The row the caller may rate: its own key's (any key for admins and open routers), the last
    one that a model served (rows come newest first), else the newest refused one."""
    mine = [r for r in rows if caller is None or caller.admin or r.key_id == caller.key_id]
    return next((r for r in mine if r.status != "error"), mine[0] if mine else None)


def label_of(fb: FeedbackRequest, row: LedgerHit, prompt: str | None, now: float) -> RouteLabel:
    """The label for a served row (pick_row, then a rateable check): the score fills the tier that answered."""
    detail: dict[str, str | int | float | bool | None] = {"tier": "weak" if row.is_local else "strong"}
    if fb.comment:
        detail["comment"] = fb.comment
    return RouteLabel(
        request_id=fb.request_id, source="feedback", ts=now, model=row.model_id,
        weak_score=fb.score if row.is_local else None, strong_score=None if row.is_local else fb.score,
        prompt=prompt, key_id=row.key_id or None, detail=detail)


def _find(store: Store, request_id: str) -> list[LedgerHit]:
    rows = store.query(
        "SELECT model_id, is_local, status, intent, key_id FROM ledger WHERE request_id = ? "
        "ORDER BY ts DESC, id DESC LIMIT ?", (request_id, MAX_ROWS_PER_ID))
    return [LedgerHit(str(m or ""), bool(loc), str(st), None if it is None else str(it), str(k or ""))
            for m, loc, st, it, k in rows]


def _prompt(store: Store, request_id: str) -> str | None:
    row = store.query_one("SELECT prompt FROM request_prompts WHERE request_id = ?", (request_id,))
    return None if row is None else str(row[0])


class Feedback(OpenAIErrors):
    """The endpoint (an `Endpoint` for app.py): validate, find the row, store the label."""

    def __init__(self, store: Store | None, ledger: LedgerFlush | None, *, enabled: bool = True,
                 flush_timeout_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ledger = ledger
        self.enabled = enabled
        self.flush_timeout_s = flush_timeout_s
        self._clock = clock
        self._flushing: asyncio.Future[bool] | None = None

    async def _flush(self, ledger: LedgerFlush) -> bool:
        """One flush at a time, shared by every feedback waiting for one: a burst of unknown ids
        costs one writer thread for at most `flush_timeout_s`, not one each."""
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(asyncio.to_thread(ledger.flush, self.flush_timeout_s))
        return await asyncio.shield(self._flushing)

    @classmethod
    def of(cls, service: RouterService) -> Feedback:
        return cls(service.store, service.lifecycle.writer, enabled=service.config.learning.feedback)

    async def handle(self, body: Any, request_id: str | None, started: float,
                     caller: Caller | None) -> JsonReply:
        store = self.store
        if not self.enabled or store is None:
            raise RequestError("Feedback is not enabled on this router ([learning] feedback = false, or no store).",
                               code="not_found", status=404)
        fb = validate_feedback(body)
        row = pick_row(await asyncio.to_thread(_find, store, fb.request_id), caller)
        if row is None and self.ledger is not None:
            # Not written yet? The writer batches rows off the request path: flush it, look again.
            # Twice at most: a shared flush joined while finishing may predate this row's submit.
            flushed = False
            for _ in range(2):
                flushed = await self._flush(self.ledger)
                row = pick_row(await asyncio.to_thread(_find, store, fb.request_id), caller)
                if row is not None or not flushed:
                    break
            if row is None and not flushed:
                raise RequestError("The ledger is behind (the store is slow or down); retry this feedback shortly.",
                                   code="ledger_behind", status=503, type_="server_error")
        if row is None:
            raise RequestError(f"No request with id '{fb.request_id}' was answered for this key.",
                               param="request_id", code="request_not_found", status=404)
        if row.status == "error" or not row.model_id or (row.intent or "") in NOT_RATEABLE_INTENTS:
            raise RequestError("That request has no chat answer to rate (it failed, or it was not a chat "
                               "request).", param="request_id", code="not_rateable", status=409)
        prompt = await asyncio.to_thread(_prompt, store, fb.request_id)
        label = label_of(fb, row, prompt, self._clock())
        await asyncio.to_thread(add_labels, store, [label])
        out = {"object": "feedback", "request_id": fb.request_id, "model": row.model_id,
               "tier": "weak" if row.is_local else "strong", "score": fb.score, "learnable": prompt is not None}
        return JsonReply(200, orjson.dumps(out), [])

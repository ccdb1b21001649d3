"""POST /v1/embeddings: OpenAI's embeddings API over the router's embedding models.

No split and no difficulty: vectors from different models are not interchangeable, so the
request names its model (or gets the configured default) and falls back only to models declared
equivalent (`embedding_group`). Ledger rows and cost as for chat (service.embed).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from wilton_core.access.caller import Caller
from wilton_core.errors import RequestError
from wilton_core.router.endpoints import JsonReply, OpenAIErrors
from wilton_core.router.render import routing_headers
from wilton_core.router.service import RouterService

__all__ = ["MAX_INPUTS", "Embeddings", "validate_embeddings_request"]

MAX_INPUTS = 2048  # OpenAI's limit per request


def _bad(message: str, param: str | None, code: str = "invalid_value") -> RequestError:
    return RequestError(message, param=param, code=code)


def validate_embeddings_request(body: Any) -> tuple[str | None, list[str], int | None, str]:
    """(model, inputs, dimensions, encoding_format) of a valid request, else RequestError."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("'model' must be a string.", "model", "invalid_type")
    inp = body.get("input")
    if inp is None:
        raise _bad("'input' is required.", "input", "missing_required_parameter")
    inputs = [inp] if isinstance(inp, str) else inp
    if not isinstance(inputs, list) or not inputs:
        raise _bad("'input' must be a string or a non-empty array of strings.", "input", "invalid_type")
    if not all(isinstance(s, str) for s in inputs):
        raise _bad("'input' must be strings: token arrays are not supported (each model behind the router has "
                   "its own tokenizer).", "input", "invalid_type")
    if len(inputs) > MAX_INPUTS:
        raise _bad(f"'input' may hold at most {MAX_INPUTS} strings.", "input")
    if any(not s for s in inputs):
        raise _bad("'input' must not contain empty strings.", "input", "empty_content")
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise _bad("'dimensions' must be a positive integer.", "dimensions")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise _bad("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return model, inputs, dims, fmt


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


class Embeddings(OpenAIErrors):
    def __init__(self, service: RouterService) -> None:
        self.service = service

    async def handle(self, body: Any, request_id: str | None, started: float,
                     caller: Caller | None) -> JsonReply:
        model, inputs, dims, fmt = validate_embeddings_request(body)
        rid = request_id or self.service.new_request_id("emb-")
        res = await self.service.embed(model, inputs, dims, rid, started, caller)
        out = {"object": "list", "model": res.facts.model.id,
               "data": [{"object": "embedding", "index": i, "embedding": _encode(v, fmt)}
                        for i, v in enumerate(res.vectors)],
               "usage": {"prompt_tokens": res.usage.prompt_tokens, "total_tokens": res.usage.prompt_tokens}}
        return JsonReply(200, orjson.dumps(out), routing_headers(res.facts, caller))

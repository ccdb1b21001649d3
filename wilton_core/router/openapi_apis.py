"""OpenAPI paths of the extra client APIs (Anthropic Messages, Responses, embeddings, model lookup).

Like openapi.py these models describe the contract for clients, docs and the fuzzer; the request
path validates by hand (anthropic_wire, responses_wire, api_embeddings).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["api_components", "api_paths"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class AnthropicText(BaseModel):
    type: Literal["text"]
    text: str


class AnthropicImageSource(BaseModel):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(min_length=1)


class AnthropicImage(BaseModel):
    type: Literal["image"]
    source: AnthropicImageSource


class AnthropicToolUse(BaseModel):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


class AnthropicToolResult(BaseModel):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[AnthropicText] | None = None
    is_error: bool | None = None


class AnthropicMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[AnthropicText | AnthropicImage | AnthropicToolUse | AnthropicToolResult]


class AnthropicTool(BaseModel):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any]


class AnthropicToolChoice(BaseModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class AnthropicCountTokensRequest(_Open):
    model: str = Field(description="'auto', 'local', 'api' or a configured model id")
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[AnthropicText] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None


class AnthropicMessagesRequest(AnthropicCountTokensRequest):
    max_tokens: int = Field(ge=1)
    stream: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, description="accepted, not forwarded (docs/api-anthropic.md)")
    stop_sequences: list[str] | None = Field(default=None, max_length=4)
    metadata: dict[str, Any] | None = None


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    type: Literal["error"]
    error: AnthropicErrorDetail


class ResponsesInputText(BaseModel):
    type: Literal["input_text"]
    text: str


class ResponsesMessage(BaseModel):
    type: Literal["message"] | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ResponsesInputText]


class ResponsesFunctionCall(BaseModel):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str


class ResponsesFunctionCallOutput(BaseModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str


class ResponsesTool(_Open):
    type: Literal["function"]
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ResponsesRequest(_Open):
    model: str | None = Field(default="auto", description="'auto', 'local', 'api' or a configured model id")
    input: str | list[ResponsesMessage | ResponsesFunctionCall | ResponsesFunctionCallOutput]
    instructions: str | None = None
    stream: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    tools: list[ResponsesTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | None = None


class EmbeddingsRequest(_Open):
    model: str | None = Field(default=None, description="an embedding model id; omitted: the configured default")
    input: str | list[str] = Field(description="a string or up to 2048 strings (token arrays are refused)")
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are refused (router/feedback.py)
    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$",
                            description="the x-request-id header of the answer being rated")
    score: float = Field(ge=0.0, le=1.0, description="0 = a bad answer, 1 = a good one")
    comment: str | None = Field(default=None, max_length=1000)


_MODELS = (AnthropicCountTokensRequest, AnthropicMessagesRequest, AnthropicErrorResponse, ResponsesRequest,
           EmbeddingsRequest, FeedbackRequest)


def api_components() -> dict[str, Any]:
    components: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def api_paths() -> dict[str, Any]:
    openai_err = {"description": "error", "content": {"application/json": {"schema": _ref("ErrorResponse")}}}
    anth_err = {"description": "error (Anthropic shape)",
                "content": {"application/json": {"schema": _ref("AnthropicErrorResponse")}}}
    json_obj = {"application/json": {"schema": {"type": "object"}}}
    sse = {"text/event-stream": {"schema": {"type": "string"}}}

    def post(summary: str, schema: str, ok: str, err: dict[str, Any], codes: tuple[str, ...],
             stream: bool = False) -> dict[str, Any]:
        return {"post": {"summary": summary, "requestBody": {
            "required": True, "content": {"application/json": {"schema": _ref(schema)}}},
            "responses": {"200": {"description": ok, "content": {**json_obj, **(sse if stream else {})}},
                          **{c: err for c in codes}}}}

    return {
        "/v1/messages": post("Anthropic Messages API (routed like chat completions; stream=true for SSE)",
                             "AnthropicMessagesRequest", "message, or Anthropic's SSE events", anth_err,
                             ("400", "404", "413", "429", "529"), stream=True),
        "/v1/messages/count_tokens": post("Anthropic token count (an estimate; no model is called)",
                                          "AnthropicCountTokensRequest", "{input_tokens}", anth_err,
                                          ("400", "404", "413")),
        "/v1/responses": post("OpenAI Responses API, stateless subset (stream=true for semantic events)",
                              "ResponsesRequest", "response, or its SSE events", openai_err,
                              ("400", "404", "413", "429", "503"), stream=True),
        "/v1/embeddings": post("Embeddings from a pinned or the default embedding model (no split)",
                               "EmbeddingsRequest", "list of embeddings", openai_err,
                               ("400", "404", "413", "429", "503")),
        **_audio_paths(openai_err),
        "/v1/feedback": post("Rate an answer (0..1) by its request id: a routing label (docs/learning.md)",
                             "FeedbackRequest", "the stored label", openai_err,
                             ("400", "401", "404", "409", "503")),
        "/v1/models/{model_id}": {"get": {
            "summary": "One model, as OpenAI's models.retrieve returns it",
            "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "model", "content": json_obj}, "404": openai_err}}},
    }


def _audio_paths(openai_err: dict[str, Any]) -> dict[str, Any]:
    """The voice bridge (router/audio_routes.py): OpenAI's audio endpoints, multipart and raw audio in."""
    from wilton_core.audio.render import TRANSCRIPT_FORMATS
    from wilton_core.router.audio_routes import SPEECH_FORMATS

    errors = {c: openai_err for c in ("400", "403", "413", "429", "503")}
    transcript_out = {"application/json": {"schema": {"type": "object"}}, "text/plain": {"schema": {"type": "string"}},
                      "text/event-stream": {"schema": {"type": "string"}}}
    form = {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "wav, mp3, ogg, webm, m4a or flac"},
        "model": {"type": "string", "description": "an stt model id, 'local', 'api' or omitted (the default)"},
        "language": {"type": "string"}, "prompt": {"type": "string"},
        "response_format": {"type": "string", "enum": list(TRANSCRIPT_FORMATS)},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "timestamp_granularities[]": {"type": "array", "items": {"type": "string", "enum": ["word", "segment"]}},
        "stream": {"type": "boolean"}}}
    speech = {"type": "object", "required": ["input"], "properties": {
        "model": {"type": "string"}, "input": {"type": "string", "minLength": 1},
        "voice": {"type": "string"}, "response_format": {"type": "string", "enum": list(SPEECH_FORMATS)},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0}}}
    return {
        "/v1/audio/transcriptions": {"post": {
            "summary": "Speech to text (OpenAI's transcriptions; stream=true for transcript.text.delta events)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}},
            "responses": {"200": {"description": "the transcript in the asked format", "content": transcript_out},
                          **errors}}},
        "/v1/audio/transcriptions/live": {"post": {
            "summary": "Live speech to text: a chunked upload of 16 kHz mono s16le PCM (a WAV header is skipped); "
                       "SSE partials while the speaker talks, then finals",
            "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                           for n in ("model", "language")],
            "requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": {"description": "SSE transcript events",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **errors}}},
        "/v1/audio/speech": {"post": {
            "summary": "Text to speech (OpenAI's audio.speech)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": speech}}},
            "responses": {"200": {"description": "audio bytes", "content": {
                f"audio/{f}": {"schema": {"type": "string", "format": "binary"}} for f in ("mpeg", "wav", "flac")}},
                **errors}}},
    }

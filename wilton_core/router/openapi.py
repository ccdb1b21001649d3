"""The router's OpenAPI document (served at /openapi.json), built from pydantic models.

The request path does not use these models (see wire.py); they describe the same contract for
clients, docs and the fuzzer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["openapi_schema"]


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str = Field(min_length=1)


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart | ImagePart] = Field(
        description="non-empty (not only blanks) for user/system messages; may be null for assistant messages "
                    "with tool_calls", pattern=r"\S", min_length=1,
    )
    name: str | None = None


class ToolMessage(BaseModel):
    """The result of a tool call, answering the assistant's `tool_calls[].id`."""

    model_config = ConfigDict(extra="allow")
    role: Literal["tool"]
    tool_call_id: str
    content: str | list[TextPart] = Field(min_length=1)


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionDef


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]


class StreamOptions(BaseModel):
    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(default="auto", description="'auto' (default), 'local', 'api' or a configured model id")
    messages: list[Message | ToolMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: Any = None
    response_format: ResponseFormat | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_schema() -> dict[str, Any]:
    from wilton_core.router.openapi_apis import api_components, api_paths  # h6: the extra client APIs

    components: dict[str, Any] = api_components()
    for model in (ChatCompletionRequest, ErrorResponse):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    err = {"description": "error", "content": {"application/json": {"schema": _ref("ErrorResponse")}}}
    json_obj = {"application/json": {"schema": {"type": "object"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "WiltonOS router (OpenAI-compatible)", "version": "0.1.0"},
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "summary": "Create a chat completion (routed; streaming with stream=true)",
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}}},
                    "responses": {
                        "200": {"description": "chat.completion or an SSE stream of chat.completion.chunk",
                                "content": {**json_obj, "text/event-stream": {"schema": {"type": "string"}}}},
                        "400": err, "404": err, "413": err, "503": err,
                    },
                }
            },
            "/v1/models": {"get": {"summary": "List configured models",
                                   "responses": {"200": {"description": "model list", "content": json_obj}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive",
                                                                              "content": json_obj}}}},
            **api_paths(),
            "/readyz": {"get": {"summary": "Readiness: at least one usable model",
                                "responses": {"200": {"description": "ready", "content": json_obj},
                                              "503": {"description": "not ready", "content": json_obj}}}},
        },
        "components": {"schemas": components},
    }

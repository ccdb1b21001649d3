"""Task files: the JSON a user hands to `wiltonctl hpc schedule-task`, validated before anything runs.

    {"name": "demo", "concurrency": 4,
     "tasks": [{"prompt": "Hi", "intent": "chat", "priority": 1, "max_tokens": 32},
               {"messages": [{"role": "user", "content": "..."}], "model": "local-small"}]}

Strict like the config file: an unknown key is an error, so a typo never silently becomes a
default. Every problem is reported at once, each naming the task index and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wilton_core.errors import ConfigError

__all__ = [
    "INTENTS",
    "BatchSpec",
    "Message",
    "TaskFileError",
    "TaskResult",
    "TaskSpec",
    "load_task_file",
    "parse_task_file",
]

INTENTS = ("chat", "code", "vision", "system")
MAX_TASKS = 10_000


class TaskFileError(ConfigError):
    """The task file is invalid; `problems` holds one line per problem ("tasks[3].prompt: ...")."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid task file\n" + "\n".join(f"  {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Message(_Strict):
    role: Literal["system", "user", "assistant", "tool"]
    # a string, or OpenAI content parts ([{"type": "text", ...}, {"type": "image_url", ...}])
    content: str | list[dict[str, Any]]
    name: str | None = None

    @model_validator(mode="after")
    def _parts(self) -> Message:
        if isinstance(self.content, list):
            if not self.content:
                raise ValueError("content parts must not be empty")
            for i, part in enumerate(self.content):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content[{i}] needs a string 'type' (text, image_url)")
        return self


class TaskSpec(_Strict):
    prompt: str | None = Field(default=None, min_length=1)
    messages: list[Message] | None = Field(default=None, min_length=1)
    intent: Literal["chat", "code", "vision", "system"] | None = None
    model: str = Field(default="auto", min_length=1, max_length=128)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)

    @model_validator(mode="after")
    def _one_input(self) -> TaskSpec:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        return self

    def request_body(self) -> dict[str, Any]:
        """The /v1/chat/completions body this task sends."""
        if self.messages is not None:
            messages = [m.model_dump(exclude_none=True) for m in self.messages]
        else:
            messages = [{"role": "user", "content": self.prompt}]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body


class BatchSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    concurrency: int | None = Field(default=None, ge=1, le=64)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[dict[str,any]]", "function-after[_parts(), Message]",
                      "function-after[_one_input(), TaskSpec]"):
            continue  # pydantic's union-branch labels say nothing to a user
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def _problems(err: ValidationError) -> list[str]:
    seen: dict[str, str] = {}
    for e in err.errors():
        where = _where(tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (allowed: prompt, messages, intent, model, priority, max_tokens, temperature)" \
                if where.startswith("tasks[") and where.count(".") == 1 else "unknown field"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "literal_error" and where.endswith(".intent"):
            msg = f"must be one of {', '.join(INTENTS)}"
        # a union reports each branch; one line per place is enough
        seen.setdefault(where, f"{where}: {msg}")
    return list(seen.values())


def parse_task_file(raw: Any, source: str = "task file") -> BatchSpec:
    if not isinstance(raw, Mapping):
        raise TaskFileError(source, ["(file): must be a JSON object with 'name' and 'tasks'"])
    try:
        return BatchSpec.model_validate(dict(raw))
    except ValidationError as err:
        raise TaskFileError(source, _problems(err)) from None


def load_task_file(path: str | Path) -> BatchSpec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskFileError(str(p), ["(file): not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise TaskFileError(str(p), [f"(file): cannot read ({e})"]) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskFileError(str(p), [f"(file): not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"]) from None
    return parse_task_file(raw, str(p))


@dataclass(slots=True)
class TaskResult:
    """What one task produced (ok or error), as stored per task."""

    status: str                      # "ok" | "error"
    text: str | None = None
    model_id: str | None = None
    tier: str | None = None
    is_local: bool | None = None
    routed_intent: str | None = None
    difficulty: float | None = None
    fallbacks: int | None = None
    latency_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    http_status: int | None = None
    error: str | None = None

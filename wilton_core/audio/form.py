"""A multipart/form-data body read as it arrives, with limits (python-multipart does the parsing).

Limits: the file part at most `max_file_bytes`, every other field at most `max_field_bytes`, at
most MAX_PARTS parts. A breach raises RequestError (413 for size, 400 for shape) the moment it
happens, so an oversized upload is refused without being read to its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from wilton_core.audio.errors import AudioTooLargeError
from wilton_core.errors import RequestError

__all__ = ["MAX_PARTS", "Form", "read_form"]

MAX_PARTS = 32


@dataclass(slots=True)
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: bytes | None = None
    filename: str = "audio"

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None


def _bad(message: str, code: str = "invalid_multipart") -> RequestError:
    return RequestError(message, param=None, code=code, status=400)


@dataclass(slots=True)
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    data: bytearray = field(default_factory=bytearray)
    name: str = ""
    filename: str | None = None


async def read_form(content_type: bytes, chunks: AsyncIterator[bytes], *, max_file_bytes: int,
                    max_field_bytes: int, file_field: str = "file") -> Form:
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise _bad("The request must be multipart/form-data with a boundary (as OpenAI's audio endpoints).",
                   "invalid_content_type")
    form = Form()
    parts: list[_Part] = []
    cur: list[_Part] = []

    def part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise _bad(f"The form has more than {MAX_PARTS} parts.")
        p = _Part()
        parts.append(p)
        cur[:] = [p]

    def header_field(data: bytes, start: int, end: int) -> None:
        cur[0].header_name += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        cur[0].header_value += data[start:end]

    def header_end() -> None:
        p = cur[0]
        p.headers[bytes(p.header_name).decode("latin-1").lower()] = bytes(p.header_value)
        p.header_name.clear()
        p.header_value.clear()

    def headers_finished() -> None:
        p = cur[0]
        _, disp = parse_options_header(p.headers.get("content-disposition", b""))
        p.name = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        p.filename = fn.decode("utf-8", "replace")[:255] if fn is not None else None

    def part_data(data: bytes, start: int, end: int) -> None:
        p = cur[0]
        limit = max_file_bytes if p.name == file_field else max_field_bytes
        if len(p.data) + (end - start) > limit:
            if p.name == file_field:
                raise AudioTooLargeError(max_file_bytes)
            raise RequestError(f"The form field '{p.name[:64]}' exceeds {max_field_bytes} bytes.", param=p.name[:64],
                               code="request_too_large", status=413)
        p.data += data[start:end]

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": part_begin, "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_headers_finished": headers_finished, "on_part_data": part_data,
    })
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        raise _bad(f"The multipart body is malformed: {e}") from None
    for p in parts:
        if p.name == file_field:
            form.file = bytes(p.data)
            form.filename = p.filename or "audio"
        elif p.name:
            try:
                form.fields.setdefault(p.name, []).append(bytes(p.data).decode("utf-8"))
            except UnicodeDecodeError:
                raise _bad(f"The form field '{p.name[:64]}' is not UTF-8 text.") from None
    return form

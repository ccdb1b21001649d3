"""Versions of the difficulty scorer: the pure parts (store I/O is `store/difficulty_models.py`).

`wiltonctl route learn` adds an adapted version to the store (and activates it when it beats the
active one on held-back labels); `route model list|show|rollback` read and move the active
pointer; routers poll the active version number about once a second (`ActiveScorer.refresh`,
from the router's control-state refresh) and load a new artefact only when it changes, so a new
version reaches every replica without a restart. No active version means the scorer shipped in
the package.

Here: the version record, the artefact's text encoding, and `ActiveScorer`, which reads versions
through the `ScorerVersions` protocol (the store implements it; tests may pass a fake).
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from wilton_core.core.difficulty import DifficultyScorer

__all__ = [
    "MAX_ARTEFACT_BYTES",
    "ActiveScorer",
    "ModelVersion",
    "ScorerVersions",
    "VersionError",
    "decode_scorer",
    "encode_scorer",
]

MAX_ARTEFACT_BYTES = 32 * 1024 * 1024
T = TypeVar("T")


class VersionError(ValueError):
    """An unknown version, nothing to roll back to, or a stored artefact that cannot be read."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: int
    created_at: float
    parent: int | None
    active: bool
    summary: dict[str, Any]


def encode_scorer(scorer: DifficultyScorer) -> str:
    """The scorer's .npz artefact as base64 text (how the store keeps it)."""
    buf = io.BytesIO()
    scorer.save_npz(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_scorer(text: str) -> DifficultyScorer:
    """Inverse of `encode_scorer`; a stored artefact over the size limit or not base64 is refused."""
    if len(text) > MAX_ARTEFACT_BYTES * 4 // 3 + 4:
        raise VersionError("stored difficulty model is larger than the limit")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VersionError("stored difficulty model is not valid base64") from None
    if len(raw) > MAX_ARTEFACT_BYTES:
        raise VersionError("stored difficulty model is larger than the limit")
    try:
        return DifficultyScorer.from_npz(io.BytesIO(raw))
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
        # e.g. a version learned by an older scorer format: it names the retraining to do.
        raise VersionError(f"stored difficulty model cannot be read: {e}") from None


class ScorerVersions(Protocol):
    """Where `ActiveScorer` reads versions from (`store.difficulty_models.DifficultyVersions`)."""

    def active_version(self) -> int | None: ...

    def load(self, version: int) -> DifficultyScorer: ...


class ActiveScorer:
    """The router's view of the active version: `refresh` is cheap unless the version changed."""

    def __init__(self, versions: ScorerVersions, default: DifficultyScorer,
                 load: Callable[[int], DifficultyScorer] | None = None) -> None:
        self.versions = versions
        self.default = default
        self._load = load or versions.load
        self.version: int | None = None

    def refresh(self, current: T) -> T | DifficultyScorer:
        """`current` while the active version is unchanged, else the newly active scorer."""
        version = self.versions.active_version()
        if version == self.version:
            return current
        # Marked as seen before loading: a version that cannot be loaded is tried (and its error
        # raised for the caller to log) once, not every second; routing keeps `current`.
        self.version = version
        return self.default if version is None else self._load(version)

"""Versions of the difficulty scorer kept in the store (`difficulty_models`, migration 0050).

`wiltonctl route learn` adds an adapted version (and activates it when it beats the active one
on held-back labels); `route model list|show|rollback` read and move the active pointer; routers
poll the active version number about once a second (`ActiveScorer.refresh`, from the router's
control-state refresh) and load a new artefact only when it changes, so a new version reaches
every replica without a restart. No active row means the scorer shipped in the package.

The store is a constructor parameter (any `Store`: SQLite or PostgreSQL, same SQL).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from wilton_core.core.difficulty import DifficultyScorer, load_default_scorer
from wilton_core.store.base import Store

__all__ = ["ActiveScorer", "DifficultyVersions", "ModelVersion", "VersionError"]

MAX_ARTEFACT_BYTES = 32 * 1024 * 1024
T = TypeVar("T")


class VersionError(ValueError):
    """An unknown version, or nothing to roll back to."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: int
    created_at: float
    parent: int | None
    active: bool
    summary: dict[str, Any]


def _encode(scorer: DifficultyScorer) -> str:
    buf = io.BytesIO()
    scorer.save_npz(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode(text: str) -> DifficultyScorer:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) > MAX_ARTEFACT_BYTES:
        raise VersionError("stored difficulty model is larger than the limit")
    return DifficultyScorer.from_npz(io.BytesIO(raw))


class DifficultyVersions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _row(self, row: tuple[Any, ...]) -> ModelVersion:
        version, created_at, parent, active, summary = row
        return ModelVersion(int(version), float(created_at), None if parent is None else int(parent),
                            bool(active), json.loads(summary))

    def list(self) -> list[ModelVersion]:
        rows = self.store.query(
            "SELECT version, created_at, parent, active, summary FROM difficulty_models ORDER BY version")
        return [self._row(r) for r in rows]

    def get(self, version: int) -> ModelVersion:
        row = self.store.query_one(
            "SELECT version, created_at, parent, active, summary FROM difficulty_models WHERE version = ?",
            (version,))
        if row is None:
            raise VersionError(f"no difficulty model version {version}")
        return self._row(row)

    def active_version(self) -> int | None:
        row = self.store.query_one("SELECT version FROM difficulty_models WHERE active = 1")
        return None if row is None else int(row[0])

    def load(self, version: int) -> DifficultyScorer:
        row = self.store.query_one("SELECT artefact FROM difficulty_models WHERE version = ?", (version,))
        if row is None:
            raise VersionError(f"no difficulty model version {version}")
        return _decode(str(row[0]))

    def active_scorer(self) -> tuple[int | None, DifficultyScorer]:
        """The active version and its scorer; (None, shipped scorer) when none is active."""
        version = self.active_version()
        return (None, load_default_scorer()) if version is None else (version, self.load(version))

    def add(self, scorer: DifficultyScorer, summary: dict[str, Any], parent: int | None, now: float,
            activate: bool) -> int:
        artefact = _encode(scorer)
        with self.store.transaction():
            row = self.store.query_one("SELECT MAX(version) FROM difficulty_models")
            version = (int(row[0]) if row and row[0] is not None else 0) + 1
            if activate:
                self.store.execute("UPDATE difficulty_models SET active = 0 WHERE active = 1")
            self.store.execute(
                "INSERT INTO difficulty_models (version, created_at, parent, active, summary, artefact)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (version, now, parent, 1 if activate else 0, json.dumps(summary, sort_keys=True), artefact),
            )
        return version

    def activate(self, version: int | None) -> None:
        """Make `version` the active one (None: back to the shipped scorer)."""
        with self.store.transaction():
            if version is not None and self.store.query_one(
                    "SELECT version FROM difficulty_models WHERE version = ?", (version,)) is None:
                raise VersionError(f"no difficulty model version {version}")
            self.store.execute("UPDATE difficulty_models SET active = 0 WHERE active = 1")
            if version is not None:
                self.store.execute("UPDATE difficulty_models SET active = 1 WHERE version = ?", (version,))

    def rollback(self) -> int | None:
        """Activate the active version's parent (None = the shipped scorer); returns it."""
        active = self.active_version()
        if active is None:
            raise VersionError("the shipped scorer is active: nothing to roll back")
        parent = self.get(active).parent
        self.activate(parent)
        return parent


class ActiveScorer:
    """The router's view of the active version: `refresh` is cheap unless the version changed."""

    def __init__(self, versions: DifficultyVersions, default: DifficultyScorer,
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

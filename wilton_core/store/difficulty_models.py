"""Versions of the difficulty scorer kept in the store (table `difficulty_models`, migration 0050).

The store I/O behind `wiltonctl route learn|model` and the router's `ActiveScorer` (the pure
parts — the version record, the artefact encoding, `ActiveScorer` — are in
`core/difficulty_versions.py`). The store is a constructor parameter (any `Store`: SQLite or
PostgreSQL, same SQL).
"""

from __future__ import annotations

import json
from typing import Any

from wilton_core.core.difficulty import DifficultyScorer, load_default_scorer
from wilton_core.core.difficulty_versions import ModelVersion, VersionError, decode_scorer, encode_scorer
from wilton_core.store.base import Store

__all__ = ["DifficultyVersions"]


class DifficultyVersions:
    """Add, list, load, activate and roll back scorer versions in one store (implements
    `core.difficulty_versions.ScorerVersions`)."""

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
        return decode_scorer(str(row[0]))

    def active_scorer(self) -> tuple[int | None, DifficultyScorer]:
        """The active version and its scorer; (None, shipped scorer) when none is active."""
        version = self.active_version()
        return (None, load_default_scorer()) if version is None else (version, self.load(version))

    def add(self, scorer: DifficultyScorer, summary: dict[str, Any], parent: int | None, now: float,
            activate: bool) -> int:
        artefact = encode_scorer(scorer)
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

"""The insight report's per-key section: each client key's traffic and spend over the window.

One grouped query over the window's ledger rows (result size: the number of keys), joined to
key names in Python. Rows without a key are left out; refusals are the gate's error classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from wilton_core.access.gate import REFUSAL_CODES
from wilton_core.insight.stats import KeySpend

__all__ = ["window_key_spend"]


class _Store(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def window_key_spend(store: _Store, since: float, until: float, limit: int = 50) -> list[KeySpend]:
    """Per key over [since, until), the biggest spenders first, at most `limit` keys."""
    refused = ", ".join("?" for _ in REFUSAL_CODES)
    rows = store.query(
        "SELECT key_id, CAST(COUNT(*) AS BIGINT),"
        f" CAST(SUM(CASE WHEN error_class IN ({refused}) THEN 1 ELSE 0 END) AS BIGINT),"
        " CAST(SUM(local_only) AS BIGINT), CAST(SUM(tokens_in + tokens_out) AS BIGINT), SUM(cost_usd)"
        " FROM ledger WHERE ts >= ? AND ts < ? AND key_id <> '' GROUP BY key_id",
        (*REFUSAL_CODES, since, until))
    if not rows:
        return []
    names = {str(r[0]): (str(r[1]), r[2], str(r[3]))
             for r in store.query("SELECT id, name, budget_usd, budget_period FROM api_keys")}
    out = []
    for kid, n, ref, loc, tok, cost in rows:
        name, budget, period = names.get(str(kid), (f"(deleted {str(kid)[:16]})", None, "total"))
        out.append(KeySpend(name, int(n), int(ref or 0), int(loc or 0), int(tok or 0), float(cost or 0.0),
                            None if budget is None else float(budget), period))
    out.sort(key=lambda k: (-k.cost_usd, -k.requests, k.name))
    return out[:limit]

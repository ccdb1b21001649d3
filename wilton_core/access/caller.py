"""Who is asking, once the gate has let a request through: the restriction routing must obey.

Plain data with no I/O, imported by the router service (which filters its chain with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wilton_core.access.keys import model_allowed

__all__ = ["OPEN", "Caller"]


@dataclass(slots=True, frozen=True)
class Caller:
    """key_id: '' without keys or for the master key. admin: may see prices, key variable names
    and fallback error detail. models: allow-list globs ('' = every model). local_only: never
    send to a non-local model. headers: x-ratelimit-* to add to the response."""

    key_id: str = ""
    key_name: str = ""
    admin: bool = True
    models: tuple[str, ...] = ()
    local_only: bool = False
    headers: tuple[tuple[bytes, bytes], ...] = field(default=())

    def permits(self, model_id: str, is_local: bool) -> bool:
        return model_allowed(self.models, model_id) and (is_local or not self.local_only)

    @property
    def restricted(self) -> bool:
        return bool(self.models) or self.local_only


# the caller when the gate is off (loopback, no keys): everything, as before keys existed
OPEN = Caller()

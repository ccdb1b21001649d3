"""HTTP client of the coherence API with a 0600 token cache; used by `wiltonctl login/phi`.

The cache holds the access and refresh tokens (never the password). An access token about to
expire is refreshed transparently; the rotated refresh token replaces the old one on disk.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from wilton_core.errors import WiltonError

__all__ = ["CoherenceClient", "CoherenceClientError", "default_token_file"]

EXPIRY_MARGIN_S = 30.0


class CoherenceClientError(WiltonError):
    """A readable, one-line failure of a coherence API call."""


def default_token_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("WILTON_TOKEN_FILE"):
        return Path(env["WILTON_TOKEN_FILE"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "wilton" / "token.json"


class CoherenceClient:
    def __init__(
        self,
        base_url: str,
        token_file: Path | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_file = token_file or default_token_file()
        self.clock = clock
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CoherenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise CoherenceClientError(
                f"cannot reach the coherence daemon at {self.base_url}: {type(e).__name__}"
            ) from None

    @staticmethod
    def _detail(r: httpx.Response) -> str:
        try:
            d = r.json().get("detail")
        except (ValueError, AttributeError):
            d = None
        if isinstance(d, list):  # FastAPI validation errors
            d = "; ".join(str(x.get("msg", x)) if isinstance(x, dict) else str(x) for x in d)
        return f"HTTP {r.status_code}: {d or r.reason_phrase}"

    # -- token cache -------------------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.token_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise CoherenceClientError(f"token cache {self.token_file} is unreadable; run `wiltonctl login`") from None
        return data if isinstance(data, dict) else None

    def _save(self, data: dict[str, Any]) -> None:
        path = self.token_file
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def _store_tokens(self, body: dict[str, Any], username: str) -> dict[str, Any]:
        now = self.clock()
        data = {
            "url": self.base_url,
            "username": username,
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "access_expires_at": now + float(body.get("expires_in", 0)),
            "refresh_expires_at": now + float(body.get("refresh_expires_in", 0)),
            "scope": body.get("scope", ""),
        }
        self._save(data)
        return data

    # -- API ---------------------------------------------------------------------------------

    def login(self, username: str, password: str, scope: str = "") -> dict[str, Any]:
        form = {"username": username, "password": password, "grant_type": "password"}
        if scope:
            form["scope"] = scope
        r = self._send("POST", "/auth/token", data=form)
        if r.status_code == 429:
            raise CoherenceClientError(
                f"login locked after repeated failures; retry in {r.headers.get('retry-after', '?')} s"
            )
        if r.status_code != 200:
            raise CoherenceClientError(f"login failed: {self._detail(r)}")
        return self._store_tokens(r.json(), username)

    def _access_token(self) -> str:
        data = self._load()
        if data is None or data.get("url") != self.base_url:
            raise CoherenceClientError(f"not logged in to {self.base_url}; run `wiltonctl login`")
        now = self.clock()
        if float(data.get("access_expires_at", 0)) - EXPIRY_MARGIN_S > now:
            return str(data["access_token"])
        if float(data.get("refresh_expires_at", 0)) <= now:
            raise CoherenceClientError("session expired; run `wiltonctl login`")
        r = self._send("POST", "/auth/refresh", json={"refresh_token": data["refresh_token"]})
        if r.status_code != 200:
            raise CoherenceClientError(f"session refresh failed ({self._detail(r)}); run `wiltonctl login`")
        return str(self._store_tokens(r.json(), str(data.get("username", "")))["access_token"])

    def _authed(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = self._send(method, path, headers={"Authorization": f"Bearer {self._access_token()}"}, **kw)
        if r.status_code != 200:
            raise CoherenceClientError(f"{method} {path} failed: {self._detail(r)}")
        out: dict[str, Any] = r.json()
        return out

    def get_phi(self) -> dict[str, Any]:
        return self._authed("GET", "/phi")

    def set_target(self, phi_target: float) -> dict[str, Any]:
        return self._authed("PUT", "/phi/target", json={"phi_target": phi_target})

    def rebalance(self) -> dict[str, Any]:
        return self._authed("POST", "/rebalance")

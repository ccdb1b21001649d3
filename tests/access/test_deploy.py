"""Deployment files: the router bound beyond loopback always has a master key."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_requires_a_master_key_for_the_exposed_router() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    router_env = {**compose["x-wilton"]["environment"], **services["router"]["environment"]}
    assert router_env["WILTON_HOST"] == "0.0.0.0"
    assert str(router_env["WILTON_MASTER_KEY"]).startswith("${WILTON_MASTER_KEY:?")
    # the insight hook calls the router, so it presents the key too
    assert str(services["insight"]["environment"]["WILTON_ROUTER_API_KEY"]).startswith("${WILTON_MASTER_KEY:?")


def test_start_router_generates_a_key_beyond_loopback() -> None:
    text = (ROOT / "scripts" / "start_router.sh").read_text()
    assert "WILTON_MASTER_KEY" in text and "umask 077" in text and "master.key" in text

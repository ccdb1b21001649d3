"""docker-compose.yml and Dockerfile, checked structurally (no Docker engine here)."""

from __future__ import annotations

import re
import tomllib

from .conftest import ROOT, load_yaml

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.I)
# ${VAR}, ${VAR:-} (empty default) or ${VAR:?message}: never a literal secret in the file
ENV_REF = re.compile(r"^\$\{[A-Z0-9_]+(:-|:\?[^}]*)?\}$")


def _compose() -> dict:  # type: ignore[type-arg]
    return load_yaml(ROOT / "docker-compose.yml")


def test_services_ports_and_dependencies() -> None:
    services = _compose()["services"]
    assert set(services) >= {"prometheus", "grafana", "ollama", "router", "exporter", "coherence", "insight"}
    ports = {name: {p.split(":")[-1] for p in s.get("ports", [])} for name, s in services.items()}
    assert ports["router"] == {"8080"} and ports["exporter"] == {"8000"} and ports["coherence"] == {"8001"}
    assert ports["prometheus"] == {"9090"} and ports["grafana"] == {"3000"}
    host_ports = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"
    for name, s in services.items():
        for dep in s.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name


def test_stack_processes_share_one_image_and_one_store() -> None:
    services = _compose()["services"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in ("router", "exporter", "coherence", "insight"):
        s = services[name]
        assert s["build"] == "." and s["image"] == "wiltonos/wilton-core:local", name
        assert s["command"][0] in scripts, f"{name}: {s['command'][0]} is not a console script"
        assert s["environment"]["WILTON_STORE_URL"] == "sqlite:////data/wilton.db", name
        assert "wilton-data:/data" in s["volumes"], name
    assert (ROOT / "Dockerfile").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER wilton" in dockerfile and "COPY wilton_core" in dockerfile


def test_every_mounted_file_exists_and_prometheus_gets_its_config() -> None:
    compose = _compose()
    named = set(compose.get("volumes", {}))
    for name, s in compose["services"].items():
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith((".", "/")):
                assert (ROOT / src).exists(), f"{name} mounts missing {src}"
            else:
                assert src in named, f"{name} uses undeclared volume {src}"
    prom = compose["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in prom["command"]
    graf = compose["services"]["grafana"]
    assert any(v.startswith("./grafana/provisioning/datasources:") for v in graf["volumes"])
    assert any(v.startswith("./grafana/dashboards:") for v in graf["volumes"])


def test_no_plaintext_secrets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "admin/wilton" not in text and "password: wilton" not in text.lower()
    for name, s in _compose()["services"].items():
        env = s.get("environment", {})
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        for key, value in env.items():
            if SECRET_NAME.search(key) and not key.endswith("_USER"):
                assert ENV_REF.match(str(value)), f"{name}.{key} must come from the environment, got {value!r}"
    assert _compose()["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GF_SECURITY_ADMIN_PASSWORD:?"
    )


def test_wilton_config_is_mounted_and_passed() -> None:
    # issue 18: the header promised WILTON_CONFIG "(a TOML under ./config)" and nothing mounted it
    services = _compose()["services"]
    for name in ("router", "exporter", "coherence", "insight"):
        s = services[name]
        assert "./config:/config:ro" in s["volumes"], name
        assert s["environment"]["WILTON_CONFIG"] == "${WILTON_CONFIG:-}", name
    assert (ROOT / "config").is_dir()


def test_an_empty_optional_variable_means_unset(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wilton_core.settings import load_settings

    # what `${WILTON_CONFIG:-}` gives a container when the user sets nothing
    monkeypatch.setenv("WILTON_CONFIG", "")
    assert load_settings().config is None

"""deploy/compose.yaml against the code: its variables are real settings with valid values,
its nginx upstreams are its API servers, and those publish no port of their own.

No Docker engine runs here, so nothing is started: the file is read with PyYAML (a
dependency of schemathesis in the test lock, not one of ours), and, where the
`docker compose` or `docker-compose` command exists, checked by it too.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.config import ENV_PREFIX, PROJECT_ROOT, Settings
from tests.reliability.support import serve_process

yaml = pytest.importorskip("yaml")

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
# Values for the variables deploy/env.example leaves empty (secrets).
SECRETS = {"POSTGRES_PASSWORD": "pw0123", "BACKPROP_LIVE_TOKEN": "a-long-random-secret"}
SETTING_NAMES = {f.name for f in dataclasses.fields(Settings)}
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")


def env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()]
    return {name.strip(): value.strip() for name, value in (p for p in pairs if len(p) == 2)}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        given = env.get(name, "")
        if given or operator is None:
            return given
        if operator == ":?":
            raise AssertionError(f"compose would stop: {name}: {argument}")
        return str(argument)

    return INTERPOLATION.sub(value, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    values = {**env_example(), **SECRETS, **(env or {})}
    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), values))
    return loaded


def api_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run `backprop-live serve`."""
    services: dict[str, dict[str, Any]] = config["services"]
    return {
        name: service
        for name, service in services.items()
        if "backprop-live serve" in " ".join(service.get("command") or [])
    }


def test_every_backprop_live_variable_is_a_setting() -> None:
    named = set(re.findall(ENV_PREFIX + r"(\w+)", COMPOSE.read_text()))
    assert named, "compose.yaml configures the servers through BACKPROP_LIVE_* variables"
    unknown = sorted(ENV_PREFIX + name for name in named if name.lower() not in SETTING_NAMES)
    assert not unknown, f"not settings (app/config.py): {unknown}"


def test_the_api_servers_environment_makes_valid_settings() -> None:
    if importlib.util.find_spec("ray") is None and os.environ.get("CI") != "true":
        pytest.skip("Settings refuses executor=ray without Ray (the cluster extra)")
    for name, service in api_services(compose()).items():
        environment = {key: str(value) for key, value in service["environment"].items()}
        settings = Settings.from_env(environment)  # raises SettingsError naming a bad one
        assert str(settings.db).startswith("postgresql://backprop:pw0123@postgres:5432/"), name
        assert settings.executor == "ray"
        assert settings.ray_address == "ray-head:6379"
        assert settings.token == SECRETS["BACKPROP_LIVE_TOKEN"]
        # The image's health check asks for 127.0.0.1; browsers use the public names.
        assert settings.allowed_hosts == ("localhost", "127.0.0.1")


def test_every_compose_variable_is_in_env_example() -> None:
    used = {match.group(1) for match in INTERPOLATION.finditer(COMPOSE.read_text())}
    assert used - set(env_example()) == set()


def test_secrets_must_be_given() -> None:
    for secret in SECRETS:
        with pytest.raises(AssertionError, match=secret):
            compose({secret: ""})


def test_the_api_servers_are_alike_and_reachable_only_through_nginx() -> None:
    config = compose()
    servers = api_services(config)
    assert len(servers) == 2
    environments = [service["environment"] for service in servers.values()]
    assert environments[0] == environments[1], "one token, one database, one cluster"
    for name, service in servers.items():
        # FORWARDED_ALLOW_IPS="*" trusts X-Forwarded-For from anyone who reaches the port.
        assert service["environment"]["FORWARDED_ALLOW_IPS"] == "*"
        assert "ports" not in service, f"{name} must not publish a port"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["ray-head"]["condition"] == "service_healthy"
    nginx = config["services"]["nginx"]
    assert set(nginx["depends_on"]) == set(servers)


def test_nginx_sends_to_the_api_servers_and_listens_where_compose_publishes() -> None:
    config = compose()
    conf = (DEPLOY / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server ([\w.-]+):(\d+);", conf, re.MULTILINE)
    assert sorted(upstreams) == sorted((name, "8000") for name in api_services(config))
    for service in api_services(config).values():
        assert service["command"][-1].endswith("--port 8000")
    listen = re.findall(r"^\s*listen (\d+);", conf, re.MULTILINE)
    assert config["services"]["nginx"]["ports"] == [f"8080:{listen[0]}"]
    mounted = config["services"]["nginx"]["volumes"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in mounted


def test_the_image_health_check_passes_on_a_server_configured_as_compose_does(
    tmp_path: Path,
) -> None:
    """The Dockerfile's HEALTHCHECK, run against a real server with the API servers'
    environment from compose.yaml (less the cluster's three, which need PostgreSQL and
    Ray): their Host list and token must let the probe through."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    probe = json.loads(re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", dockerfile, re.S)[1])
    assert probe[0] == "python" and "http://127.0.0.1:8000/api/health" in probe[2]
    environment = next(iter(api_services(compose()).values()))["environment"]
    cluster = {"BACKPROP_LIVE_DB", "BACKPROP_LIVE_EXECUTOR", "BACKPROP_LIVE_RAY_ADDRESS"}
    env = {key: str(value) for key, value in environment.items() if key not in cluster}
    with serve_process(tmp_path / "health.db", env=env) as server:
        port = server.url.rsplit(":", 1)[1]
        code = probe[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        # and the probe is not one that passes anything: a server that refuses the Host
        refused = server.client.get("/api/health", headers={"host": "api-1:8000"})
        assert refused.status_code == 400


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {**os.environ, **env_example(), **SECRETS}
    result = subprocess.run(
        [*command, "--file", str(COMPOSE), "config", "--quiet"],
        cwd=DEPLOY,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr

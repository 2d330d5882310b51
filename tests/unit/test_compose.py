"""docker-compose.yml, read without a Docker engine: the single-node hub and the cluster profile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from liaison.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NODES = ("rabbit-1", "rabbit-2", "rabbit-3")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as data."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def _profile(service: dict[str, Any]) -> str | None:
    profiles = service.get("profiles")
    return profiles[0] if profiles else None


def _expand(value: str) -> str:
    """``${VAR:-default}`` as compose would expand it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


class TestStructure:
    def test_every_reference_resolves(self, compose: dict[str, Any]) -> None:
        """Every depends_on names a service, every named volume is declared, every mounted file exists."""
        services = compose["services"]
        for name, service in services.items():
            for dependency in service.get("depends_on", {}):
                assert dependency in services, f"{name} depends on unknown {dependency}"
            for mount in service.get("volumes", []):
                source = mount.split(":", 1)[0]
                if source.startswith("./"):
                    assert (ROOT / source).is_file(), f"{name} mounts missing {source}"
                else:
                    assert source in compose["volumes"], f"{name} uses undeclared volume {source}"

    def test_ports_are_loopback_only_and_distinct(self, compose: dict[str, Any]) -> None:
        """Every published port is on 127.0.0.1, and no two services publish the same one."""
        seen: dict[str, str] = {}
        for name, service in compose["services"].items():
            for port in service.get("ports", []):
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
                host_port = port.split(":")[1]
                assert host_port not in seen, (
                    f"{name} and {seen[host_port]} both publish {host_port}"
                )
                seen[host_port] = name

    def test_default_services_never_wait_on_the_cluster(self, compose: dict[str, Any]) -> None:
        """`docker compose up` (no profile) starts nothing that depends on a cluster-only service."""
        services = compose["services"]
        for name, service in services.items():
            if _profile(service) is None:
                for dependency in service.get("depends_on", {}):
                    assert _profile(services[dependency]) is None, f"{name} → {dependency}"


class TestClusterProfile:
    def test_three_nodes_with_one_cookie_discover_each_other(self, compose: dict[str, Any]) -> None:
        """rabbit-1..3: cluster profile, own hostname and data volume, one cookie, classic peer discovery of exactly these three."""
        services = compose["services"]
        cookies = set()
        for node in NODES:
            service = services[node]
            assert _profile(service) == "cluster"
            assert service["hostname"] == node
            assert f"{node}-data:/var/lib/rabbitmq" in service["volumes"]
            env = service["environment"]
            cookie = _expand(env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"])
            assert cookie == _expand(env["RABBITMQ_CTL_ERL_ARGS"])  # the CLI can reach it
            cookies.add(cookie)
            assert (
                "./deploy/rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro"
                in (service["volumes"])
            )
        assert len(cookies) == 1
        conf = (ROOT / "deploy/rabbitmq/cluster.conf").read_text(encoding="utf-8")
        listed = re.findall(
            r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.M
        )
        assert sorted(listed) == list(NODES)
        assert "peer_discovery_backend = classic_config" in conf

    def test_hubs_are_given_every_node(self, compose: dict[str, Any]) -> None:
        """The cluster's router and audit writer get all three nodes' URLs, which the settings accept, and wait for healthy nodes."""
        services = compose["services"]
        for name in ("hub-cluster", "audit-writer-cluster"):
            service = services[name]
            assert _profile(service) == "cluster"
            env = {k: _expand(str(v)) for k, v in service["environment"].items()}
            settings = load_settings(
                environ={k: v for k, v in env.items() if k.startswith("LIAISON_")}
            )
            hosts = [url.split("@", 1)[1].split(":", 1)[0] for url in settings.amqp_urls]
            assert hosts == list(NODES), name
            assert settings.vhost == "liaison"
        assert set(services["hub-cluster"]["depends_on"]) == set(NODES)
        for node in NODES:
            assert services["hub-cluster"]["depends_on"][node]["condition"] == "service_healthy"

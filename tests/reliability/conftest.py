"""Fixtures of the reliability suite: the hub's topology on the test's vhost, the mode, a cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from liaison.adapters.management import Management
from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply
from tests import rabbit_nodes
from tests.conftest import long_mode, missing_requirement


@pytest.fixture
def long(request: pytest.FixtureRequest) -> bool:
    """Whether this run is the long one (``--long`` or ``LIAISON_PROOF_LONG=1``)."""
    return long_mode(request.config)


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    """Settings whose vhost carries the full topology of the bundled directory."""
    apply(settings, load_directory(None))
    return settings


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[rabbit_nodes.Cluster]:
    """Three extra RabbitMQ nodes joined in a cluster, once per session, killed afterwards."""
    why = rabbit_nodes.missing()
    if why is not None:
        missing_requirement(f"extra RabbitMQ nodes cannot start here: {why}")
    with rabbit_nodes.cluster(3) as cluster:
        yield cluster


@pytest.fixture
def cluster_settings(rabbit_cluster: rabbit_nodes.Cluster, tmp_path: Path) -> Settings:
    """Hub settings naming all three nodes, on a fresh vhost with the topology applied."""
    tag = uuid.uuid4().hex[:8]
    vhost = f"liaison-cluster-{tag}"
    first = rabbit_cluster.nodes[0]
    settings = Settings(
        amqp_url=rabbit_cluster.amqp_urls(vhost, "guest:guest"),
        management_url=f"http://127.0.0.1:{first.management_port}",
        user_prefix=f"k{tag}-",
        credentials_dir=tmp_path / "credentials",
        audit_dir=tmp_path / "audit",
        hub_key_path=tmp_path / "hub.key",
        http_port=0,
        log_json=True,
    )
    with Management(settings) as api:
        api.put_vhost(vhost)
        api.put_permissions(vhost, settings.hub_user, configure=".*", write=".*", read=".*")
    apply(settings, load_directory(None))
    return settings

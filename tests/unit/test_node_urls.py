"""A broker of several nodes: one ``amqp_url`` setting naming them all, and failing over."""

from __future__ import annotations

from pathlib import Path

import pytest

from liaison.adapters.connections import Failover, node_parameters
from liaison.errors import ConfigError
from liaison.settings import Settings, load_settings
from liaison.topology import credentials_match, credentials_url, write_credentials
from producers.errors import SdkConfigError
from producers.settings import ParticipantSettings

NODES = (
    "amqp://hub:pw@rabbit-1:5672/liaison, amqp://hub:pw@rabbit-2:5673/liaison,"
    "amqp://hub:pw@rabbit-3:5674/liaison"
)


class TestSettings:
    def test_comma_separated_nodes_share_one_identity_and_vhost(self) -> None:
        """Three node URLs in LIAISON_AMQP_URL: three nodes, one vhost, one hub user."""
        settings = load_settings(environ={"LIAISON_AMQP_URL": NODES})
        assert [u.split("@")[1] for u in settings.amqp_urls] == [
            "rabbit-1:5672/liaison",
            "rabbit-2:5673/liaison",
            "rabbit-3:5674/liaison",
        ]
        assert settings.vhost == "liaison"
        assert settings.hub_user == "hub"
        assert settings.management_auth == ("hub", "pw")

    @pytest.mark.parametrize(
        "other",
        [
            "amqp://other:pw@rabbit-2/liaison",
            "amqp://hub:pw@rabbit-2/elsewhere",
            "amqps://hub:pw@rabbit-2/liaison",
        ],
    )
    def test_a_node_with_another_user_vhost_or_scheme_is_refused(self, other: str) -> None:
        """Nodes of one hub cannot differ in user, vhost or scheme: a clear configuration error."""
        with pytest.raises(ConfigError, match="same scheme, user, password and vhost"):
            load_settings(environ={"LIAISON_AMQP_URL": f"amqp://hub:pw@rabbit-1/liaison,{other}"})

    def test_an_empty_list_is_refused(self) -> None:
        """A URL list of only commas names no broker."""
        with pytest.raises(ConfigError, match="names no broker"):
            load_settings(environ={"LIAISON_AMQP_URL": " , "})


class TestFailover:
    def test_every_node_becomes_pika_parameters_in_order(self) -> None:
        """A blocking connection gets all nodes, in the order configured."""
        params = node_parameters(Settings(amqp_url=NODES), name="x")
        assert [(p.host, p.port, p.virtual_host) for p in params] == [
            ("rabbit-1", 5672, "liaison"),
            ("rabbit-2", 5673, "liaison"),
            ("rabbit-3", 5674, "liaison"),
        ]

    def test_each_reconnection_goes_to_the_next_node(self) -> None:
        """The router's reconnections rotate over the nodes, so a lost node is not retried first."""
        nodes = Failover(Settings(amqp_url=NODES), name="x")
        assert [nodes.next().host for _ in range(4)] == [
            "rabbit-1",
            "rabbit-2",
            "rabbit-3",
            "rabbit-1",
        ]


class TestParticipantCredentials:
    def test_credentials_name_every_node(self, tmp_path: Path) -> None:
        """A participant's credentials file lists every node, with its own user, and matches the hub's nodes."""
        settings = Settings(amqp_url=NODES, credentials_dir=tmp_path)
        url = credentials_url(settings, "p-gs", "secret")
        assert url == (
            "amqp://p-gs:secret@rabbit-1:5672/liaison,amqp://p-gs:secret@rabbit-2:5673/liaison,"
            "amqp://p-gs:secret@rabbit-3:5674/liaison"
        )
        write_credentials(settings, "gs", "p-gs", "secret")
        assert credentials_match(settings, "gs", "p-gs")
        fewer = settings.replace(amqp_url="amqp://hub:pw@rabbit-1:5672/liaison")
        assert not credentials_match(fewer, "gs", "p-gs")

    def test_the_sdk_fails_over_round_robin_over_the_same_nodes(self) -> None:
        """The SDK hands kombu every node as alternates, round-robin, and masks every password."""
        sdk = ParticipantSettings(code="gs", amqp_url=NODES.replace("hub:pw", "gs:secret"))
        options = sdk.connection_options()
        assert options["hostname"].split(";") == [
            "amqp://gs:secret@rabbit-1:5672/liaison",
            "amqp://gs:secret@rabbit-2:5673/liaison",
            "amqp://gs:secret@rabbit-3:5674/liaison",
        ]
        assert options["failover_strategy"] == "round-robin"
        assert "secret" not in repr(sdk)
        assert sdk.rabbit_user == "gs"

    def test_the_sdk_refuses_a_list_mixing_tls_and_plain(self) -> None:
        """amqp:// and amqps:// nodes in one list are refused, not silently half-encrypted."""
        with pytest.raises(SdkConfigError, match="one scheme"):
            ParticipantSettings(
                code="gs", amqp_url="amqps://gs:s@rabbit-1/liaison,amqp://gs:s@rabbit-2/liaison"
            )

"""The topology plan and its comparison with a broker's state, without a broker."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from liaison.directory import Directory, load_directory
from liaison.errors import ConfigError
from liaison.settings import Settings
from liaison.topology import (
    PARTICIPANT_TAG,
    RETRY_DELAY_EXCHANGE,
    BindingSpec,
    Change,
    Observed,
    QueueSpec,
    TopicPermission,
    Topology,
    compare,
    plan,
)
from schemas import wire

SETTINGS = Settings(amqp_url="amqp://hub:secret@broker:5672/liaison", user_prefix="lx-")
#: Every exchange and queue name a participant might try.
ALL_EXCHANGES = (
    wire.INGRESS_EXCHANGE,
    wire.DELIVER_EXCHANGE,
    wire.DEAD_EXCHANGE,
    wire.AUDIT_EXCHANGE,
    wire.RETRY_EXCHANGE,
    RETRY_DELAY_EXCHANGE,
    "amq.default",
    "amq.topic",
    "",
)


@pytest.fixture(scope="module")
def directory() -> Directory:
    """The bundled directory."""
    return load_directory()


@pytest.fixture(scope="module")
def topology(directory: Directory) -> Topology:
    """The plan for the bundled directory."""
    return plan(directory, SETTINGS)


def _queue(topology: Topology, name: str) -> dict[str, object]:
    spec = next(q for q in topology.queues if q.name == name)
    assert spec.durable
    return dict(spec.arguments)


class TestExchangesAndQueues:
    """What the hub declares."""

    def test_exchanges(self, topology: Topology) -> None:
        """The five wire exchanges are durable and of the right type."""
        kinds = {e.name: (e.type, e.internal, e.durable) for e in topology.exchanges}
        assert kinds[wire.INGRESS_EXCHANGE] == ("topic", False, True)
        assert kinds[wire.DELIVER_EXCHANGE] == ("direct", False, True)
        assert kinds[wire.DEAD_EXCHANGE] == ("fanout", False, True)
        assert kinds[wire.AUDIT_EXCHANGE] == ("fanout", False, True)
        # Topic, so that RabbitMQ enforces the participant's topic permission on it.
        assert kinds[wire.RETRY_EXCHANGE] == ("topic", False, True)
        assert kinds[RETRY_DELAY_EXCHANGE] == ("headers", True, True)

    def test_every_participant_has_an_inbox(self, topology: Topology, directory: Directory) -> None:
        """One quorum inbox per participant, dead-lettering to liaison.dead, bound by code."""
        for code in directory.codes():
            args = _queue(topology, wire.inbox_queue(code))
            assert args["x-queue-type"] == "quorum"
            assert args["x-delivery-limit"] == SETTINGS.delivery_limit
            assert args["x-dead-letter-exchange"] == wire.DEAD_EXCHANGE
            assert args["x-dead-letter-strategy"] == "at-least-once"
            binding = BindingSpec(wire.DELIVER_EXCHANGE, wire.inbox_queue(code), routing_key=code)
            assert binding in topology.bindings

    def test_every_participant_has_an_urgent_inbox(
        self, topology: Topology, directory: Directory
    ) -> None:
        """inbox.<code>.urgent: same arguments as the routine inbox, bound by <code>.urgent."""
        for code in directory.codes():
            urgent = wire.urgent_inbox_queue(code)
            assert urgent == f"inbox.{code}.urgent"
            assert _queue(topology, urgent) == _queue(topology, wire.inbox_queue(code))
            binding = BindingSpec(wire.DELIVER_EXCHANGE, urgent, routing_key=f"{code}.urgent")
            assert binding in topology.bindings

    def test_delivery_limit_follows_settings(self, directory: Directory) -> None:
        """x-delivery-limit is the configured one."""
        topology = plan(directory, SETTINGS.replace(delivery_limit=9))
        assert _queue(topology, "inbox.gs")["x-delivery-limit"] == 9

    def test_hub_queues_outlast_failovers(self, directory: Directory) -> None:
        """The hub's own queues take hub_delivery_limit, the inboxes delivery_limit."""
        topology = plan(directory, SETTINGS.replace(delivery_limit=3, hub_delivery_limit=70))
        for queue in (wire.INGRESS_QUEUE, wire.AUDIT_QUEUE, wire.RETRY_DUE_QUEUE):
            assert _queue(topology, queue)["x-delivery-limit"] == 70, queue
        assert _queue(topology, "inbox.gs")["x-delivery-limit"] == 3

    def test_hub_queues(self, topology: Topology) -> None:
        """Ingress takes every type; dead letters have no target; audit has one active consumer."""
        assert BindingSpec(wire.INGRESS_EXCHANGE, wire.INGRESS_QUEUE, routing_key="#") in (
            topology.bindings
        )
        assert _queue(topology, wire.INGRESS_QUEUE)["x-dead-letter-exchange"] == wire.DEAD_EXCHANGE
        assert _queue(topology, wire.DEAD_QUEUE) == {"x-queue-type": "quorum"}
        assert BindingSpec(wire.DEAD_EXCHANGE, wire.DEAD_QUEUE) in topology.bindings
        audit = _queue(topology, wire.AUDIT_QUEUE)
        assert audit["x-single-active-consumer"] is True
        assert audit["x-queue-type"] == "quorum"
        assert BindingSpec(wire.AUDIT_EXCHANGE, wire.AUDIT_QUEUE) in topology.bindings

    @pytest.mark.parametrize(("delay", "milliseconds"), list(wire.RETRY_DELAYS_MS.items()))
    def test_delay_queues(self, topology: Topology, delay: str, milliseconds: int) -> None:
        """Each delay queue holds for its TTL, then dead-letters to the retry relay, never
        to liaison.deliver (CC/BCC headers would reach any inbox through it)."""
        args = _queue(topology, wire.retry_queue(delay))
        assert args["x-message-ttl"] == milliseconds
        assert args["x-dead-letter-exchange"] == wire.RETRY_DUE_EXCHANGE
        assert "x-dead-letter-routing-key" not in args
        binding = BindingSpec(
            RETRY_DELAY_EXCHANGE,
            wire.retry_queue(delay),
            arguments=(("x-liaison-delay", delay), ("x-match", "all-with-x")),
        )
        assert binding in topology.bindings

    def test_retry_exchange_feeds_the_delay_exchange(self, topology: Topology) -> None:
        """Everything parked on liaison.retry reaches the internal headers exchange."""
        binding = BindingSpec(
            wire.RETRY_EXCHANGE, RETRY_DELAY_EXCHANGE, "exchange", routing_key="#"
        )
        assert binding in topology.bindings

    def test_retries_and_parks_reach_only_the_relay(self, topology: Topology) -> None:
        """Nothing a participant parks is bound to liaison.deliver or liaison.dead: delay
        queues and the park binding lead to the internal fanout read by the hub's relay."""
        kinds = {e.name: (e.type, e.internal) for e in topology.exchanges}
        assert kinds[wire.RETRY_DUE_EXCHANGE] == ("fanout", True)
        assert BindingSpec(wire.RETRY_DUE_EXCHANGE, wire.RETRY_DUE_QUEUE) in topology.bindings
        due = _queue(topology, wire.RETRY_DUE_QUEUE)
        assert due["x-queue-type"] == "quorum"
        assert due["x-dead-letter-exchange"] == wire.DEAD_EXCHANGE
        park = (("x-liaison-delay", "dead"), ("x-match", "all-with-x"))
        assert (
            BindingSpec(RETRY_DELAY_EXCHANGE, wire.RETRY_DUE_EXCHANGE, "exchange", arguments=park)
            in topology.bindings
        )
        reachable = {RETRY_DELAY_EXCHANGE}
        for binding in topology.bindings:
            if binding.source in reachable:
                assert binding.destination not in {wire.DELIVER_EXCHANGE, wire.DEAD_EXCHANGE}
        old = BindingSpec(RETRY_DELAY_EXCHANGE, wire.DEAD_EXCHANGE, "exchange", arguments=park)
        assert topology.retired == (old,)
        assert topology.recreatable == {wire.retry_queue(d) for d in wire.RETRY_DELAYS_MS}

    def test_plan_is_a_pure_value(self, directory: Directory) -> None:
        """Planning twice gives equal, hashable values."""
        assert plan(directory, SETTINGS) == plan(directory, SETTINGS)
        assert hash(plan(directory, SETTINGS)) == hash(plan(directory, SETTINGS))

    def test_describe_lists_every_object(self, topology: Topology) -> None:
        """The dry-run listing has one line per object."""
        lines = topology.describe()
        count = 1 + len(topology.exchanges) + len(topology.queues) + len(topology.bindings)
        assert len(lines) == count + len(topology.users)
        assert "queue inbox.gs (" in "\n".join(lines)


class TestUsers:
    """Least privilege per participant; full rights for the hub."""

    def test_hub_user_has_full_permissions(self, topology: Topology) -> None:
        """The hub's own user configures, writes and reads everything on the vhost."""
        hub = topology.user("hub")
        assert hub is not None
        assert hub.code is None
        assert (hub.permissions.configure, hub.permissions.write, hub.permissions.read) == (
            ".*",
            ".*",
            ".*",
        )

    def test_one_user_per_participant(self, topology: Topology, directory: Directory) -> None:
        """Each participant has a user named with the prefix."""
        for code in directory.codes():
            user = topology.user(f"lx-{code}")
            assert user is not None
            assert user.code == code

    def test_participant_permissions(self, topology: Topology, directory: Directory) -> None:
        """Declare nothing; write ingress and retry only; read its own inbox only."""
        queues = [q.name for q in topology.queues]
        for participant in directory:
            user = topology.user(f"lx-{participant.code}")
            assert user is not None
            perms = user.permissions
            assert perms.configure == "^$"
            assert not any(re.fullmatch(perms.configure, name) for name in [*queues, "x"])
            writable = [e for e in ALL_EXCHANGES if re.fullmatch(perms.write, e)]
            assert writable == [wire.INGRESS_EXCHANGE, wire.RETRY_EXCHANGE]
            readable = [q for q in queues if re.fullmatch(perms.read, q)]
            # Its two precedence bands, nobody else's (no code is a prefix of another's).
            assert readable == [*reversed(wire.inbox_queues(participant.code))]

    def test_topic_permissions(self, topology: Topology, directory: Directory) -> None:
        """Ingress: only the types it may send; retry: only its own code; no topic reads."""
        for participant in directory:
            user = topology.user(f"lx-{participant.code}")
            assert user is not None
            assert set(user.topic_permissions) == {
                TopicPermission(wire.INGRESS_EXCHANGE, participant.send_pattern_regex(), "^$"),
                TopicPermission(wire.RETRY_EXCHANGE, f"^{participant.code}$", "^$"),
            }
            retry = next(t for t in user.topic_permissions if t.exchange == wire.RETRY_EXCHANGE)
            others = [c for c in directory.codes() if re.fullmatch(retry.write, c)]
            assert others == [participant.code]


def _observed(topology: Topology) -> Observed:
    """A broker on which everything in the plan exists exactly."""
    return Observed(
        vhost_exists=True,
        exchanges={e.name: e for e in topology.exchanges},
        queues={q.name: q for q in topology.queues},
        bindings=frozenset(topology.bindings),
        users={
            u.name: ((PARTICIPANT_TAG,) if u.code else ("administrator",)) for u in topology.users
        },
        permissions={u.name: u.permissions for u in topology.users},
        topic_permissions={u.name: frozenset(u.topic_permissions) for u in topology.users},
    )


def _compare(topology: Topology, observed: Observed) -> list[str]:
    return [str(d) for d in compare(topology, observed, tag=PARTICIPANT_TAG)]


class TestCompare:
    """Plan against broker, as values."""

    def test_in_sync(self, topology: Topology) -> None:
        """A broker with exactly the plan shows no difference."""
        assert _compare(topology, _observed(topology)) == []

    def test_fresh_broker(self, topology: Topology) -> None:
        """On an empty broker everything is missing, and all of it can be applied."""
        empty = Observed(False, {}, {}, frozenset(), {"hub": ("administrator",)}, {}, {})
        differences = compare(topology, empty, tag=PARTICIPANT_TAG)
        assert str(differences[0]) == "missing vhost liaison"
        assert all(d.change is Change.MISSING for d in differences)
        assert all(d.fixable for d in differences)

    def test_missing_queue(self, topology: Topology) -> None:
        """A deleted inbox (and its binding) is missing."""
        observed = _observed(topology)
        queues = dict(observed.queues)
        del queues["inbox.gs"]
        bindings = observed.bindings - {
            BindingSpec(wire.DELIVER_EXCHANGE, "inbox.gs", "queue", "gs")
        }
        found = _compare(topology, replace(observed, queues=queues, bindings=bindings))
        assert found == [
            "missing queue inbox.gs",
            "missing binding liaison.deliver -> queue inbox.gs key 'gs'",
        ]

    def test_changed_queue_is_not_fixable(self, topology: Topology) -> None:
        """An inbox declared with other arguments is reported, and apply will not touch it."""
        observed = _observed(topology)
        queues = {**observed.queues, "inbox.gs": QueueSpec.of("inbox.gs", {})}
        (difference,) = compare(topology, replace(observed, queues=queues), tag=PARTICIPANT_TAG)
        assert difference.change is Change.CHANGED
        assert "x-queue-type (none) -> quorum" in difference.detail
        assert not difference.fixable

    def test_extras_are_reported_not_fixed(self, topology: Topology) -> None:
        """Stale queues, exchanges, bindings and users in our namespace are extra."""
        observed = _observed(topology)
        stale = BindingSpec(wire.DELIVER_EXCHANGE, "inbox.gone", routing_key="gone")
        tap = BindingSpec(wire.AUDIT_EXCHANGE, "ops.audit-mirror")
        observed = replace(
            observed,
            queues={
                **observed.queues,
                "inbox.gone": QueueSpec.of("inbox.gone", {}),
                "ops.x": QueueSpec.of("ops.x", {}),
            },
            exchanges={
                **observed.exchanges,
                "liaison.old": replace(topology.exchanges[0], name="liaison.old"),
            },
            bindings=observed.bindings | {stale, tap},
            users={**observed.users, "lx-gone": (PARTICIPANT_TAG,), "operator": ("management",)},
            permissions={
                **observed.permissions,
                "lx-gone": topology.users[1].permissions,
                "operator": topology.users[0].permissions,
            },
        )
        differences = compare(topology, observed, tag=PARTICIPANT_TAG)
        assert {(d.what, d.name) for d in differences} == {
            ("exchange", "liaison.old"),
            ("queue", "inbox.gone"),
            ("binding", "liaison.deliver -> queue inbox.gone key 'gone'"),
            ("user", "lx-gone"),
        }
        assert all(d.change is Change.EXTRA and not d.fixable for d in differences)

    def test_a_retired_binding_is_removed(self, topology: Topology) -> None:
        """The old park binding straight to liaison.dead is reported and fixable (removed)."""
        observed = _observed(topology)
        observed = replace(observed, bindings=observed.bindings | set(topology.retired))
        (difference,) = compare(topology, observed, tag=PARTICIPANT_TAG)
        assert difference.change is Change.EXTRA
        assert difference.what == "binding"
        assert "retired" in difference.detail
        assert difference.fixable
        assert difference.spec == topology.retired[0]

    def test_an_empty_delay_queue_with_old_arguments_is_recreated(self, topology: Topology) -> None:
        """A delay queue still dead-lettering to liaison.deliver: recreated when empty,
        reported (not fixable) while it holds messages or its depth is unknown."""
        name = wire.retry_queue("5s")
        planned = next(q for q in topology.queues if q.name == name)
        stale = QueueSpec.of(
            name, {**planned.argument_map(), "x-dead-letter-exchange": wire.DELIVER_EXCHANGE}
        )
        observed = _observed(topology)
        observed = replace(observed, queues={**observed.queues, name: stale})
        for depths, fixable in (({name: 0}, True), ({name: 3}, False), ({}, False)):
            (difference,) = compare(topology, replace(observed, depths=depths), tag=PARTICIPANT_TAG)
            assert difference.change is Change.CHANGED
            assert "x-dead-letter-exchange liaison.deliver -> liaison.retry.due" in (
                difference.detail
            )
            assert difference.fixable is fixable
            assert difference.recreate is fixable

    def test_permission_drift(self, topology: Topology) -> None:
        """Loosened permissions and a wider topic permission are changed, and fixable."""
        observed = _observed(topology)
        user = topology.user("lx-ona")
        assert user is not None
        loose = replace(user.permissions, configure=".*")
        wide = frozenset(
            replace(t, write=".*") if t.exchange == wire.INGRESS_EXCHANGE else t
            for t in user.topic_permissions
        )
        observed = replace(
            observed,
            permissions={**observed.permissions, "lx-ona": loose},
            topic_permissions={**observed.topic_permissions, "lx-ona": wide},
        )
        differences = compare(topology, observed, tag=PARTICIPANT_TAG)
        assert [(d.change, d.what, d.name) for d in differences] == [
            (Change.CHANGED, "permissions", "lx-ona"),
            (Change.CHANGED, "topic-permissions", "lx-ona"),
        ]
        assert all(d.fixable for d in differences)


def test_participant_cannot_be_the_hub(directory: Directory) -> None:
    """A participant whose user name would be the hub's own user stops the plan."""
    with pytest.raises(ConfigError, match="hub's own user"):
        plan(directory, Settings(amqp_url="amqp://gs:pw@broker:5672/liaison"))


def test_missing_hub_user_is_not_fixable(topology: Topology) -> None:
    """apply cannot create the hub's own user: it does not know its password."""
    observed = replace(_observed(topology), users={})
    missing = [d for d in compare(topology, observed, tag=PARTICIPANT_TAG) if d.what == "user"]
    assert [d.fixable for d in missing] == [False] + [True] * (len(topology.users) - 1)


@pytest.mark.parametrize("name", ["dead", "due"])
def test_a_delay_cannot_take_a_name_the_retry_path_uses(name: str) -> None:
    """'dead' parks and hub.retry.due is the relay's queue: neither names a delay queue."""
    with pytest.raises(ValueError, match="not 'dead' or 'due'"):
        Settings(retry_delays_ms={name: 1000})

"""Plan against broker: the differences, as values, computed without I/O.

``Observed`` is what the management API reports, reduced to the same spec values
as the plan; ``compare`` is set arithmetic over the two. Objects in the hub's
namespace that the plan no longer has are reported as extra; nothing here (nor in
``apply``) ever deletes them: an inbox may still hold messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from liaison.topology._plan import (
    BindingSpec,
    ExchangeSpec,
    Permissions,
    QueueSpec,
    TopicPermission,
    Topology,
    UserSpec,
)

#: Names that belong to the hub: anything else on the vhost is somebody else's business.
EXCHANGE_PREFIX = "liaison."
QUEUE_PREFIXES = ("inbox.", "hub.")


class Change(StrEnum):
    """How the broker differs from the plan."""

    MISSING = "missing"
    EXTRA = "extra"
    CHANGED = "changed"


Spec = ExchangeSpec | QueueSpec | BindingSpec | UserSpec


@dataclass(frozen=True)
class Difference:
    """One way in which the broker differs from the plan."""

    change: Change
    #: vhost, exchange, queue, binding, user, permissions or topic-permissions.
    what: str
    name: str
    detail: str = ""
    #: The planned object (for missing or changed ones): what ``apply`` would declare;
    #: for a retired binding, the binding ``apply`` removes.
    spec: Spec | None = field(default=None, compare=False)
    #: A changed queue that only holds messages in passing and is empty now: ``apply``
    #: deletes it (if still empty) and declares it again with the planned arguments.
    recreate: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.change.value} {self.what} {self.name}{detail}"

    @property
    def fixable(self) -> bool:
        """Whether ``apply`` repairs it: missing things, permissions, retired bindings and
        empty delay queues; not other changed queues, nor other extras."""
        if self.change is Change.EXTRA:
            return self.what == "binding" and self.spec is not None
        if self.what == "user" and isinstance(self.spec, UserSpec) and self.spec.code is None:
            return False  # the hub's own user: its password is in amqp_url, not ours to set
        return (
            self.change is Change.MISSING
            or self.what in {"permissions", "topic-permissions"}
            or self.recreate
        )


@dataclass(frozen=True)
class Observed:
    """The broker's state on one vhost, as spec values."""

    vhost_exists: bool
    exchanges: Mapping[str, ExchangeSpec]
    queues: Mapping[str, QueueSpec]
    bindings: frozenset[BindingSpec]
    #: Every user on the broker, name → tags.
    users: Mapping[str, tuple[str, ...]]
    #: Users with permissions on the vhost.
    permissions: Mapping[str, Permissions]
    topic_permissions: Mapping[str, frozenset[TopicPermission]]
    #: Messages in each queue (ready and unacked), where the broker said.
    depths: Mapping[str, int] = field(default_factory=dict)


def compare(topology: Topology, observed: Observed, *, tag: str) -> list[Difference]:
    """Every difference, planned order first, then the extras.

    ``tag`` marks the participant users the topology manages, so that one left
    behind by a participant who left the directory is reported as extra.
    """
    found: list[Difference] = []
    if not observed.vhost_exists:
        # Everything on it is missing too; users are broker-wide and may exist already.
        found.append(Difference(Change.MISSING, "vhost", topology.vhost))
    found += _compare_exchanges(topology, observed)
    found += _compare_queues(topology, observed)
    found += _compare_bindings(topology, observed)
    found += _compare_users(topology, observed, tag)
    return found


def _what(spec: Spec) -> str:
    return {ExchangeSpec: "exchange", QueueSpec: "queue", BindingSpec: "binding"}.get(
        type(spec), "user"
    )


def _missing(spec: Spec) -> Difference:
    name = _binding_name(spec) if isinstance(spec, BindingSpec) else spec.name
    return Difference(Change.MISSING, _what(spec), name, spec=spec)


def _missing_permissions(user: UserSpec) -> Difference:
    return Difference(Change.MISSING, "permissions", user.name, str(user.permissions), spec=user)


def _binding_name(binding: BindingSpec) -> str:
    return str(binding).removeprefix("binding ")


def _compare_exchanges(topology: Topology, observed: Observed) -> list[Difference]:
    found: list[Difference] = []
    for spec in topology.exchanges:
        actual = observed.exchanges.get(spec.name)
        if actual is None:
            found.append(_missing(spec))
        elif actual != spec:
            found.append(
                Difference(Change.CHANGED, "exchange", spec.name, f"is {actual}, plan {spec}", spec)
            )
    planned = {spec.name for spec in topology.exchanges}
    found += [
        Difference(Change.EXTRA, "exchange", name)
        for name in sorted(observed.exchanges)
        if name.startswith(EXCHANGE_PREFIX) and name not in planned
    ]
    return found


def _compare_queues(topology: Topology, observed: Observed) -> list[Difference]:
    found: list[Difference] = []
    for spec in topology.queues:
        actual = observed.queues.get(spec.name)
        if actual is None:
            found.append(_missing(spec))
        elif actual != spec:
            found.append(_changed_queue(topology, observed, actual, spec))
    planned = {spec.name for spec in topology.queues}
    found += [
        Difference(Change.EXTRA, "queue", name, "not in the plan; left in place")
        for name in sorted(observed.queues)
        if name.startswith(QUEUE_PREFIXES) and name not in planned
    ]
    return found


def _changed_queue(
    topology: Topology, observed: Observed, actual: QueueSpec, spec: QueueSpec
) -> Difference:
    delta = _argument_delta(actual, spec)
    if spec.name not in topology.recreatable:
        note = " (arguments cannot change in place: drain, delete, re-apply)"
        return Difference(Change.CHANGED, "queue", spec.name, delta + note, spec)
    waiting = observed.depths.get(spec.name)
    if waiting == 0:
        note = " (a retry-delay queue, empty: apply deletes and declares it again)"
        return Difference(Change.CHANGED, "queue", spec.name, delta + note, spec, recreate=True)
    count = "an unknown number of" if waiting is None else str(waiting)
    note = (
        f" (a retry-delay queue holding {count} message(s): apply recreates it once it is"
        " empty; re-run apply when they have come due)"
    )
    return Difference(Change.CHANGED, "queue", spec.name, delta + note, spec)


def _argument_delta(actual: QueueSpec, spec: QueueSpec) -> str:
    have, want = actual.argument_map(), spec.argument_map()
    parts = [
        f"{key} {have.get(key, '(none)')} -> {want.get(key, '(none)')}"
        for key in sorted(have.keys() | want.keys())
        if have.get(key) != want.get(key)
    ]
    if actual.durable != spec.durable:
        parts.append(f"durable {actual.durable} -> {spec.durable}")
    # A queue's arguments are fixed at declaration: changing them means deleting it.
    return "; ".join(parts)


def _compare_bindings(topology: Topology, observed: Observed) -> list[Difference]:
    found = [_missing(spec) for spec in topology.bindings if spec not in observed.bindings]
    planned = set(topology.bindings)
    ours = {spec.name for spec in topology.exchanges}
    found += [
        Difference(
            Change.EXTRA,
            "binding",
            _binding_name(binding),
            "retired: a side door past the hub; apply removes it",
            binding,
        )
        for binding in topology.retired
        if binding in observed.bindings
    ]
    retired = set(topology.retired)
    found += [
        Difference(Change.EXTRA, "binding", _binding_name(binding), "not in the plan")
        for binding in sorted(observed.bindings, key=str)
        if binding not in planned
        and binding not in retired
        and binding.source in ours
        # Someone's own queue tapping an exchange (an audit mirror) is not drift.
        and (
            binding.destination.startswith(QUEUE_PREFIXES)
            or binding.destination.startswith(EXCHANGE_PREFIX)
        )
    ]
    return found


def _compare_users(topology: Topology, observed: Observed, tag: str) -> list[Difference]:
    found: list[Difference] = []
    for user in topology.users:
        if user.name not in observed.users:
            found.append(_missing(user))
        actual = observed.permissions.get(user.name)
        if actual is None:
            found.append(_missing_permissions(user))
        elif actual != user.permissions:
            found.append(
                Difference(
                    Change.CHANGED,
                    "permissions",
                    user.name,
                    f"{actual} -> {user.permissions}",
                    user,
                )
            )
        have = observed.topic_permissions.get(user.name, frozenset())
        want = frozenset(user.topic_permissions)
        for topic in sorted(want - have, key=str):
            was = next((t for t in have if t.exchange == topic.exchange), None)
            change, detail = (
                (Change.MISSING, str(topic))
                if was is None
                else (Change.CHANGED, f"{was} -> {topic}")
            )
            found.append(Difference(change, "topic-permissions", user.name, detail, user))
        planned_exchanges = {topic.exchange for topic in want}
        found += [
            Difference(Change.EXTRA, "topic-permissions", user.name, str(topic))
            for topic in sorted(have, key=str)
            if topic.exchange not in planned_exchanges
        ]
    planned_users = {user.name for user in topology.users}
    found += [
        Difference(Change.EXTRA, "user", name, "participant user not in the directory")
        for name in sorted(observed.permissions)
        if name not in planned_users and tag in observed.users.get(name, ())
    ]
    return found


__all__ = ["Change", "Difference", "Observed", "compare"]

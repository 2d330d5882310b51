"""The broker topology as values: what the hub needs on RabbitMQ, computed without I/O.

``plan(directory, settings)`` is a pure function; applying and comparing it with
the broker happen elsewhere (``_apply``, ``_compare``). Every spec is a frozen,
hashable value, so comparing plan and broker is set arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from liaison.directory import Directory, Participant
from liaison.errors import ConfigError
from liaison.settings import Settings
from schemas import wire

#: Internal headers exchange that spreads parked messages over the delay queues.
#:
#: Why not let participants publish to a headers exchange directly: RabbitMQ
#: checks topic permissions on topic exchanges only (``check_topic_authorisation``
#: in ``rabbit_channel`` matches ``type = topic`` and lets every other type through).
#: On a headers exchange nothing would stop a participant from parking a message
#: under another participant's code, and the delay queue would then dead-letter it
#: straight into that participant's inbox, past the router. So ``liaison.retry``
#: is a topic exchange, where the topic permission ``^<code>$`` holds, bound with
#: ``#`` to this internal exchange (``internal``: nobody can publish to it), which
#: routes on ``x-liaison-delay`` exactly as the wire contract says.
#:
#: Its bindings match with ``x-match: all-with-x``: with plain ``all`` RabbitMQ
#: leaves every ``x-``-prefixed binding argument out of the match, so a binding on
#: ``x-liaison-delay`` alone would match every message (each parked message went
#: to every delay queue). ``all-with-x`` exists since RabbitMQ 3.10.
RETRY_DELAY_EXCHANGE: Final = "liaison.retry.delay"
#: The ``x-liaison-delay`` value that parks a message in dead letters instead of a delay
#: queue: a consumer's last word on a message it cannot handle. It goes, without delay,
#: to the retry relay (``liaison.retry.due``), which forwards it to ``liaison.dead`` as
#: the hub, saying who parked it: participants never reach ``hub.dead`` themselves.
PARK_DELAY: Final = wire.PARK_DELAY
#: Why nothing a participant parks goes straight back to ``liaison.deliver`` (or to
#: ``liaison.dead``): RabbitMQ checks topic permissions on the routing key only, and
#: dead-letters a message to every routing key it carries, those in its ``CC`` and
#: ``BCC`` headers included. A delay queue dead-lettering to the direct
#: ``liaison.deliver`` would put a participant's bytes in any inbox it names in
#: ``CC``. So delay queues dead-letter to an internal fanout (routing keys mean
#: nothing there; internal: nobody publishes to it, and RabbitMQ 3.10 dead-letters
#: into internal exchanges, checked on the broker), read only by the hub's relay.
RETRY_DUE_EXCHANGE: Final = wire.RETRY_DUE_EXCHANGE
#: Tag on every participant user the topology creates, so ``diff`` can find stale ones.
PARTICIPANT_TAG: Final = "liaison-participant"

ArgValue = str | int | bool
ExchangeType = Literal["topic", "direct", "fanout", "headers"]


def _freeze(arguments: Mapping[str, ArgValue]) -> tuple[tuple[str, ArgValue], ...]:
    return tuple(sorted(arguments.items()))


@dataclass(frozen=True)
class ExchangeSpec:
    """A durable exchange."""

    name: str
    type: ExchangeType
    internal: bool = False
    durable: bool = True

    def __str__(self) -> str:
        internal = ", internal" if self.internal else ""
        return f"exchange {self.name} ({self.type}{internal})"


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue and its declaration arguments (sorted pairs, to stay hashable)."""

    name: str
    arguments: tuple[tuple[str, ArgValue], ...]
    durable: bool = True

    @classmethod
    def of(cls, name: str, arguments: Mapping[str, ArgValue]) -> QueueSpec:
        """A spec from a plain mapping of arguments."""
        return cls(name, _freeze(arguments))

    def argument_map(self) -> dict[str, ArgValue]:
        """The arguments as a dict, as pika and the management API take them."""
        return dict(self.arguments)

    def __str__(self) -> str:
        args = ", ".join(f"{key}={value}" for key, value in self.arguments)
        return f"queue {self.name} ({args})"


@dataclass(frozen=True)
class BindingSpec:
    """A binding from an exchange to a queue or to another exchange."""

    source: str
    destination: str
    destination_type: Literal["queue", "exchange"] = "queue"
    routing_key: str = ""
    arguments: tuple[tuple[str, ArgValue], ...] = ()

    def __str__(self) -> str:
        key = f" key {self.routing_key!r}" if self.routing_key else ""
        args = f" {dict(self.arguments)}" if self.arguments else ""
        return f"binding {self.source} -> {self.destination_type} {self.destination}{key}{args}"


@dataclass(frozen=True)
class Permissions:
    """A user's configure/write/read regexes on the vhost."""

    configure: str
    write: str
    read: str

    def __str__(self) -> str:
        return f"configure {self.configure} write {self.write} read {self.read}"


@dataclass(frozen=True)
class TopicPermission:
    """The routing keys a user may publish (write) or bind (read) on one topic exchange."""

    exchange: str
    write: str
    read: str

    def __str__(self) -> str:
        return f"on {self.exchange}: write {self.write} read {self.read}"


@dataclass(frozen=True)
class UserSpec:
    """A RabbitMQ user and what it may do on the vhost.

    ``code`` is the participant's code; ``None`` for the hub's own user, whose
    password the topology never touches (it comes from ``amqp_url``).
    """

    name: str
    code: str | None
    permissions: Permissions
    topic_permissions: tuple[TopicPermission, ...] = ()

    def __str__(self) -> str:
        who = f"participant {self.code}" if self.code else "the hub"
        topics = "".join(f"; topic {topic}" for topic in self.topic_permissions)
        return f"user {self.name} ({who}): {self.permissions}{topics}"


@dataclass(frozen=True)
class Topology:
    """Everything the hub needs on one vhost."""

    vhost: str
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[BindingSpec, ...]
    users: tuple[UserSpec, ...]

    def describe(self) -> list[str]:
        """The plan as readable lines, one per object, in the order they are applied."""
        return [
            f"vhost {self.vhost}",
            *map(str, self.exchanges),
            *map(str, self.queues),
            *map(str, self.bindings),
            *map(str, self.users),
        ]

    #: Bindings earlier plans made that must not exist any more (a side door):
    #: ``apply`` removes them, ``diff`` reports them.
    retired: tuple[BindingSpec, ...] = ()
    #: Queues that only hold messages in passing (the retry delays): when their
    #: arguments change, ``apply`` deletes and declares them again if they are empty.
    recreatable: frozenset[str] = frozenset()

    def user(self, name: str) -> UserSpec | None:
        """The planned user ``name``, if any."""
        return next((user for user in self.users if user.name == name), None)


def _dead_lettered(
    settings: Settings, extra: Mapping[str, ArgValue] | None = None, *, hub: bool = False
) -> dict[str, ArgValue]:
    """Arguments of a quorum queue whose failures go to ``liaison.dead``.

    ``hub``: a queue the hub itself consumes, whose limit must outlast failovers
    (see ``Settings.hub_delivery_limit``).
    """
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.hub_delivery_limit if hub else settings.delivery_limit,
        "x-dead-letter-exchange": wire.DEAD_EXCHANGE,
        # Quorum queues dead-letter at most once by default: a dead letter is lost if
        # the target does not take it. At-least-once keeps it until the target
        # confirms; RabbitMQ requires reject-publish overflow for that (3.10+).
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        **(extra or {}),
    }


def participant_user(participant: Participant, settings: Settings) -> UserSpec:
    """The least-privileged user of one participant.

    It may publish to ingress (only the types the directory lets it send) and to
    the retry exchange (only under its own code); it may consume its own two inboxes
    (``inbox.<code>`` and ``inbox.<code>.urgent``) and nothing else; it may declare
    nothing.
    """
    code = participant.code
    # Codes are [a-z0-9-] (ParticipantCode), so only the dot needs escaping.
    return UserSpec(
        name=settings.user_for(code),
        code=code,
        permissions=Permissions(
            configure="^$",
            write=f"^({_re(wire.INGRESS_EXCHANGE)}|{_re(wire.RETRY_EXCHANGE)})$",
            # Exactly inbox.<code> and inbox.<code>.urgent (codes have no dot).
            read=f"^{_re(wire.inbox_queue(code))}({_re(wire.URGENT_SUFFIX)})?$",
        ),
        topic_permissions=(
            TopicPermission(wire.INGRESS_EXCHANGE, participant.send_pattern_regex(), "^$"),
            TopicPermission(wire.RETRY_EXCHANGE, f"^{code}$", "^$"),
        ),
    )


def _re(name: str) -> str:
    return name.replace(".", r"\.")


def plan(directory: Directory, settings: Settings) -> Topology:
    """The topology for ``directory`` on the vhost of ``settings.amqp_url``."""
    exchanges = (
        ExchangeSpec(wire.INGRESS_EXCHANGE, "topic"),
        ExchangeSpec(wire.DELIVER_EXCHANGE, "direct"),
        ExchangeSpec(wire.DEAD_EXCHANGE, "fanout"),
        ExchangeSpec(wire.AUDIT_EXCHANGE, "fanout"),
        ExchangeSpec(wire.RETRY_EXCHANGE, "topic"),
        ExchangeSpec(RETRY_DELAY_EXCHANGE, "headers", internal=True),
        ExchangeSpec(RETRY_DUE_EXCHANGE, "fanout", internal=True),
    )
    queues = [
        QueueSpec.of(wire.INGRESS_QUEUE, _dead_lettered(settings, hub=True)),
        # No dead-letter target, hence no delivery limit either: past the limit a
        # quorum queue without one drops the message, and these are the dead letters.
        QueueSpec.of(wire.DEAD_QUEUE, {"x-queue-type": "quorum"}),
        QueueSpec.of(
            wire.AUDIT_QUEUE,
            _dead_lettered(settings, {"x-single-active-consumer": True}, hub=True),
        ),
        # Past its delivery limit (a relay that keeps failing on a message) the broker
        # moves a message to liaison.dead, keeping the participant's user_id: the
        # operator's tools trust nothing else on it.
        QueueSpec.of(wire.RETRY_DUE_QUEUE, _dead_lettered(settings, hub=True)),
    ]
    bindings = [
        BindingSpec(wire.INGRESS_EXCHANGE, wire.INGRESS_QUEUE, routing_key="#"),
        BindingSpec(wire.DEAD_EXCHANGE, wire.DEAD_QUEUE),
        BindingSpec(wire.AUDIT_EXCHANGE, wire.AUDIT_QUEUE),
        BindingSpec(wire.RETRY_EXCHANGE, RETRY_DELAY_EXCHANGE, "exchange", routing_key="#"),
        BindingSpec(RETRY_DUE_EXCHANGE, wire.RETRY_DUE_QUEUE),
    ]
    park = _freeze({"x-match": "all-with-x", wire.H_DELAY: PARK_DELAY})
    bindings.append(
        BindingSpec(RETRY_DELAY_EXCHANGE, RETRY_DUE_EXCHANGE, "exchange", arguments=park)
    )
    # Before the retry relay, parked messages went straight to liaison.dead: any bytes,
    # any headers (a forged x-death), no hub in between.
    retired = (BindingSpec(RETRY_DELAY_EXCHANGE, wire.DEAD_EXCHANGE, "exchange", arguments=park),)
    for delay, milliseconds in settings.retry_delays_ms.items():
        name = wire.retry_queue(delay)
        # Quorum queues honour a queue-wide x-message-ttl since RabbitMQ 3.10. An expired
        # message goes to the retry relay, which alone puts it back in an inbox.
        arguments = _dead_lettered(settings, {"x-message-ttl": milliseconds})
        arguments["x-dead-letter-exchange"] = RETRY_DUE_EXCHANGE
        queues.append(QueueSpec.of(name, arguments))
        bindings.append(
            BindingSpec(
                RETRY_DELAY_EXCHANGE,
                name,
                arguments=_freeze({"x-match": "all-with-x", wire.H_DELAY: delay}),
            )
        )
    for participant in directory:
        code = participant.code
        # Two precedence bands (quorum queues have no priorities): routine, then urgent.
        for inbox, key in (
            (wire.inbox_queue(code), wire.delivery_key(code, "ROUTINE")),
            (wire.urgent_inbox_queue(code), wire.delivery_key(code, "FLASH")),
        ):
            queues.append(QueueSpec.of(inbox, _dead_lettered(settings)))
            bindings.append(BindingSpec(wire.DELIVER_EXCHANGE, inbox, routing_key=key))
    hub = UserSpec(settings.hub_user, None, Permissions(".*", ".*", ".*"))
    for participant in directory:
        if settings.user_for(participant.code) == hub.name:
            # The router trusts the hub's user as a relay: no participant may be it.
            raise ConfigError(
                f"participant {participant.code!r} would log in as the hub's own user "
                f"{hub.name!r}; set user_prefix or change the hub's user"
            )
    users = (hub, *(participant_user(p, settings) for p in directory))
    recreatable = frozenset(wire.retry_queue(delay) for delay in settings.retry_delays_ms)
    return Topology(
        settings.vhost,
        exchanges,
        tuple(queues),
        tuple(bindings),
        users,
        retired=retired,
        recreatable=recreatable,
    )


__all__ = [
    "PARK_DELAY",
    "PARTICIPANT_TAG",
    "RETRY_DELAY_EXCHANGE",
    "RETRY_DUE_EXCHANGE",
    "ArgValue",
    "BindingSpec",
    "ExchangeSpec",
    "Permissions",
    "QueueSpec",
    "TopicPermission",
    "Topology",
    "UserSpec",
    "participant_user",
    "plan",
]

"""The topology's I/O shell: read the broker, declare what is missing, write credentials.

The management API gives the vhost, users, permissions and the current state; pika
declares exchanges, queues and bindings (what AMQP is for). ``apply`` repairs
exactly the fixable differences that ``compare`` finds, so a second run finds none
and changes nothing. Passwords are generated here, go to RabbitMQ and to one file
each, and nowhere else: never to a log line, a report or an exception message.

A participant user that exists keeps its password unless the operator names it for
rotation: ``apply`` may run from another checkout, machine or container whose
``credentials_dir`` is empty or old, and resetting passwords there would lock every
institution out. It reports such files instead (missing, or refused by the broker
when tried) and says how to fix them.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import structlog

from liaison.adapters.connections import blocking_connection
from liaison.adapters.management import Management, q
from liaison.directory import Directory
from liaison.errors import BrokerError, ConfigError
from liaison.settings import Settings
from liaison.topology._compare import Change, Difference, Observed, compare
from liaison.topology._credentials import (
    CredentialProblem,
    CredentialState,
    check_credentials,
    write_credentials,
)
from liaison.topology._plan import (
    PARTICIPANT_TAG,
    BindingSpec,
    ExchangeSpec,
    Permissions,
    QueueSpec,
    TopicPermission,
    Topology,
    UserSpec,
    plan,
)

log = structlog.get_logger("liaison.topology")

_VERBS = {
    "vhost": "create vhost",
    "exchange": "declare exchange",
    "queue": "declare queue",
    "binding": "declare binding",
    "user": "create user",
    "permissions": "set permissions of",
    "topic-permissions": "set topic permissions of",
}


@dataclass(frozen=True)
class ApplyReport:
    """What ``apply`` did (or, on a dry run, would do); never holds a password."""

    #: One line per change, in the order made ("declare queue inbox.gs").
    changes: tuple[str, ...]
    #: Differences ``apply`` cannot repair by itself (a queue with other arguments).
    unresolved: tuple[Difference, ...]
    #: Objects in the hub's namespace the plan no longer has: reported, left in place.
    extra: tuple[Difference, ...]
    #: Credential files written.
    credential_files: tuple[Path, ...]
    dry_run: bool = False
    #: Existing participants whose credential file here is missing or does not log in;
    #: their passwords were left as they are.
    credential_problems: tuple[CredentialProblem, ...] = ()


def observe(api: Management, vhost: str) -> Observed:
    """The broker's state on ``vhost``, read through the management API."""
    exchanges = {
        record["name"]: ExchangeSpec(
            record["name"], record["type"], bool(record["internal"]), bool(record["durable"])
        )
        for record in api.exchanges(vhost)
        if record["name"] and not record["name"].startswith("amq.")
    }
    queues = {
        record["name"]: QueueSpec(
            record["name"], tuple(sorted(record["arguments"].items())), bool(record["durable"])
        )
        for record in api.queues(vhost)
    }
    bindings = frozenset(
        BindingSpec(
            record["source"],
            record["destination"],
            record["destination_type"],
            record["routing_key"],
            tuple(sorted(record["arguments"].items())),
        )
        for record in api.bindings(vhost)
        if record["source"]  # the default exchange's implicit bindings are not ours
    )
    depths = {
        record["name"]: int(record["messages"])
        for record in api.queues(vhost)
        if isinstance(record.get("messages"), int)
    }
    permissions = {
        record["user"]: Permissions(record["configure"], record["write"], record["read"])
        for record in api.request("GET", f"/vhosts/{q(vhost)}/permissions") or []
    }
    topics: dict[str, set[TopicPermission]] = {}
    for record in api.request("GET", f"/vhosts/{q(vhost)}/topic-permissions") or []:
        topics.setdefault(record["user"], set()).add(
            TopicPermission(record["exchange"], record["write"], record["read"])
        )
    return Observed(
        vhost_exists=api.vhost_exists(vhost),
        exchanges=exchanges,
        queues=queues,
        bindings=bindings,
        users={record["name"]: _tags(record) for record in api.list_users()},
        permissions=permissions,
        topic_permissions={user: frozenset(found) for user, found in topics.items()},
        depths=depths,
    )


def _tags(record: dict[str, Any]) -> tuple[str, ...]:
    tags = record.get("tags") or []
    # A list since RabbitMQ 3.9; a comma-separated string before.
    return tuple(tags.split(",") if isinstance(tags, str) else tags)


def diff(settings: Settings, directory: Directory) -> list[Difference]:
    """How the broker differs from the plan for ``directory`` (empty when in sync)."""
    topology = plan(directory, settings)
    with Management(settings) as api:
        observed = _exact_depths(settings, topology, observe(api, settings.vhost))
        return compare(topology, observed, tag=PARTICIPANT_TAG)


def apply(
    settings: Settings,
    directory: Directory,
    *,
    rotate: Collection[str] = (),
    rotate_all: bool = False,
    dry_run: bool = False,
) -> ApplyReport:
    """Make the broker match the plan; with ``dry_run``, only say what would change.

    New participant users get a random password, written to
    ``credentials_dir/<code>.env``. Existing ones keep theirs, except the
    participants named in ``rotate`` (or all, with ``rotate_all``): those get a new
    password and file, and their open connections are closed so the old password
    stops working at once. Every other existing participant's file is tried (one
    AMQP login each); the ones missing or refused are reported, not repaired.
    """
    unknown = sorted(set(rotate) - set(directory.codes()))
    if unknown:
        raise ConfigError(f"cannot rotate {', '.join(map(repr, unknown))}: not in the directory")
    topology = plan(directory, settings)
    with Management(settings) as api:
        observed = _exact_depths(settings, topology, observe(api, settings.vhost))
        differences = compare(topology, observed, tag=PARTICIPANT_TAG)
        fixable = [d for d in differences if d.fixable]
        unresolved = tuple(
            d for d in differences if d.change is not Change.EXTRA and d not in fixable
        )
        extra = tuple(d for d in differences if d.change is Change.EXTRA and not d.fixable)
        rotated = [
            user
            for user in topology.users
            if user.code is not None
            and user.name in observed.users
            and (rotate_all or user.code in rotate)
        ]
        planned = [_describe(d) for d in fixable] + [
            f"rotate password: user {u.name}" for u in rotated
        ]
        if dry_run:
            problems = _problems(settings, topology, observed, rotated)
            return ApplyReport(tuple(planned), unresolved, extra, (), True, problems)
        passwords = _repair(api, settings, topology, fixable, observed)
        for user in rotated:
            passwords[user.name] = _set_password(api, user.name, observed.users[user.name])
            api.close_connections(user=user.name)
    for line in planned:
        log.info("topology.change", change=line, vhost=settings.vhost)
    files = tuple(
        write_credentials(settings, user.code, user.name, passwords[user.name])
        for user in topology.users
        if user.code is not None and user.name in passwords
    )
    problems = _problems(settings, topology, observed, rotated)
    return ApplyReport(tuple(planned), unresolved, extra, files, False, problems)


def _problems(
    settings: Settings, topology: Topology, observed: Observed, rotated: list[UserSpec]
) -> tuple[CredentialProblem, ...]:
    """Existing participants (not rotated now) whose credential file here does not log in."""
    found: list[CredentialProblem] = []
    for user in topology.users:
        if user.code is None or user.name not in observed.users or user in rotated:
            continue  # the hub's password is not ours; new and rotated users got a fresh file
        problem = check_credentials(settings, user.code, user.name)
        if problem is not None:
            found.append(problem)
    if found:
        # One event for all of them: the CLI prints each one with the fix.
        log.warning(
            "topology.credentials_unusable",
            credentials_dir=str(settings.credentials_dir),
            **{
                state.name.lower(): [p.code for p in found if p.state is state]
                for state in CredentialState
                if any(p.state is state for p in found)
            },
        )
    return tuple(found)


def _exact_depths(settings: Settings, topology: Topology, observed: Observed) -> Observed:
    """``observed`` with exact depths of the recreatable queues whose arguments changed.

    The management API's counts lag by a statistics interval; whether a delay queue
    may be deleted and declared again is decided on a passive declare's count.
    """
    stale = [
        spec.name
        for spec in topology.queues
        if spec.name in topology.recreatable
        and spec.name in observed.queues
        and observed.queues[spec.name] != spec
    ]
    if not stale:
        return observed
    depths = dict(observed.depths)
    with _channel(settings) as channel:
        for name in stale:
            try:
                found = channel.queue_declare(queue=name, passive=True)
            except pika.exceptions.AMQPError as exc:
                raise BrokerError(f"cannot read the depth of {name}: {exc!r}") from exc
            depths[name] = int(found.method.message_count)
    return replace(observed, depths=depths)


def _describe(difference: Difference) -> str:
    if difference.change is Change.EXTRA:
        return f"remove retired binding {difference.name}"
    if difference.recreate:
        return f"recreate empty queue {difference.name} ({difference.detail})"
    detail = f" ({difference.detail})" if "permissions" in difference.what else ""
    return f"{_VERBS[difference.what]} {difference.name}{detail}"


def _repair(
    api: Management,
    settings: Settings,
    topology: Topology,
    fixable: list[Difference],
    observed: Observed,
) -> dict[str, str]:
    """Repair the fixable differences; the passwords of the users it created."""
    if any(d.what == "vhost" for d in fixable):
        api.put_vhost(topology.vhost)
    # The hub's permissions first: the AMQP declarations below run as the hub.
    for difference in fixable:
        user = difference.spec
        if difference.what == "permissions" and isinstance(user, UserSpec) and user.code is None:
            _put_permissions(api, topology.vhost, user)
    declare = [d for d in fixable if d.what in {"exchange", "queue", "binding"}]
    _declare(settings, [d.spec for d in declare if d.change is Change.MISSING])
    _migrate(settings, topology, declare)
    passwords: dict[str, str] = {}
    done: set[tuple[str, str]] = set()
    for difference in fixable:
        user = difference.spec
        if not isinstance(user, UserSpec) or user.code is None:
            continue
        if (difference.what, user.name) in done:
            continue
        done.add((difference.what, user.name))
        if difference.what == "user":
            passwords[user.name] = _set_password(api, user.name, observed.users.get(user.name, ()))
        elif difference.what == "permissions":
            _put_permissions(api, topology.vhost, user)
        elif difference.what == "topic-permissions":
            for topic in user.topic_permissions:
                api.put_topic_permissions(
                    topology.vhost,
                    user.name,
                    exchange=topic.exchange,
                    write=topic.write,
                    read=topic.read,
                )
    return passwords


def _put_permissions(api: Management, vhost: str, user: UserSpec) -> None:
    perms = user.permissions
    api.put_permissions(
        vhost, user.name, configure=perms.configure, write=perms.write, read=perms.read
    )


def _set_password(api: Management, name: str, tags: tuple[str, ...]) -> str:
    password = secrets.token_urlsafe(32)
    api.put_user(name, password, ",".join(sorted({*tags, PARTICIPANT_TAG} - {""})))
    return password


def _migrate(settings: Settings, topology: Topology, fixable: list[Difference]) -> None:
    """Remove retired bindings; delete and declare again empty queues whose arguments changed.

    Runs after the missing objects exist, so a recreated delay queue dead-letters to
    an exchange that is there. Quorum queues refuse ``queue.delete`` with
    ``if_empty`` (RabbitMQ 3.10 answers 540 NOT_IMPLEMENTED), so emptiness is made
    to last instead: the queue is unbound first (nothing else can put a message in
    a delay queue), then counted; empty, it is deleted, declared and bound again;
    otherwise its bindings are restored and ``apply`` fails, asking for a re-run.
    Meanwhile a participant's retry with that delay is returned as unroutable (the
    SDK then keeps the message and tries again).
    """
    retired = [d.spec for d in fixable if d.change is Change.EXTRA]
    recreated = [d.spec for d in fixable if d.recreate and isinstance(d.spec, QueueSpec)]
    if not retired and not recreated:
        return
    with _channel(settings) as channel:
        for binding in retired:
            assert isinstance(binding, BindingSpec)
            _unbind(channel, binding)
        for queue in recreated:
            bindings = [b for b in topology.bindings if b.destination == queue.name]
            observed = _bindings_to(settings, queue.name)
            for binding in observed:
                _unbind(channel, binding)
            waiting = int(
                channel.queue_declare(queue=queue.name, passive=True).method.message_count
            )
            if waiting:
                _declare_on(channel, observed)
                raise BrokerError(
                    f"{queue.name} took {waiting} message(s) since it was read: left as it "
                    "was; run apply again once they have come due"
                )
            channel.queue_delete(queue=queue.name)
            _declare_on(channel, [queue, *bindings])


def _bindings_to(settings: Settings, queue: str) -> list[BindingSpec]:
    """The bindings the broker has to ``queue`` (from the hub's exchanges)."""
    with Management(settings) as api:
        return [
            BindingSpec(
                record["source"],
                record["destination"],
                record["destination_type"],
                record["routing_key"],
                tuple(sorted(record["arguments"].items())),
            )
            for record in api.bindings(settings.vhost)
            if record["source"] and record["destination"] == queue
        ]


def _unbind(channel: Any, binding: BindingSpec) -> None:
    try:
        if binding.destination_type == "exchange":
            channel.exchange_unbind(
                destination=binding.destination,
                source=binding.source,
                routing_key=binding.routing_key,
                arguments=dict(binding.arguments),
            )
        else:
            channel.queue_unbind(
                queue=binding.destination,
                exchange=binding.source,
                routing_key=binding.routing_key,
                arguments=dict(binding.arguments),
            )
    except pika.exceptions.AMQPError as exc:
        raise BrokerError(f"RabbitMQ refused to remove {binding}: {exc!r}") from exc


@contextmanager
def _channel(settings: Settings) -> Iterator[Any]:
    try:
        connection = blocking_connection(settings, name="liaison-topology")
    except BrokerError as exc:
        raise BrokerError(f"cannot connect to RabbitMQ on vhost {settings.vhost!r}: {exc}") from exc
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            # Closing a connection the broker already closed: nothing to report.
            with suppress(pika.exceptions.AMQPError):
                connection.close()


def _declare(settings: Settings, specs: list[Any]) -> None:
    """Declare exchanges, queues and bindings, in that order, over one AMQP channel."""
    if not specs:
        return
    with _channel(settings) as channel:
        _declare_on(channel, specs)


def _declare_on(channel: Any, specs: list[Any]) -> None:
    order = {ExchangeSpec: 0, QueueSpec: 1, BindingSpec: 2}
    for spec in sorted(specs, key=lambda s: order[type(s)]):
        try:
            if isinstance(spec, ExchangeSpec):
                channel.exchange_declare(
                    exchange=spec.name,
                    exchange_type=spec.type,
                    durable=spec.durable,
                    internal=spec.internal,
                )
            elif isinstance(spec, QueueSpec):
                channel.queue_declare(
                    queue=spec.name, durable=spec.durable, arguments=spec.argument_map()
                )
            elif spec.destination_type == "queue":
                channel.queue_bind(
                    queue=spec.destination,
                    exchange=spec.source,
                    routing_key=spec.routing_key,
                    arguments=dict(spec.arguments),
                )
            else:
                channel.exchange_bind(
                    destination=spec.destination,
                    source=spec.source,
                    routing_key=spec.routing_key,
                    arguments=dict(spec.arguments),
                )
        except pika.exceptions.AMQPError as exc:
            raise BrokerError(f"RabbitMQ refused to declare {spec}: {exc!r}") from exc


__all__ = ["ApplyReport", "apply", "diff", "observe"]

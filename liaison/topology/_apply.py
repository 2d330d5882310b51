"""The topology's I/O shell: read the broker, declare what is missing, write credentials.

The management API gives the vhost, users, permissions and the current state; pika
declares exchanges, queues and bindings (what AMQP is for). ``apply`` repairs
exactly the fixable differences that ``compare`` finds, so a second run finds none
and changes nothing. Passwords are generated here, go to RabbitMQ and to one file
each, and nowhere else: never to a log line, a report or an exception message.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika
import pika.exceptions
import structlog

from liaison.amqp import blocking_connection
from liaison.directory import Directory
from liaison.errors import BrokerError
from liaison.management import Management, q
from liaison.settings import Settings, split_urls
from liaison.topology._compare import Change, Difference, Observed, compare
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
    )


def _tags(record: dict[str, Any]) -> tuple[str, ...]:
    tags = record.get("tags") or []
    # A list since RabbitMQ 3.9; a comma-separated string before.
    return tuple(tags.split(",") if isinstance(tags, str) else tags)


def diff(settings: Settings, directory: Directory) -> list[Difference]:
    """How the broker differs from the plan for ``directory`` (empty when in sync)."""
    with Management(settings) as api:
        return compare(plan(directory, settings), observe(api, settings.vhost), tag=PARTICIPANT_TAG)


def apply(
    settings: Settings, directory: Directory, *, rotate: bool = False, dry_run: bool = False
) -> ApplyReport:
    """Make the broker match the plan; with ``dry_run``, only say what would change.

    New participant users get a random password, written to
    ``credentials_dir/<code>.env``; so do existing ones whose file is missing or
    names another broker, and, with ``rotate``, all of them (their open
    connections are closed so the old password stops working at once).
    """
    topology = plan(directory, settings)
    with Management(settings) as api:
        observed = observe(api, settings.vhost)
        differences = compare(topology, observed, tag=PARTICIPANT_TAG)
        fixable = [d for d in differences if d.fixable]
        unresolved = tuple(
            d for d in differences if d.change is not Change.EXTRA and d not in fixable
        )
        extra = tuple(d for d in differences if d.change is Change.EXTRA)
        resets = _resets(topology, observed, settings, rotate=rotate)
        planned = [_describe(d) for d in fixable] + [f"{why}: user {u.name}" for u, why in resets]
        if dry_run:
            return ApplyReport(tuple(planned), unresolved, extra, (), dry_run=True)
        passwords = _repair(api, settings, topology, fixable, observed)
        for user, _why in resets:
            passwords[user.name] = _set_password(api, user.name, observed.users.get(user.name, ()))
            if rotate:
                api.close_connections(user=user.name)
    for line in planned:
        log.info("topology_change", change=line, vhost=settings.vhost)
    files = tuple(
        write_credentials(settings, user.code, user.name, passwords[user.name])
        for user in topology.users
        if user.code is not None and user.name in passwords
    )
    return ApplyReport(tuple(planned), unresolved, extra, files)


def _describe(difference: Difference) -> str:
    detail = f" ({difference.detail})" if "permissions" in difference.what else ""
    return f"{_VERBS[difference.what]} {difference.name}{detail}"


def _resets(
    topology: Topology, observed: Observed, settings: Settings, *, rotate: bool
) -> list[tuple[UserSpec, str]]:
    """Existing participant users that need a new password, and why."""
    found: list[tuple[UserSpec, str]] = []
    for user in topology.users:
        if user.code is None or user.name not in observed.users:
            continue  # the hub's password is not ours; missing users are created anyway
        if rotate:
            found.append((user, "rotate password"))
        elif not credentials_match(settings, user.code, user.name):
            found.append((user, "reset password (credential file missing or stale)"))
    return found


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
    _declare(settings, [d.spec for d in fixable if d.what in {"exchange", "queue", "binding"}])
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
    order = {ExchangeSpec: 0, QueueSpec: 1, BindingSpec: 2}
    with _channel(settings) as channel:
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


def credentials_path(settings: Settings, code: str) -> Path:
    """Where ``apply`` writes participant ``code``'s connection URL."""
    return settings.credentials_dir / f"{code}.env"


def credentials_url(settings: Settings, user: str, password: str) -> str:
    """The AMQP URL a participant connects with: the hub's broker and vhost, its own user.

    On a cluster, one URL per node of ``amqp_url``, comma-separated (the SDK fails over).
    """
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    urls = []
    for url in settings.amqp_urls:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        urls.append(f"{parts.scheme}://{credentials}@{host}{port}/{quote(settings.vhost, safe='')}")
    return ",".join(urls)


def write_credentials(settings: Settings, code: str, user: str, password: str) -> Path:
    """Write ``LIAISON_AMQP_URL=…`` for ``code``, readable by the owner only (0600)."""
    settings.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = credentials_path(settings, code)
    temporary = path.with_name(f".{path.name}.tmp")
    # Created 0600 from the first byte, then renamed over the old file: no moment
    # at which the password sits in a file others can read.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"LIAISON_AMQP_URL={credentials_url(settings, user, password)}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def credentials_match(settings: Settings, code: str, user: str) -> bool:
    """Whether ``code``'s credential file exists and names this broker, vhost and user."""
    try:
        lines = credentials_path(settings, code).read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    url = next(
        (line.partition("=")[2] for line in lines if line.startswith("LIAISON_AMQP_URL=")), ""
    )
    found_nodes = [urlsplit(one) for one in split_urls(url)]
    hub_nodes = [urlsplit(one) for one in settings.amqp_urls]
    try:
        same_nodes = [(f.hostname, f.port) for f in found_nodes] == [
            (h.hostname, h.port) for h in hub_nodes
        ]
    except ValueError:
        return False
    return same_nodes and all(
        bool(found.password)
        and unquote(found.username or "") == user
        and unquote(found.path[1:]) == settings.vhost
        for found in found_nodes
    )


__all__ = [
    "ApplyReport",
    "apply",
    "credentials_match",
    "credentials_path",
    "credentials_url",
    "diff",
    "observe",
    "write_credentials",
]

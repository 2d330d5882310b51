"""Connection parameters for pika, with TLS for ``amqps://`` URLs and a list of nodes.

The one place that turns settings into pika's parameter objects; every
connection the hub and its CLI open goes through here. ``amqp_url`` may name
several nodes of one RabbitMQ cluster, comma-separated: a blocking connection is
given all of them (pika tries each in turn), and a long-lived asynchronous
connection (the router) takes the next node from a :class:`Failover` on every
reconnection, so that a node that went away is not the one it retries first.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from liaison.errors import BrokerError, LoginRefusedError, TlsRefusedError
from liaison.settings import Settings, TlsSettings, split_urls
from producers.tls import PREFIX, tls_failure

#: Where the hub's own password comes from, as a :class:`LoginRefusedError` names it; the CLI,
#: which knows the settings file and the environment, says which of them set it.
HUB_URL_SOURCE = "the amqp_url setting"


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """A client TLS context: the CA to trust, and a client certificate when given."""
    context = ssl.create_default_context(
        cafile=str(tls.ca_file) if tls.ca_file is not None else None
    )
    context.check_hostname = tls.verify_hostname
    if tls.cert_file is not None:
        context.load_cert_chain(
            str(tls.cert_file), str(tls.key_file) if tls.key_file is not None else None
        )
    return context


def _parameters(settings: Settings, target: str, name: str) -> pika.URLParameters:
    params = pika.URLParameters(target)
    parts = urlsplit(target)
    if parts.scheme == "amqps":
        params.ssl_options = pika.SSLOptions(ssl_context(settings.tls), parts.hostname or "")
    params.client_properties = {"connection_name": name}
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    # A node that does not answer must not hold up the next one for pika's default 10 s.
    params.socket_timeout = 5
    params.stack_timeout = 15
    return params


def login_refused(
    settings: Settings,
    error: Exception,
    url: str | None = None,
    *,
    source: str | None = None,
    hint: str = "",
) -> LoginRefusedError | None:
    """``error`` as a :class:`LoginRefusedError` (user and password source), if it is one.

    pika reports a wrong password as ``ProbableAuthenticationError`` and a user without
    access to the vhost as ``ProbableAccessDeniedError``; neither names the user.
    """
    refusals = (
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
    )
    # With several nodes pika may wrap the last node's refusal in a workflow error.
    nested = getattr(error, "exception", None)
    if not isinstance(error, refusals) and isinstance(nested, refusals):
        error = nested
    if not isinstance(error, refusals):
        return None
    user = unquote(urlsplit(split_urls(url or settings.amqp_url)[0]).username or "guest")
    where = source or (HUB_URL_SOURCE if url is None else "its URL")
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        denied = f"the user may not open vhost {settings.vhost!r} (or it does not exist)"
        return LoginRefusedError(user, where, hint=denied)
    return LoginRefusedError(user, where, hint=hint)


def open_connection(
    settings: Settings,
    url: str | None = None,
    *,
    name: str,
    source: str | None = None,
    hint: str = "",
) -> pika.BlockingConnection:
    """A blocking connection to ``url`` (default: the hub's); raises ``LoginRefusedError``.

    ``source`` says where the password came from, ``hint`` what to do if it is refused.
    Other AMQP errors go through untouched, for the caller to word.
    """
    try:
        return pika.BlockingConnection(node_parameters(settings, url, name=name))
    except pika.exceptions.AMQPConnectionError as exc:
        refused = login_refused(settings, exc, url, source=source, hint=hint)
        if refused is None:
            raise
        raise refused from None


def node_parameters(
    settings: Settings, url: str | None = None, *, name: str = "liaison"
) -> list[pika.URLParameters]:
    """pika parameters for every node of ``url`` (default: the hub's), in order.

    ``pika.BlockingConnection`` accepts the list and tries each node in turn.
    """
    return [_parameters(settings, one, name) for one in split_urls(url or settings.amqp_url)]


def connection_parameters(
    settings: Settings, url: str | None = None, *, name: str = "liaison"
) -> pika.URLParameters:
    """pika parameters for the first node of ``url`` (default: the hub's), with TLS for ``amqps://``."""
    return node_parameters(settings, url, name=name)[0]


class Backoff:
    """The pauses of one reconnect loop: ``initial`` seconds, doubling up to ``maximum``.

    The one backoff of the hub's long-lived connections (router, retry relay, audit
    writer, procedures service). A connection that lasted ``healthy_s`` or more before
    it was lost starts again from ``initial``: a broker restart a week after the last
    one is not met with the longest pause. Pure; ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        healthy_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = initial
        self._maximum = max(initial, maximum)
        self._healthy_s = healthy_s
        self._clock = clock
        self._delay = initial
        self._started = clock()

    @classmethod
    def of(cls, settings: Settings) -> Backoff:
        """The backoff of ``settings`` (``reconnect_initial_s``, ``reconnect_max_s``)."""
        return cls(settings.reconnect_initial_s, settings.reconnect_max_s)

    def connecting(self) -> None:
        """A connection attempt starts now."""
        self._started = self._clock()

    def pause(self) -> float:
        """The attempt ended (the connection is lost or never opened): seconds to wait."""
        if self._clock() - self._started >= self._healthy_s:
            self._delay = self._initial
        delay = self._delay
        self._delay = min(self._delay * 2, self._maximum)
        return delay


class Failover:
    """The nodes of ``amqp_url`` in rotation: each call to :meth:`next` gives the next one.

    A long-lived connection asks for the next node whenever it (re)connects; after
    a node went away, the first attempt goes to another node, and the backoff of
    the caller applies once every node has been tried.
    """

    def __init__(self, settings: Settings, url: str | None = None, *, name: str) -> None:
        self._nodes = node_parameters(settings, url, name=name)
        self._index = -1

    def __len__(self) -> int:
        return len(self._nodes)

    def next(self) -> pika.URLParameters:
        """The node to try now."""
        self._index = (self._index + 1) % len(self._nodes)
        return self._nodes[self._index]

    def describe(self, params: pika.connection.Parameters) -> str:
        """``host:port`` of ``params``, for logs."""
        return f"{params.host}:{params.port}"


def blocking_connection(
    settings: Settings, url: str | None = None, *, name: str = "liaison"
) -> pika.BlockingConnection:
    """A blocking connection to the first node of ``url`` that accepts it.

    Failure is a :class:`BrokerError` whose text names the cause, TLS refusals
    included (see :func:`describe_connect_error`), never a bare pika repr.
    """
    try:
        return pika.BlockingConnection(node_parameters(settings, url, name=name))
    except (pika.exceptions.AMQPError, OSError) as exc:
        refused = login_refused(settings, exc, url)
        if refused is not None:
            raise refused from None
        message = describe_connect_error(settings, exc, url)
        if message.startswith(TLS_REFUSED):
            raise TlsRefusedError(message) from exc
        raise BrokerError(message) from exc


#: How :func:`describe_connect_error` starts when the TLS handshake itself failed.
TLS_REFUSED = PREFIX


def describe_connect_error(settings: Settings, exc: BaseException, url: str | None = None) -> str:
    """What went wrong opening a connection, in words that name the cause (TLS included)."""
    target = split_urls(url or settings.amqp_url)
    where = ", ".join(f"{urlsplit(u).hostname}:{urlsplit(u).port or ''}" for u in target)
    text = _error_text(exc)
    if urlsplit(target[0]).scheme == "amqps":
        found = tls_failure(
            text, where=where, ca_file=settings.tls.ca_file, cert_file=settings.tls.cert_file
        )
        if found is not None:
            return found
    if "ACCESS_REFUSED" in text or "ProbableAuthenticationError" in text:
        return f"the broker at {where} refused the user name or password ({text})"
    return f"cannot connect to the broker at {where}: {text}"


def _error_text(exc: BaseException, depth: int = 0) -> str:
    """``exc`` as text, with the errors pika wraps inside it (a workflow's last attempt)."""
    text = f"{type(exc).__name__}: {exc}"
    if depth > 4:
        return text
    inner: list[BaseException] = list(getattr(exc, "exceptions", None) or [])[-1:]
    nested = getattr(exc, "exception", None)
    if isinstance(nested, BaseException):
        inner.append(nested)
    return " / ".join([text, *(_error_text(e, depth + 1) for e in inner)])

"""Connection parameters for pika, with TLS for ``amqps://`` URLs.

The one place that turns settings into pika's parameter objects; every
connection the hub and its CLI open goes through here.
"""

from __future__ import annotations

import ssl
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from liaison.errors import LoginRefusedError
from liaison.settings import Settings, TlsSettings

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


def connection_parameters(
    settings: Settings, url: str | None = None, *, name: str = "liaison"
) -> pika.URLParameters:
    """pika parameters for ``url`` (default: the hub's), with TLS for ``amqps://``."""
    target = url or settings.amqp_url
    params = pika.URLParameters(target)
    parts = urlsplit(target)
    if parts.scheme == "amqps":
        params.ssl_options = pika.SSLOptions(ssl_context(settings.tls), parts.hostname or "")
    params.client_properties = {"connection_name": name}
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
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
    if not isinstance(
        error,
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError),
    ):
        return None
    user = unquote(urlsplit(url or settings.amqp_url).username or "guest")
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
        return pika.BlockingConnection(connection_parameters(settings, url, name=name))
    except pika.exceptions.AMQPConnectionError as exc:
        refused = login_refused(settings, exc, url, source=source, hint=hint)
        if refused is None:
            raise
        raise refused from None

"""Connection parameters for pika, with TLS for ``amqps://`` URLs.

The one place that turns settings into pika's parameter objects; every
connection the hub and its CLI open goes through here.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import pika

from liaison.settings import Settings, TlsSettings


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

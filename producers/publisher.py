"""Publishing to the hub as one participant, on kombu: confirmed, mandatory, retried, signed.

Every publish waits for the broker's confirm (``confirm_publish``) and is
``mandatory``, so a message is either in a queue or the caller gets a
:class:`~producers.errors.PublishError` naming the type and the cause:

- RabbitMQ refused it (403: the topic permission, i.e. the directory's
  ``may_send``, does not allow this type; 406: ``user_id`` is not the user
  logged in), which closes the channel;
- nothing could route it (``basic.return``: a queue the topology should have is
  missing);
- the broker nacked it (a queue is over its limit);
- the broker stayed out of reach through every retry.

A lost connection is retried through kombu's ``ensure``: the envelope and its
bytes are built once, before the first attempt, so a retry re-sends the same
message id and never mints a second one. A retry after a confirm that was lost
in flight may publish the same message twice; the router and the consumers drop
duplicates by id, which is why the id must not change.

This is the one place that calls kombu for publishing: its errors become ours here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from producers.amqp import (
    Connection,
    KombuError,
    MessageNacked,
    OperationalError,
    Producer,
)
from producers.envelopes import (
    ReceiptKind,
    publish_properties,
    receipt_classification,
    receipt_payload,
    reply_envelope,
)
from producers.errors import PublishError
from producers.settings import ParticipantSettings
from producers.tls import tls_failure
from producers.tokens import DeliveryTokens
from schemas import wire
from schemas.envelope import Envelope, P, new_envelope
from schemas.signing import sign
from schemas.types import Classification, Payload, Precedence

log = logging.getLogger(__name__)


class Publisher:
    """A participant's connection for publishing: ``publish`` a payload, get its envelope back.

    Use it as a context manager (or call ``close``); it connects on first use::

        with Publisher(ParticipantSettings.from_env()) as publisher:
            envelope = publisher.publish(letter, recipients=["gs-archives"])

    One connection, used by one thread at a time (kombu's connections are not
    thread-safe): give each thread its own publisher.
    """

    def __init__(
        self,
        settings: ParticipantSettings,
        *,
        max_retries: int = 5,
        interval_start: float = 0.5,
        interval_step: float = 1.0,
        interval_max: float = 5.0,
        confirm_timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._key = settings.signing_key()
        self._retry_policy = {
            "max_retries": max_retries,
            "interval_start": interval_start,
            "interval_step": interval_step,
            "interval_max": interval_max,
        }
        self._confirm_timeout = confirm_timeout
        self._connection: Any = None
        self._producer: Any = None
        self._returned: list[str] = []
        #: Tokens of the messages this participant received, for its receipts
        #: (a Consumer records into its publisher's).
        self.delivery_tokens = DeliveryTokens()

    @property
    def settings(self) -> ParticipantSettings:
        """Who publishes, and where."""
        return self._settings

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later publish opens a new one)."""
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            connection.release()

    # -- building -------------------------------------------------------------------

    def build(
        self,
        payload: P,
        *,
        recipients: Sequence[str] = (),
        classification: Classification = Classification.INTERNAL,
        precedence: Precedence = Precedence.ROUTINE,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        expires_at: datetime | None = None,
    ) -> Envelope[P]:
        """The envelope ``publish`` would send (new id, now, this sender), signed when keyed."""
        envelope = new_envelope(
            payload,
            sender=self._settings.code,
            recipients=tuple(recipients),
            classification=classification,
            precedence=precedence,
            correlation_id=correlation_id,
            causation_id=causation_id,
            expires_at=expires_at,
        )
        return self._sign(envelope)

    def _sign(self, envelope: Envelope[P]) -> Envelope[P]:
        if self._key is None or envelope.signature is not None:
            return envelope
        return sign(envelope, self._key)

    # -- publishing -----------------------------------------------------------------

    def publish(
        self,
        payload: P,
        *,
        recipients: Sequence[str] = (),
        classification: Classification = Classification.INTERNAL,
        precedence: Precedence = Precedence.ROUTINE,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        expires_at: datetime | None = None,
    ) -> Envelope[P]:
        """Wrap ``payload`` in a new envelope, publish it with confirms, and return the envelope.

        With no ``recipients`` the hub's routing rules decide who gets it.
        """
        envelope = self.build(
            payload,
            recipients=recipients,
            classification=classification,
            precedence=precedence,
            correlation_id=correlation_id,
            causation_id=causation_id,
            expires_at=expires_at,
        )
        return self.publish_envelope(envelope)

    def publish_envelope(
        self, envelope: Envelope[P], *, headers: Mapping[str, Any] | None = None
    ) -> Envelope[P]:
        """Publish a prepared envelope (signed here if a key is set and it carries no signature)."""
        if envelope.sender != self._settings.code:
            raise PublishError(
                f"the envelope's sender is {envelope.sender!r} but this publisher is "
                f"{self._settings.code!r}; the hub would refuse it (sender_mismatch)",
                type_=envelope.type,
                cause="sender_mismatch",
            )
        envelope = self._sign(envelope)
        self.publish_bytes(
            envelope.encode(),
            exchange=wire.INGRESS_EXCHANGE,
            routing_key=envelope.type,
            properties=publish_properties(envelope, user_id=self._settings.rabbit_user),
            headers=headers,
        )
        return envelope

    def reply(
        self,
        original: Envelope[Any],
        payload: P,
        *,
        classification: Classification | None = None,
        precedence: Precedence | None = None,
    ) -> Envelope[P]:
        """Publish ``payload`` back to ``original``'s sender, correlated with it."""
        envelope = reply_envelope(
            original,
            payload,
            sender=self._settings.code,
            classification=classification,
            precedence=precedence,
        )
        return self.publish_envelope(envelope)

    def send_receipt(
        self,
        original: Envelope[Any],
        kind: ReceiptKind = "received",
        *,
        registry_number: str | None = None,
        registered_on: date | None = None,
        answer_message_id: UUID | None = None,
        receipt_token: str | None = None,
    ) -> Envelope[Payload]:
        """Acknowledge ``original`` to its sender with a ``receipt.<kind>`` message.

        The receipt carries the hub's delivery token of ``original`` (the hub refuses
        it otherwise): ``receipt_token``, or the one recorded in ``delivery_tokens``
        when a Consumer of this publisher received ``original``.
        """
        payload = receipt_payload(
            original,
            kind,
            registry_number=registry_number,
            registered_on=registered_on,
            answer_message_id=answer_message_id,
        )
        token = receipt_token or self.delivery_tokens.get(original.sender, original.message_id)
        if token is None:
            raise PublishError(
                f"no delivery token for message {original.message_id}: the hub accepts a "
                "receipt only with the token of the copy it delivered; send it with the "
                "Consumer that received the message (consumer.send_receipt), or pass "
                "receipt_token=consumer.receipt_token(envelope) kept from then",
                type_=f"receipt.{kind}",
                cause="receipt_not_delivered",
            )
        envelope = reply_envelope(
            original,
            payload,
            sender=self._settings.code,
            classification=receipt_classification(original),
        )
        return self.publish_envelope(envelope, headers={wire.H_RECEIPT_TOKEN: token})

    def publish_bytes(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        properties: Mapping[str, Any],
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish raw bytes with confirms and ``mandatory``; the wire-level primitive.

        ``properties`` are AMQP basic properties (``content_type``, ``message_id``,
        ``user_id``...). Used by ``publish_envelope`` and by consumers to re-publish a
        delivery to ``liaison.retry`` unchanged.
        """
        what = str(properties.get("type") or routing_key)
        try:
            connection = self._connect()
            publish = connection.ensure(
                self, self._publish_once, errback=self._on_retry, **self._retry_policy
            )
            extra = {k: v for k, v in properties.items() if k != "content_type"}
            content_type = str(properties.get("content_type", wire.CONTENT_TYPE))
            publish(body, exchange, routing_key, content_type, extra, dict(headers or {}))
        except PublishError:
            raise
        except MessageNacked as exc:
            raise PublishError(
                f"the broker nacked {what} on {exchange} (a queue is over its limit or "
                "unavailable); publish it again later",
                type_=what,
                cause="nacked",
            ) from exc
        except Exception as exc:
            # Translate kombu and py-amqp errors here, the one boundary; anything else
            # (a programming error) goes through untouched.
            translated = self._translate(exc, what, exchange, routing_key)
            if translated is None:
                raise
            self.close()  # the channel (or the connection) is gone: start afresh next time
            raise translated from exc
        if self._returned:
            reason = "; ".join(self._returned)
            raise PublishError(
                f"{what} was not routed to any queue from {exchange} with routing key "
                f"{routing_key!r} ({reason}); the hub's topology may be missing or incomplete",
                type_=what,
                cause="unroutable",
            )

    def _connect(self) -> Any:
        if self._connection is None:
            connection = Connection(
                **self._settings.connection_options(),
                transport_options={"confirm_publish": True},
            )
            connection.ensure_connection(
                max_retries=self._retry_policy["max_retries"],
                interval_start=self._retry_policy["interval_start"],
                interval_step=self._retry_policy["interval_step"],
                interval_max=self._retry_policy["interval_max"],
            )
            self._connection = connection
            self._producer = Producer(
                connection.default_channel, auto_declare=False, on_return=self._on_return
            )
        return self._connection

    def revive(self, channel: Any) -> None:
        """kombu's ``ensure`` hands over the new channel after reconnecting."""
        self._producer.revive(channel)

    def _publish_once(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        content_type: str,
        properties: dict[str, Any],
        headers: dict[str, Any],
    ) -> None:
        self._returned.clear()
        self._producer.publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            mandatory=True,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
            confirm_timeout=self._confirm_timeout,
            **properties,
        )

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        # basic.return arrives before the confirm of the same publish: note it here,
        # raise once the confirm is in, so that the channel stays in step.
        code, text = getattr(exc, "reply_code", "?"), getattr(exc, "reply_text", exc)
        self._returned.append(f"{code} {text}")

    def _on_retry(self, exc: Exception, interval: float) -> None:
        log.warning(
            "publisher.reconnecting url=%s error=%s retry_in_s=%.1f resend=same_message",
            self._settings.safe_url,
            exc,
            interval,
        )

    def _translate(
        self, exc: Exception, what: str, exchange: str, routing_key: str
    ) -> PublishError | None:
        code = getattr(exc, "reply_code", None)
        text = getattr(exc, "reply_text", None) or str(exc)
        if isinstance(exc, OperationalError | OSError) and self._settings.uses_tls:
            refused = tls_failure(
                f"{type(exc).__name__}: {exc}",
                where=self._settings.safe_url,
                ca_file=self._settings.tls.ca_file,
                cert_file=self._settings.tls.cert_file,
            )
            if refused is not None:
                return PublishError(f"could not publish {what}: {refused}", type_=what, cause="tls")
        if isinstance(exc, OperationalError | OSError):
            return PublishError(
                f"could not publish {what}: the broker at {self._settings.safe_url} stayed "
                f"out of reach through {self._retry_policy['max_retries']} retries ({text})",
                type_=what,
                cause="unreachable",
            )
        if code is None and not isinstance(exc, KombuError):
            return None
        hint = ""
        if code == 403 and "login" in text.lower():
            login = unquote(urlsplit(self._settings.amqp_url).username or "guest")
            return PublishError(
                f"RabbitMQ refused the login of user {login!r} (participant "
                f"{self._settings.code!r}); {what} was not sent",
                type_=what,
                cause="login_refused",
            )
        if code == 403 and exchange == wire.INGRESS_EXCHANGE:
            hint = (
                f": the directory does not let {self._settings.code!r} send {what!r} "
                "(its may_send list)"
            )
        elif code == 403 and exchange == wire.RETRY_EXCHANGE:
            hint = f": a participant may park messages only under its own code, not {routing_key!r}"
        elif code == 406 and "user_id" in text:
            hint = f": user_id must be the RabbitMQ user logged in ({self._settings.rabbit_user!r})"
        return PublishError(
            f"RabbitMQ refused {what} on {exchange} ({code} {text}){hint}",
            type_=what,
            cause=f"refused:{code}",
        )


__all__ = ["Publisher"]

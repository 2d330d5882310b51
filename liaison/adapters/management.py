"""A small client for RabbitMQ's management HTTP API.

Used for what AMQP cannot do: vhosts, users, permissions, queue statistics.
httpx errors are turned into :class:`BrokerError` here and nowhere else.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from liaison.adapters.connections import HUB_URL_SOURCE, ssl_context
from liaison.errors import BrokerError, LoginRefusedError
from liaison.settings import Settings

#: Tries of a GET that the management API answered with a server error.
GET_ATTEMPTS = 3


class Management:
    """Calls on ``/api``; one instance per command, closed when done."""

    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        verify: Any = True
        if settings.management_url.startswith("https") and settings.tls.ca_file is not None:
            verify = ssl_context(settings.tls)
        self._client = httpx.Client(
            base_url=settings.management_url.rstrip("/") + "/api",
            auth=settings.management_auth,
            timeout=timeout,
            verify=verify,
        )
        self._user = settings.management_auth[0]
        self._password_source = (
            "the management_password setting"
            if settings.management_password is not None
            else HUB_URL_SOURCE
        )

    def __enter__(self) -> Management:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call; JSON in and out; 404 on GET gives ``None``."""
        for attempt in range(GET_ATTEMPTS if method == "GET" else 1):
            if attempt:
                time.sleep(0.2 * attempt)
            try:
                response = self._client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                raise BrokerError(f"management API unreachable ({method} {path}): {exc}") from exc
            # RabbitMQ 3.10 answers 500 to a listing (GET /users) when an object in it
            # is deleted meanwhile; a read is safe to ask again.
            if response.status_code < 500:
                break
        if response.status_code == 404 and method == "GET":
            return None
        # 401 also answers a user without the management tag; only this one is a password.
        if response.status_code == 401 and "Login failed" in response.text:
            raise LoginRefusedError(
                self._user, self._password_source, hint=f"management API at {self._client.base_url}"
            )
        if response.status_code >= 400:
            raise BrokerError(
                f"management API refused {method} {path}: "
                f"{response.status_code} {response.text[:300]}"
            )
        return response.json() if response.content else None

    def available(self) -> bool:
        """Whether the API answers with these credentials."""
        try:
            self.request("GET", "/overview")
        except BrokerError:
            return False
        return True

    # vhosts
    def put_vhost(self, vhost: str) -> None:
        """Create ``vhost`` (idempotent)."""
        self.request("PUT", f"/vhosts/{q(vhost)}", {})

    def delete_vhost(self, vhost: str) -> None:
        """Delete ``vhost`` and everything in it."""
        self.request("DELETE", f"/vhosts/{q(vhost)}")

    def vhost_exists(self, vhost: str) -> bool:
        """Whether ``vhost`` exists."""
        return self.request("GET", f"/vhosts/{q(vhost)}") is not None

    # users and permissions
    def get_user(self, name: str) -> dict[str, Any] | None:
        """The user record, or None."""
        result: dict[str, Any] | None = self.request("GET", f"/users/{q(name)}")
        return result

    def list_users(self) -> list[dict[str, Any]]:
        """Every user."""
        result: list[dict[str, Any]] = self.request("GET", "/users")
        return result

    def put_user(self, name: str, password: str, tags: str = "") -> None:
        """Create or update a user."""
        self.request("PUT", f"/users/{q(name)}", {"password": password, "tags": tags})

    def delete_user(self, name: str) -> None:
        """Delete a user."""
        self.request("DELETE", f"/users/{q(name)}")

    def get_permissions(self, vhost: str, user: str) -> dict[str, Any] | None:
        """configure/write/read regexes of ``user`` on ``vhost``."""
        result: dict[str, Any] | None = self.request("GET", f"/permissions/{q(vhost)}/{q(user)}")
        return result

    def put_permissions(
        self, vhost: str, user: str, *, configure: str, write: str, read: str
    ) -> None:
        """Set ``user``'s permissions on ``vhost``."""
        self.request(
            "PUT",
            f"/permissions/{q(vhost)}/{q(user)}",
            {"configure": configure, "write": write, "read": read},
        )

    def get_topic_permissions(self, vhost: str, user: str) -> list[dict[str, Any]]:
        """Topic permissions of ``user`` on ``vhost`` (one per exchange)."""
        result = self.request("GET", f"/topic-permissions/{q(vhost)}/{q(user)}")
        return list(result or [])

    def put_topic_permissions(
        self, vhost: str, user: str, *, exchange: str, write: str, read: str
    ) -> None:
        """Limit the routing keys ``user`` may publish to (and read from) on ``exchange``."""
        self.request(
            "PUT",
            f"/topic-permissions/{q(vhost)}/{q(user)}",
            {"exchange": exchange, "write": write, "read": read},
        )

    # statistics
    def queues(self, vhost: str) -> list[dict[str, Any]]:
        """Every queue on ``vhost`` with its statistics."""
        result = self.request("GET", f"/queues/{q(vhost)}")
        return list(result or [])

    def exchanges(self, vhost: str) -> list[dict[str, Any]]:
        """Every exchange on ``vhost``."""
        result = self.request("GET", f"/exchanges/{q(vhost)}")
        return list(result or [])

    def bindings(self, vhost: str) -> list[dict[str, Any]]:
        """Every binding on ``vhost``."""
        result = self.request("GET", f"/bindings/{q(vhost)}")
        return list(result or [])

    def close_connections(self, *, user: str | None = None) -> int:
        """Close every client connection (of ``user`` when given); how many were closed."""
        closed = 0
        for conn in self.request("GET", "/connections") or []:
            if user is None or conn.get("user") == user:
                self.request("DELETE", f"/connections/{q(conn['name'])}")
                closed += 1
        return closed


def q(part: str) -> str:
    """Quote one path segment (``/`` becomes ``%2F``)."""
    return quote(part, safe="")

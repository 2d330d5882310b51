"""The hub's HTTP server: metrics, health, the dashboard and its JSON endpoints.

``WebApp.handle`` maps a request to a :class:`Response` without any socket, so
it is tested directly; ``WebServer`` is the thin stdlib ``ThreadingHTTPServer``
around it, in a daemon thread beside the router. Everything is read-only except
``POST /api/dead-letters/retry``, which needs ``Authorization: Bearer <token>``
(``settings.operator_token``; refused with 403 when none is configured). A
browser cannot add that header to a cross-site request without a CORS preflight
that this server never grants, so the token also protects against CSRF.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import structlog

from liaison.errors import LiaisonError
from liaison.ops import DeadLetterQueue, selector
from liaison.procedures.feed import FEED_CONTENT_TYPE, FEED_PATH
from liaison.procedures.store import StoreError
from liaison.settings import Settings
from liaison.web.metrics import PROMETHEUS_CONTENT_TYPE, HubMetrics
from liaison.web.poller import QueuePoller
from liaison.web.traffic import TrafficLog
from schemas import wire

log = structlog.get_logger("liaison.web")

JSON = "application/json"
MAX_BODY = 64 * 1024
MAX_IDS = 1000
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
# No inline script or style, no third-party origin: the page works offline by design.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class Response:
    """What the server sends back: status, body and content type."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(data, separators=(",", ":")).encode())


class DeadLetterCache:
    """``hub.dead`` read for the dashboard: when its depth changed, or once a minute.

    Every read is a full pass over the queue (see ``liaison.ops._deadq``) and
    RabbitMQ before 4.3 counts each return in ``x-delivery-count``: reading on
    every poll would load the broker and inflate that count for nothing. Reads
    are also at least ``min_interval_s`` apart, for a queue that fills fast.
    """

    def __init__(
        self,
        queue: DeadLetterQueue,
        depth: Callable[[], int | None],
        *,
        limit: int = 100,
        max_age_s: float = 60.0,
        min_interval_s: float = 3.0,
    ) -> None:
        self.queue = queue
        self._depth = depth
        self._limit = limit
        self._max_age = max_age_s
        self._min_interval = min_interval_s
        #: Held while reading or acting on hub.dead, so this process never races itself.
        self.lock = threading.Lock()
        self._cached: tuple[float, int | None, dict[str, Any]] | None = None

    def get(self) -> dict[str, Any]:
        """The first dead letters and the total, as JSON data."""
        depth = self._depth()
        with self.lock:
            cached = self._cached
            if cached is not None:
                age = time.monotonic() - cached[0]
                if age < self._min_interval or (age < self._max_age and cached[1] == depth):
                    return cached[2]
            peek = self.queue.peek(self._limit)
            data = {"total": peek.total, "dead_letters": [x.summary() for x in peek.letters]}
            self._cached = (time.monotonic(), depth, data)
            return data

    def invalidate(self) -> None:
        """Forget the last reading (after a retry changed the queue)."""
        self._cached = None


class WebApp:
    """Routes requests to the metrics, the poller, the traffic log and hub.dead."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: HubMetrics,
        traffic: TrafficLog,
        poller: QueuePoller,
        dead_letters: DeadLetterCache,
        ready: Callable[[], bool],
        public_feed: Callable[[], bytes] | None = None,
    ) -> None:
        self._settings = settings
        self._public_feed = public_feed
        self._metrics = metrics
        self._traffic = traffic
        self._poller = poller
        self._dead = dead_letters
        self._ready = ready

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; never raises."""
        path = path.split("?", 1)[0]
        try:
            if method == "POST" and path == "/api/dead-letters/retry":
                return self._retry(headers, body)
            if method not in ("GET", "HEAD"):
                return json_response(405, {"error": f"{method} not allowed on {path}"})
            return self._get(path)
        except LiaisonError as exc:
            log.warning("web.broker_error", path=path, error=str(exc))
            return json_response(502, {"error": str(exc)})
        except Exception:  # one broken request must not take the server down
            log.exception("web.failed", path=path)
            return json_response(500, {"error": "internal error"})

    def _get(self, path: str) -> Response:
        if path in _STATIC:
            name, content_type = _STATIC[path]
            data = resources.files("liaison.web").joinpath("static", name).read_bytes()
            return Response(200, data, content_type, {"Content-Security-Policy": _CSP})
        route = self._routes().get(path)
        if route is None:
            return json_response(404, {"error": f"no such path {path}"})
        return route()

    def _routes(self) -> dict[str, Callable[[], Response]]:
        return {
            "/metrics": lambda: Response(200, self._metrics.render(), PROMETHEUS_CONTENT_TYPE),
            "/healthz": lambda: json_response(200, {"status": "ok"}),
            "/readyz": self._readyz,
            "/api/queues": lambda: json_response(
                200, {**self._poller.latest(), "router_ready": self._ready()}
            ),
            "/api/dead-letters": lambda: json_response(200, self._dead.get()),
            "/api/traffic": lambda: json_response(200, self._traffic.snapshot()),
            "/api/acks": lambda: json_response(200, self._poller.acks()),
            "/api/cases": lambda: json_response(200, self._poller.cases()),
            FEED_PATH: self._feed,
        }

    def _feed(self) -> Response:
        if self._public_feed is None:
            return json_response(404, {"error": "no public feed on this hub"})
        try:
            document = self._public_feed()
        except StoreError as exc:
            return json_response(503, {"error": str(exc)})
        # Public by design: readable from anywhere, cached briefly by readers.
        return Response(200, document, FEED_CONTENT_TYPE, {"Cache-Control": "max-age=30"})

    def _readyz(self) -> Response:
        ready = self._ready()
        return json_response(200 if ready else 503, {"ready": ready})

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        token = self._settings.operator_token
        given = headers.get("authorization", "")
        return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _retry(self, headers: Mapping[str, str], body: bytes) -> Response:
        if not self._authorised(headers):
            return json_response(403, {"error": "a valid operator token is required"})
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return json_response(400, {"error": "the body is not JSON"})
        ids = request.get("message_ids") if isinstance(request, dict) else None
        operator = request.get("operator") if isinstance(request, dict) else None
        if (
            not isinstance(ids, list)
            or not 0 < len(ids) <= MAX_IDS
            or not all(isinstance(i, str) and 0 < len(i) <= 100 for i in ids)
        ):
            return json_response(400, {"error": f"message_ids: 1 to {MAX_IDS} ids (strings)"})
        if (
            not isinstance(operator, str)
            or not 0 < len(operator.strip()) <= 120
            or (not operator.isprintable())
        ):
            return json_response(400, {"error": "operator: a printable name, 1 to 120 chars"})
        operator = operator.strip()
        selection = selector(message_ids=ids)
        with self._dead.lock:
            outcome = self._dead.queue.retry(selection, operator=operator)
            self._dead.invalidate()
        log.info("web.dlq_retry", operator=operator, retried=outcome.message_ids)
        return json_response(
            200,
            {
                "retried": outcome.message_ids,
                "operations": outcome.operations,
                "refused": {letter.message_id: why for letter, why in outcome.refused},
                "not_found": selection.missing(
                    [*outcome.settled, *(letter for letter, _ in outcome.refused)]
                ),
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: WebApp


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "liaison"
    protocol_version = "HTTP/1.1"

    def _answer(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_BODY + 1  # unreadable: refuse it like an oversized one
        if not 0 <= length <= MAX_BODY:
            response = json_response(413, {"error": "body too large"})
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            response = self.server.app.handle(method, self.path, headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web.request", line=format % args)


class WebServer:
    """The HTTP server and the queue poller, started and stopped together."""

    def __init__(self, app: WebApp, poller: QueuePoller, *, host: str, port: int) -> None:
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as exc:
            raise LiaisonError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._server.app = app
        self._poller = poller
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="liaison-http", daemon=True
        )

    @property
    def url(self) -> str:
        """Where it listens, e.g. ``http://127.0.0.1:8787``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a daemon thread; start polling the queues."""
        self._poller.start()
        self._thread.start()
        log.info("web.listening", url=self.url)

    def stop(self) -> None:
        """Stop serving and polling."""
        self._server.shutdown()
        self._server.server_close()
        self._poller.stop()


def dead_depth(poller: QueuePoller) -> Callable[[], int | None]:
    """Read ``hub.dead``'s depth from the poller's last reading."""

    def depth() -> int | None:
        for row in poller.latest().get("queues", []):
            if row.get("name") == wire.DEAD_QUEUE:
                ready = row.get("ready")
                return ready if isinstance(ready, int) else None
        return None

    return depth

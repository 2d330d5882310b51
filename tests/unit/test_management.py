"""The management API client against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from liaison.adapters.management import GET_ATTEMPTS, Management
from liaison.errors import BrokerError
from liaison.settings import Settings


class _Flaky(BaseHTTPRequestHandler):
    """Answers 500 to the first ``failures`` requests, then a JSON list."""

    failures = 0
    seen = 0

    def _answer(self) -> None:
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"internal error")
            return
        body = json.dumps([{"name": "t-gs"}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _api(httpd: ThreadingHTTPServer) -> Management:
    return Management(Settings(management_url=f"http://127.0.0.1:{httpd.server_address[1]}"))


class TestServerErrors:
    def test_a_read_answered_500_is_asked_again(self, server: ThreadingHTTPServer) -> None:
        """RabbitMQ 3.10 answers 500 to a listing racing a deletion: the read succeeds on retry."""
        _Flaky.failures, _Flaky.seen = GET_ATTEMPTS - 1, 0
        with _api(server) as api:
            assert api.request("GET", "/users") == [{"name": "t-gs"}]
        assert _Flaky.seen == GET_ATTEMPTS

    def test_a_write_answered_500_is_not_repeated(self, server: ThreadingHTTPServer) -> None:
        """A change is never sent twice behind the operator's back: one 500 is an error."""
        _Flaky.failures, _Flaky.seen = 1, 0
        with _api(server) as api, pytest.raises(BrokerError, match="500"):
            api.request("PUT", "/vhosts/x", {})
        assert _Flaky.seen == 1

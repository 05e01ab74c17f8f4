"""A transparent HTTP proxy in front of the API that records what reached it and what it answered.

A browser does not report every request to the test driving it: a beacon sent as a page unloads
leaves no trace in Playwright or the DevTools protocol. The proxy sees it arrive, so a test can
wait for exactly the requests it expects rather than for a while."""

import base64
import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from abacus_local.client import REQUEST_TIMEOUT_S

FORWARD_TIMEOUT_S = REQUEST_TIMEOUT_S  # how long a forwarded request may wait for the API
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Delivery:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    fetch_mode: str  # Sec-Fetch-Mode: "cors" for fetch, "no-cors" for a beacon of a plain body
    body: bytes
    status: int

    def events(self) -> list[dict[str, Any]]:
        """The PostHog events in a capture body, read independently of Abacus's own decoding."""
        raw = self.body
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif self.query.get("compression") == ["base64"]:
            raw = base64.b64decode(parse_qs(raw.decode())["data"][0])
        document = json.loads(raw) if raw else {}
        batch = document if isinstance(document, list) else document.get("batch", [document])
        return [event for event in batch if isinstance(event, dict)]

    def carries(self, event_name: str, distinct_id: str) -> bool:
        """Answered 200, with that event of that user."""
        return self.status == 200 and any(
            e.get("event") == event_name
            and (e.get("distinct_id") or e.get("properties", {}).get("distinct_id")) == distinct_id
            for e in self.events()
        )


class Witness(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str):
        super().__init__(("127.0.0.1", 0), _Forwarder)
        self.target = target.rstrip("/")
        self.deliveries: list[Delivery] = []
        self.in_flight = 0
        self.lock = threading.Condition()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def wait_for(self, event_name: str, distinct_id: str, timeout_s: float = REQUEST_TIMEOUT_S) -> list[Delivery]:
        """The captures carrying that event of that user answered 200, once there is one."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while not (found := [d for d in self.deliveries if d.carries(event_name, distinct_id)]):
                left = deadline - time.monotonic()
                assert left > 0, f"no {event_name} of {distinct_id} arrived: {self.summary()}"
                self.lock.wait(left)
            return found

    def wait_until_idle(self, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while self.in_flight:
                left = deadline - time.monotonic()
                assert left > 0, "requests still in flight"
                self.lock.wait(left)

    def summary(self) -> list[tuple[str, str, int]]:
        return [(d.method, d.path, d.status) for d in self.deliveries]

    def record(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)
            self.lock.notify_all()


class _Forwarder(BaseHTTPRequestHandler):
    server: Witness
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet."""

    def _forward(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
        try:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            request = urllib.request.Request(
                self.server.target + self.path, data=body or None, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_S) as answer:
                    status, answer_headers, answer_body = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as error:
                status, answer_headers, answer_body = error.code, error.headers, error.read()
            parts = urlsplit(self.path)
            self.server.record(
                Delivery(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    content_type=self.headers.get("content-type", ""),
                    fetch_mode=self.headers.get("sec-fetch-mode", ""),
                    body=body,
                    status=status,
                )
            )
            self.send_response(status)
            for name, value in answer_headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("content-length", str(len(answer_body)))
            self.end_headers()
            self.wfile.write(answer_body)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1
                self.server.lock.notify_all()

    do_GET = do_POST = do_OPTIONS = _forward

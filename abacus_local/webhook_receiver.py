"""A webhook receiver on 127.0.0.1, for `make demo`, `make dev` users and the tests: it records every
POST (headers and raw body) and answers 204, or 500 to the first `failures` (a receiver that is
down). `alerts(secret)` gives the bodies whose X-Abacus-Signature checks with the secret."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from abacus.alerts import signing


class WebhookReceiver:
    def __init__(self, failures: int = 0):
        self.failures = failures
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.posts.append((dict(self.headers), body))
                    failing = len(receiver.posts) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # quiet: the demo prints what it received

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/abacus-alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for _, body in self.posts]

    def alerts(self, secret: str) -> list[dict[str, Any]]:
        """The bodies received whose signature checks with `secret` (each as JSON)."""
        with self._lock:
            posts = list(self.posts)
        return [
            json.loads(body)
            for headers, body in posts
            if signing.verify(
                secret,
                body,
                headers.get(signing.SIGNATURE_HEADER, ""),
                int(headers.get(signing.TIMESTAMP_HEADER, "0")),
                now=json.loads(body).get("timestamp", 0),
            )
        ]

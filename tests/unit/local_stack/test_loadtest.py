"""The load client itself: a client thread that dies fails the run instead of going quiet."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from abacus_local import loadtest


class _WrongShape(BaseHTTPRequestHandler):
    """Answers every request 200 with a body the client does not expect."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps({"unexpected": True}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_client_that_dies_fails_the_run():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongShape)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(KeyError, match="assignments"):
            loadtest.run(f"http://127.0.0.1:{server.server_address[1]}", "token", clients=3, seconds=0.5)
    finally:
        server.shutdown()
        server.server_close()

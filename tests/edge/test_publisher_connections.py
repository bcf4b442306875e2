"""The gateway's HTTPS publisher keeps its connection alive between batches, and a kept-alive
connection the platform has closed costs no batch: the pool notices it and connects anew."""

from __future__ import annotations

import http.server
import json
import threading

from edge.publishers import HttpsBatchPublisher
from tests.edge.test_dead_letter import free_port


class Counting(http.server.BaseHTTPRequestHandler):
    """A platform over HTTP/1.1 keep-alive that counts connections and requests, and can close
    each connection after its first answer."""

    protocol_version = "HTTP/1.1"
    connections = 0
    requests = 0
    close_after_answer = False

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"accepted": 2, "duplicates": 0, "rejected": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if type(self).close_after_answer:
            self.close_connection = True  # closed without telling the client first

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    """Tells when it has closed a connection (the socket shut and closed, not only answered)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.closed = threading.Semaphore(0)

    def shutdown_request(self, request: object) -> None:
        super().shutdown_request(request)  # type: ignore[arg-type]
        self.closed.release()


def serve(handler: type[Counting]) -> Server:
    server = Server(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


POINTS = [{"node": 1, "time": "2026-12-07T10:00:00Z", "power_kw": 1.0}] * 2


def test_batches_share_one_kept_alive_connection():
    class handler(Counting):  # (its own counts)
        pass

    server = serve(handler)
    try:
        publisher = HttpsBatchPublisher(f"http://127.0.0.1:{server.server_address[1]}", "imw_x")
        results = [publisher.publish(POINTS) for _ in range(5)]
    finally:
        server.shutdown()
        server.server_close()
    assert [r.accepted for r in results] == [2] * 5
    assert (handler.requests, handler.connections) == (5, 1)


def test_a_connection_the_platform_closed_is_replaced_without_losing_the_batch():
    class handler(Counting):  # (its own counts)
        close_after_answer = True

    server = serve(handler)
    try:
        publisher = HttpsBatchPublisher(f"http://127.0.0.1:{server.server_address[1]}", "imw_x")
        results = []
        for _ in range(3):
            results.append(publisher.publish(POINTS))
            # the platform has closed the kept-alive connection before the next batch comes (a
            # close racing the next request is a failed batch the forwarder's backoff resends)
            assert server.closed.acquire(timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert [r.accepted for r in results] == [2] * 3
    assert handler.requests == 3 and handler.connections == 3

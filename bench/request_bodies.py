"""Hostile request bodies against a real daphne: the answer, the server's memory, and whether it
keeps serving meanwhile.

    .venv/bin/python -m bench.request_bodies            # 200 MB bodies, about a minute
    .venv/bin/python -m bench.request_bodies --mb 50    # smaller bodies

Starts `.venv/bin/daphne imewe.asgi:application` with production settings (DEBUG=0) on a database
of its own, measures its idle RSS (/proc/<pid>/status VmRSS), then sends each attack while a
thread samples the RSS every 20 ms, and asks /healthz halfway through each body. The bodies are
generated while sending (the client never holds them). tests/core/test_body_limits.py uses the
same client with a bound on the peak.
"""

from __future__ import annotations

import argparse
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MIB = 1024 * 1024
CHUNK = b"\0" * (256 * 1024)  # one object, sent again and again


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class RssSampler:
    """The peak RSS of a process while the `with` block runs."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self.pid, self.every_s = pid, every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client had sent when it saw the answer (or finished)
    complete: bool  # the client sent the whole body
    during: list[object] = field(default_factory=list)  # what `halfway` returned


def multipart_body(size: int, boundary: str = "imewe-bench") -> tuple[int, Iterator[bytes]]:
    """(Content-Length, chunks) of a multipart/form-data body with one `file` of `size` bytes."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.stl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        yield from zeros(size)
        yield tail

    return len(head) + size + len(tail), chunks()


def json_body(size: int) -> tuple[int, Iterator[bytes]]:
    """A JSON array of `size` bytes: `[0,0,0,...,0]`."""
    filler = b"0," * (len(CHUNK) // 2)

    def chunks() -> Iterator[bytes]:
        yield b"["
        left = size - 2
        while left > len(filler):
            yield filler
            left -= len(filler)
        yield (b"0," * (left // 2))[: left - 1] + b"0" if left > 1 else b"0"[:left]
        yield b"]"

    return size, chunks()


def zeros(size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        piece = CHUNK if left >= len(CHUNK) else CHUNK[:left]
        yield piece
        left -= len(piece)


def send_body(
    port: int,
    path: str,
    chunks: Iterator[bytes],
    *,
    length: int | None,
    content_type: str,
    headers: dict[str, str] | None = None,
    halfway_at: int | None = None,
    halfway: Callable[[], object] | None = None,
) -> Answer:
    """POSTs the chunks on a raw socket (chunked transfer encoding when `length` is None), going
    on sending after an early answer as a browser or curl would; calls `halfway()` once
    `halfway_at` body bytes are out; then reads the whole answer."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", f"Content-Type: {content_type}"]
    lines.append("Connection: close")  # read the answer to its end
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock = socket.create_connection((HOST, port), timeout=120)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent, answered_at, complete = 0, None, False
    during: list[object] = []
    try:
        for chunk in chunks:
            if length is None:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                sock.sendall(chunk)
            sent += len(chunk)
            if answered_at is None and select.select([sock], [], [], 0)[0]:
                answered_at = sent
            if halfway is not None and halfway_at is not None and sent >= halfway_at:
                during.append(halfway())
                halfway = None
        if length is None:
            sock.sendall(b"0\r\n\r\n")
        complete = True
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: its answer may still be there
    raw = b""
    try:
        while data := sock.recv(65536):
            raw += data
    except ConnectionResetError:
        pass
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1]) if status_line else 0
    parsed = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return Answer(status, parsed, body, answered_at or sent, complete, during)


def get_status(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=60) as response:
        return int(response.status)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_daphne(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`.venv/bin/daphne` on a free port; waits until it answers /healthz."""
    port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [daphne, "-b", HOST, "-p", str(port), "imewe.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if get_status(port, "/healthz") == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"daphne did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def idle_rss(port: int, pid: int) -> int:
    """RSS once the first requests have loaded what requests load (warm, not cold)."""
    for _ in range(3):
        get_status(port, "/healthz")
        length, chunks = multipart_body(1024)
        send_body(port, "/", chunks, length=length, content_type=MULTIPART)
        length, chunks = json_body(1024)
        send_body(port, "/api/v1/jobs/cad/", chunks, length=length, content_type="text/plain")
    time.sleep(0.5)
    return rss_bytes(pid)


MULTIPART = "multipart/form-data; boundary=imewe-bench"


def attacks(
    size: int,
) -> list[tuple[str, str, Callable[[], tuple[int | None, Iterator[bytes]]], str]]:
    """(name, path, body, content type) of each hostile request."""
    return [
        ("multipart to /", "/", lambda: multipart_body(size), MULTIPART),
        ("multipart to CAD upload", "/api/v1/jobs/cad/", lambda: multipart_body(size), MULTIPART),
        (
            "JSON to telemetry batch",
            "/api/v1/telemetry/batch/",
            lambda: json_body(size // 4),
            "application/json",
        ),
        (
            "chunked, no length, to /api/",
            "/api/v1/jobs/",
            lambda: (None, zeros(size // 4)),
            "application/json",
        ),
    ]


def main() -> None:
    from bench.harness import BenchDatabase, migrate, server_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the multipart bodies (MB)")
    args = parser.parse_args()
    size = args.mb * 1000 * 1000
    database = BenchDatabase("imewe_bench_bodies")
    database.recreate()
    with tempfile.TemporaryDirectory() as tmp:
        env = server_env(
            database=database, redis_url="", key_prefix="bench-bodies", var_dir=Path(tmp)
        )
        env.pop("REDIS_URL")
        migrate(env)
        proc, port = start_daphne(env, Path(tmp) / "daphne.log")
        try:
            idle = idle_rss(port, proc.pid)
            print(f"daphne idle RSS: {idle / MIB:.0f} MiB")
            print(
                f"{'attack':32} {'status':>6} {'peak RSS':>10} {'+idle':>8} "
                f"{'sent at 413':>12} healthz"
            )
            for name, path, make, ctype in attacks(size):
                length, chunks = make()
                with RssSampler(proc.pid) as rss:
                    answer = send_body(
                        port,
                        path,
                        chunks,
                        length=length,
                        content_type=ctype,
                        halfway_at=(length or size // 4) // 2,
                        halfway=lambda: get_status(port, "/healthz"),
                    )
                print(
                    f"{name:32} {answer.status:>6} {rss.peak / MIB:>8.0f}Mi "
                    f"{(rss.peak - idle) / MIB:>+7.0f}Mi {answer.sent / MIB:>10.1f}Mi "
                    f"{answer.during}"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            database.drop()


if __name__ == "__main__":
    main()

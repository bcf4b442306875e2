"""The managed gateway's control channel to the platform, with the gateway's own token
(`Authorization: Gateway <token>`): pull its configuration (ETag / If-None-Match, so an
unchanged configuration costs a 304 and no body), obtain its nodes' device tokens, report its
status, and (edge/commands.py) fetch and acknowledge remote commands. Blocking calls: the
gateway runs them in a thread."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class PlatformUnavailable(Exception):
    """The platform could not be reached or answered with a server error: try again later."""


class PlatformRefused(Exception):
    """The platform refused the request (a revoked token, a node the gateway does not serve):
    trying again unchanged cannot help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ConfigAnswer:
    etag: str
    document: dict[str, Any] | None  # None: unchanged since `etag` (304)


class PlatformLink:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("--platform must be an http(s):// URL")
        self.base_url = base_url.rstrip("/") + "/api/v1/gateway/"
        self.token = token
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Gateway {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
                status, answer_headers = response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return 304, dict(exc.headers), None
            message = _error_message(exc.read(64 * 1024))
            exc.close()
            if exc.code >= 500 or exc.code == 429:
                raise PlatformUnavailable(f"HTTP {exc.code}: {message}") from None
            raise PlatformRefused(exc.code, message) from None
        except (OSError, TimeoutError) as exc:  # URLError is an OSError
            raise PlatformUnavailable(str(exc)) from exc
        if len(raw) > MAX_RESPONSE_BYTES:
            raise PlatformUnavailable(f"the answer is larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            return status, answer_headers, json.loads(raw) if raw else None
        except ValueError:
            raise PlatformUnavailable("the answer is not JSON") from None

    def config(self, etag: str | None) -> ConfigAnswer:
        headers = {"If-None-Match": etag} if etag else {}
        status, answer_headers, body = self.call("GET", "config/", headers=headers)
        new_etag = answer_headers.get("ETag") or answer_headers.get("Etag") or ""
        if status == 304:
            return ConfigAnswer(etag or new_etag, None)
        if not isinstance(body, dict):
            raise PlatformUnavailable("the configuration is not a JSON object")
        return ConfigAnswer(new_etag, body)

    def node_token(self, node: int) -> str:
        _, _, body = self.call("POST", f"nodes/{node}/token/")
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PlatformUnavailable(f"no token in the answer for node {node}")
        return token

    def report(self, status: dict[str, Any]) -> None:
        self.call("POST", "status/", status)

    def take_commands(self) -> list[dict[str, Any]]:
        _, _, body = self.call("POST", "commands/take/")
        if not isinstance(body, list) or not all(isinstance(c, dict) for c in body):
            raise PlatformUnavailable("the commands are not a JSON list of objects")
        return body

    def acknowledge(self, command: int, *, ok: bool, outcome: str) -> None:
        self.call("POST", f"commands/{command}/ack/", {"ok": ok, "outcome": outcome[:500]})

    def download(self, path: str, destination: Path, *, max_bytes: int) -> tuple[str, int]:
        """Stream the file at `path` (relative to the gateway API) into `destination`, at most
        `max_bytes` of it: its SHA-256 (hex) and size. A longer file stops the download at the
        first byte past the limit (the size returned then exceeds `max_bytes`)."""
        request = urllib.request.Request(self.base_url + path, method="GET")
        request.add_header("Authorization", f"Gateway {self.token}")
        # the file, or the platform's JSON error
        request.add_header("Accept", "application/octet-stream, application/json")
        digest, size = hashlib.sha256(), 0
        try:
            with (
                urllib.request.urlopen(request, timeout=self.timeout) as response,
                open(destination, "wb") as out,
            ):
                while size <= max_bytes and (chunk := response.read(1 << 16)):
                    size += len(chunk)
                    digest.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            message = _error_message(exc.read(64 * 1024))
            exc.close()
            if exc.code >= 500 or exc.code == 429:
                raise PlatformUnavailable(f"HTTP {exc.code}: {message}") from None
            raise PlatformRefused(exc.code, message) from None
        except (OSError, TimeoutError) as exc:
            raise PlatformUnavailable(str(exc)) from exc
        return digest.hexdigest(), size


def _error_message(raw: bytes) -> str:
    """The message of the platform's JSON error ({"error": {"message": ...}}), else the text."""
    try:
        body = json.loads(raw)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            details = error.get("details")
            suffix = f" {json.dumps(details)[:300]}" if details else ""
            return str(error["message"]) + suffix
    except ValueError:
        pass
    return raw[:300].decode(errors="replace")

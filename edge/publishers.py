"""Upstream publishers: how the gateway hands points to the platform."""

from __future__ import annotations

import gzip
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class UpstreamUnavailable(Exception):
    """The platform could not be reached or answered with a server error: keep the points."""


class UpstreamRefused(Exception):
    """The platform refused the credentials: retrying cannot help until someone acts."""


@dataclass(frozen=True)
class PublishResult:
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class Publisher(Protocol):
    def publish(self, points: list[dict[str, Any]]) -> PublishResult: ...


class HttpsBatchPublisher:
    """POSTs gzip-compressed batches to /api/v1/telemetry/batch/ with the node's device token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/telemetry/batch/"
        self.token = token
        self.timeout = timeout

    def publish(self, points: list[dict[str, Any]]) -> PublishResult:
        body = gzip.compress(json.dumps(points).encode())
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Content-Encoding", "gzip")
        request.add_header("Authorization", f"Device {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                report = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise UpstreamRefused(f"HTTP {exc.code}: {exc.read()[:300]!r}") from None
            if exc.code == 400:  # nothing storable: report, do not retry forever
                details = json.loads(exc.read()).get("error", {}).get("details") or {}
                return PublishResult(0, 0, list(details.get("rejected", [])))
            raise UpstreamUnavailable(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise UpstreamUnavailable(str(exc)) from None
        return PublishResult(
            int(report["accepted"]), int(report["duplicates"]), list(report["rejected"])
        )

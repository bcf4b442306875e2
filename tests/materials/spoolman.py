"""A Spoolman server for tests (github.com/Donkie/Spoolman; its REST API, /api/v1/): serves
`GET /api/v1/spool` (spools with their filament: name, material, color_hex, weight; the spool's
remaining_weight, used_weight, location, archived; archived spools only with
`allow_archived=true`, as Spoolman does) and `GET /api/v1/health`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def spool(
    spool_id: int,
    material: str,
    color_hex: str,
    remaining: float,
    location: str = "",
    *,
    name: str = "",
    archived: bool = False,
) -> dict[str, Any]:
    return {
        "id": spool_id,
        "registered": "2026-11-01T10:00:00Z",
        "filament": {
            "id": spool_id + 100,
            "name": name or f"{material} {color_hex}",
            "vendor": {"id": 1, "name": "Polymaker"},
            "material": material,
            "density": 1.24,
            "diameter": 1.75,
            "weight": 1000.0,
            "spool_weight": 140.0,
            "color_hex": color_hex,
        },
        "remaining_weight": remaining,
        "used_weight": 1000.0 - remaining if isinstance(remaining, int | float) else None,
        "location": location,
        "archived": archived,
        "extra": {},
    }


class SpoolmanServer:
    def __init__(self, spools: list[dict[str, Any]]) -> None:
        self.spools = spools
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlparse(self.path)
                payload: Any
                if url.path == "/api/v1/health":
                    status, payload = 200, {"status": "healthy"}
                elif url.path == "/api/v1/spool":
                    archived = parse_qs(url.query).get("allow_archived") == ["true"]
                    status = 200
                    payload = [s for s in outer.spools if archived or not s.get("archived")]
                else:
                    status, payload = 404, {"detail": "Not Found"}
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

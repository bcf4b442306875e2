"""Small pieces the printer-server simulators share: JSON answers and multipart uploads."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any = None) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    handler.send_response(status)
    if payload is not None:
        handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def read_body(handler: BaseHTTPRequestHandler, limit: int = 50 * 1024 * 1024) -> bytes:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > limit:
        raise ValueError(f"body of {length} bytes is over the {limit}-byte limit")
    return handler.rfile.read(length) if length else b""


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(fields, files: field -> (file name, data)) of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        raise ValueError("expected multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files

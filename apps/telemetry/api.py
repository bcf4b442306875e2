from __future__ import annotations

import zlib
from typing import Any

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from apps.core.api import error_body
from apps.telemetry.limits import (
    MAX_BODY_BYTES,
    MAX_CONTAINERS,
    POINT_BYTE_BUDGET,
    json_containers,
)
from apps.telemetry.services import (
    MAX_BATCH,
    telemetry_import_history,
    telemetry_ingest,
    telemetry_ingest_json,
)
from apps.telemetry.validation import BatchShapeError
from apps.users.authentication import RevocableJWTAuthentication, VerifiedSessionAuthentication
from apps.users.permissions import action_required
from apps.users.roles import Action
from apps.vendors.authentication import (
    DevicePrincipal,
    DeviceRequest,
    DeviceTokenAuthentication,
    IsDevice,
)

INFLATE_STEP = 256 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class DeviceRateThrottle(SimpleRateThrottle):
    """Per device credential, much looser than the per-user API limit (gateways batch)."""

    scope = "device"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.user, DevicePrincipal):
            return f"throttle_device_{request.user.credential.pk}"
        return None


def read_json_body(request: Request) -> Any:
    """The JSON body, inflated from gzip in bounded steps, refused with 413 past
    MAX_BODY_BYTES or MAX_CONTAINERS before any Python object is built."""
    return decode_body(request._request.body, request.headers.get("Content-Encoding", "").lower())


def body_bytes(body: bytes, encoding: str) -> bytes:
    """`body` (sent with Content-Encoding `encoding`, lower case) inflated and checked against
    the size and container limits: the bytes a JSON decoder may take."""
    if encoding == "gzip":
        body = _gunzip(body, limit=MAX_BODY_BYTES)
    elif encoding not in ("", "identity"):
        raise exceptions.UnsupportedMediaType(
            encoding, f"Unsupported Content-Encoding {encoding!r}; use gzip."
        )
    elif len(body) > MAX_BODY_BYTES:
        raise _too_large()
    if json_containers(body) > MAX_CONTAINERS:
        raise PayloadTooLarge(
            f"The body holds more than {MAX_CONTAINERS} JSON objects and arrays; a batch is at "
            f"most {MAX_BATCH} points."
        )
    return body


def decode_body(body: bytes, encoding: str) -> Any:
    """The body as JSON (the single-point API; the DRF view and the fast path both use it)."""
    try:
        return orjson.loads(body_bytes(body, encoding))
    except orjson.JSONDecodeError as exc:
        raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from None


def point_result(payload: Any, node_id: int) -> tuple[int, Any]:
    """Store one point for node `node_id`: (status, body). 201 stored, 200 duplicate."""
    report = telemetry_ingest(points=[payload], node_id=node_id)
    if report.rejected:
        return status.HTTP_400_BAD_REQUEST, error_body(
            "invalid", "The point was rejected; see details.", report.rejected[0]["errors"]
        )
    code = status.HTTP_201_CREATED if report.accepted else status.HTTP_200_OK
    return code, report.as_dict()


def batch_result(body: bytes, encoding: str, node_id: int) -> tuple[int, Any]:
    """Store a batch body for node `node_id`: (status, body). The JSON is decoded and checked
    in one pass (telemetry_ingest_json), never built as Python dicts first."""
    try:
        report = telemetry_ingest_json(body=body_bytes(body, encoding), node_id=node_id)
    except orjson.JSONDecodeError as exc:
        raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from None
    except BatchShapeError as exc:
        raise exceptions.ValidationError({"points": str(exc)}) from None
    data = report.as_dict()
    if report.rejected and not report.accepted and not report.duplicates:
        return status.HTTP_400_BAD_REQUEST, error_body(
            "invalid", "No point could be stored; see details.", data
        )
    return (status.HTTP_207_MULTI_STATUS if report.rejected else status.HTTP_200_OK), data


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The (inflated) body is larger than {MAX_BODY_BYTES} bytes ({MAX_BATCH} points of "
        f"{POINT_BYTE_BUDGET} bytes); send it in smaller batches."
    )


def _gunzip(data: bytes, *, limit: int) -> bytes:
    """Inflate every gzip member of `data`, never holding more than `limit` + one step."""
    out = bytearray()
    try:
        while data:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
            pending = data
            while not inflater.eof:
                chunk = inflater.decompress(pending, INFLATE_STEP)
                out += chunk
                if len(out) > limit:
                    raise _too_large()
                pending = inflater.unconsumed_tail
                if not pending and not chunk:
                    break  # the input is used up
            if not inflater.eof:
                raise exceptions.ParseError("The gzip body is corrupt (truncated).")
            data = inflater.unused_data  # the next member, if any
    except zlib.error:
        raise exceptions.ParseError("The gzip body is corrupt.") from None
    return bytes(out)


class _IngestBase(APIView):
    authentication_classes = [
        DeviceTokenAuthentication,
        RevocableJWTAuthentication,  # recognised only to answer "users cannot ingest"
        VerifiedSessionAuthentication,
    ]
    permission_classes = [IsDevice]
    throttle_classes = [DeviceRateThrottle]


class TelemetryPointApi(_IngestBase):
    """Ingest one point (device token). 201 stored, 200 duplicate (not stored again), 400 bad."""

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT}
    )
    def post(self, request: DeviceRequest) -> Response:
        code, body = point_result(read_json_body(request), request.user.node_id)
        return Response(body, status=code)


class TelemetryBatchApi(_IngestBase):
    """Ingest up to 10,000 points: a JSON array or {"points": [...]}, optionally gzip-encoded
    (`Content-Encoding: gzip`). Good points are stored even when others are bad: 200 when all
    were fine, 207 when some were rejected, 400 when none could be stored."""

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiTypes.OBJECT,
            207: OpenApiResponse(OpenApiTypes.OBJECT, description="Partly stored; see rejected"),
        },
    )
    def post(self, request: DeviceRequest) -> Response:
        encoding = request.headers.get("Content-Encoding", "").lower()
        code, body = batch_result(request._request.body, encoding, request.user.node_id)
        return Response(body, status=code)


class TelemetryHistoryImportApi(APIView):
    """Administrators only: store up to 10,000 points of a node's past telemetry with their own
    times, beyond the live one-year window on purpose (telemetry_import_history; the same as
    `manage.py import_telemetry`). A JSON array or {"points": [...]}, gzip allowed; a point
    without "node" is for the node of the URL. 200 all stored, 207 some rejected (by index),
    400 none stored. The rules do not run on history: `manage.py score_history` replays them."""

    permission_classes = [action_required(Action.SYSTEM_ADMIN)]

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        payload = read_json_body(request)
        points = payload.get("points") if isinstance(payload, dict) else payload
        if not isinstance(points, list) or not points:
            raise exceptions.ValidationError(
                {"points": 'Send a non-empty JSON array of points, or {"points": [...]}.'}
            )
        if len(points) > MAX_BATCH:
            raise exceptions.ValidationError(
                {"points": f"At most {MAX_BATCH} points per batch; got {len(points)}."}
            )
        points = [
            {**p, "node": pk} if isinstance(p, dict) and "node" not in p else p for p in points
        ]
        report = telemetry_import_history(points=points, node_id=pk)
        data = report.as_dict()
        if report.rejected and not report.accepted and not report.duplicates:
            return Response(
                error_body("invalid", "No point could be stored; see details.", data),
                status=status.HTTP_400_BAD_REQUEST,
            )
        code = status.HTTP_207_MULTI_STATUS if report.rejected else status.HTTP_200_OK
        return Response(data, status=code)

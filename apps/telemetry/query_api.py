"""Permission-filtered telemetry reads: raw range (downsampled), buckets, latest, CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.telemetry.selectors import (
    BUCKETS,
    SIGNALS,
    latest_points,
    point_buckets,
    point_range,
    point_range_downsampled,
    telemetry_nodes,
)
from apps.telemetry.validation import parse_time
from apps.users.types import AuthenticatedRequest
from apps.vendors.models import FabricationNode

MAX_RANGE = timedelta(days=31)
# Buckets may span longer, at most about this many rows: day buckets over years (served by
# the daily aggregate on TimescaleDB), minute and hour buckets over MAX_RANGE as before.
MAX_BUCKET_RANGE = {
    "minute": MAX_RANGE,
    "hour": MAX_RANGE,
    "day": timedelta(days=1830),  # five years: at most 1,831 rows
}
RANGE_PARAMS = [
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="ISO 8601; default: end - 1 h"),
    OpenApiParameter("end", OpenApiTypes.DATETIME, description="ISO 8601; default: now"),
]


def time_range(request: Request, *, limit: timedelta = MAX_RANGE) -> tuple[datetime, datetime]:
    errors = {}
    values: dict[str, datetime] = {}
    for name in ("start", "end"):
        raw = request.query_params.get(name)
        if raw:
            try:
                values[name] = parse_time(raw)
            except ValueError as exc:
                errors[name] = [str(exc)]
    if errors:
        raise exceptions.ValidationError(errors)
    end = values.get("end", timezone.now())
    start = values.get("start", end - timedelta(hours=1))
    if start >= end:
        raise exceptions.ValidationError({"start": ["must be before end"]})
    if end - start > limit:
        hint = "; use buckets" if limit == MAX_RANGE else ""
        raise exceptions.ValidationError(
            {"start": [f"the range is limited to {limit.days} days{hint}"]}
        )
    return start, end


def visible_node(request: AuthenticatedRequest, pk: int) -> FabricationNode:
    """404, not 403, so node ids don't leak."""
    return get_object_or_404(telemetry_nodes(user=request.user), pk=pk)


class NodePointsApi(APIView):
    @extend_schema(
        parameters=[
            *RANGE_PARAMS,
            OpenApiParameter("max_points", int, description="1-5000, default 1000"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = visible_node(request, pk)
        start, end = time_range(request)
        try:
            max_points = int(request.query_params.get("max_points", 1000))
        except ValueError:
            raise exceptions.ValidationError({"max_points": ["must be an integer"]}) from None
        if not 1 <= max_points <= 5000:
            raise exceptions.ValidationError({"max_points": ["must be between 1 and 5000"]})
        points = point_range_downsampled(
            node_id=node.pk, start=start, end=end, max_points=max_points
        )
        return Response(
            {"node": node.pk, "start": start, "end": end, "count": len(points), "points": points}
        )


class NodeBucketsApi(APIView):
    @extend_schema(
        parameters=[
            *RANGE_PARAMS,
            OpenApiParameter("signal", str, enum=list(SIGNALS), required=True),
            OpenApiParameter("bucket", str, enum=list(BUCKETS), description="default hour"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        node = visible_node(request, pk)
        signal = request.query_params.get("signal", "")
        bucket = request.query_params.get("bucket", "hour")
        errors: dict[str, list[str]] = {}
        if signal not in SIGNALS:
            errors["signal"] = [f"one of {', '.join(SIGNALS)}"]
        if bucket not in BUCKETS:
            errors["bucket"] = [f"one of {', '.join(BUCKETS)}"]
        if errors:
            raise exceptions.ValidationError(errors)
        start, end = time_range(request, limit=MAX_BUCKET_RANGE[bucket])
        rows = point_buckets(node_id=node.pk, start=start, end=end, bucket=bucket, signal=signal)
        return Response({"node": node.pk, "signal": signal, "bucket": bucket, "buckets": rows})


class LatestApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "nodes", str, description="comma-separated ids; default: all you may see (max 200)"
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        visible = telemetry_nodes(user=request.user)
        raw = request.query_params.get("nodes")
        if raw:
            try:
                wanted = [int(v) for v in raw.split(",") if v.strip()]
            except ValueError:
                raise exceptions.ValidationError({"nodes": ["comma-separated integers"]}) from None
            visible = visible.filter(pk__in=wanted)
        ids = list(visible.values_list("pk", flat=True)[:200])
        rows = [
            {
                "node": p.node_id,
                "time": p.time,
                **{s: getattr(p, s) for s in SIGNALS},
                "extra": p.extra,
            }
            for p in latest_points(node_ids=ids)
        ]
        return Response({"results": rows})


class _Echo:
    def write(self, value: str) -> str:
        return value


class NodeCsvExportApi(APIView):
    @extend_schema(parameters=RANGE_PARAMS, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: AuthenticatedRequest, pk: int) -> Any:
        node = visible_node(request, pk)
        start, end = time_range(request)
        writer = csv.writer(_Echo())
        columns = ["time", *SIGNALS, "job_id", "extra"]

        def rows() -> Iterator[str]:
            yield writer.writerow(columns)
            for point in point_range(node_id=node.pk, start=start, end=end).iterator(
                chunk_size=2000
            ):
                yield writer.writerow(
                    [point.time.isoformat(), *(getattr(point, c) for c in columns[1:])]
                )

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="node-{node.pk}-telemetry.csv"'
        return response

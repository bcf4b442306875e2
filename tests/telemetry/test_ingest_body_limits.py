"""The batch endpoint inflates gzip in bounded steps and refuses oversized or object-bomb bodies
with 413 before parsing them: the process's memory stays bounded (measured, not assumed)."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from apps.telemetry.limits import MAX_BODY_BYTES, MAX_CONTAINERS
from apps.telemetry.models import TelemetryPoint
from tests.fixtures.live import Live
from tests.telemetry.test_ingest_api import at, device

pytestmark = pytest.mark.django_db
MEMORY_BOUND_MB = 100
URL = "/api/v1/telemetry/batch/"


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def peak_growth_mb(action) -> tuple[float, object]:
    """How far above its current RSS the process peaked while running `action` (run once
    before, on a tiny body, so first-request imports and caches are not counted)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM (the peak) to the current RSS
    before = rss_mb()
    result = action()
    return rss_mb("VmHWM") - before, result


def gzip_bomb(inflated_mb: int) -> bytes:
    """A gzip body of `inflated_mb` MB of `{}` objects, built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = b"{}," * (1024 * 1024 // 3)
    parts = [compressor.compress(b"[")]
    parts += [compressor.compress(piece) for _ in range(inflated_mb)]
    parts += [compressor.compress(b"{}]"), compressor.flush()]
    return b"".join(parts)


def assert_413(response, words: str) -> None:
    assert response.status_code == 413, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and words in error["message"], error


def test_gzip_bomb_is_refused_with_bounded_memory(live: Live):
    # given: 64 KB of gzip that inflates to 63 MB of `{}` (it took the process +1.9 GB)
    bomb = gzip_bomb(63)
    assert len(bomb) < 100 * 1024
    client = device(live.tokens[0])
    client.post(
        URL, gzip.compress(b"[]"), content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )

    # when
    growth, response = peak_growth_mb(
        lambda: client.post(
            URL, bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
        )
    )

    # then
    print(f"peak RSS growth: +{growth:.1f} MB")  # pytest -s shows the figure
    assert growth < MEMORY_BOUND_MB, f"the request took the process +{growth:.0f} MB"
    assert_413(response, f"larger than {MAX_BODY_BYTES} bytes")


def test_object_bomb_under_the_size_limit_is_refused_before_parsing(live: Live):
    # given: just under the byte limit, but 1.7 million empty objects (+120 MB once parsed)
    body = b"[" + b"{}," * ((MAX_BODY_BYTES - 10) // 3) + b"{}]"
    assert len(body) <= MAX_BODY_BYTES
    client = device(live.tokens[0])
    client.post(URL, b"[]", content_type="application/json")  # warm up

    growth, response = peak_growth_mb(
        lambda: client.post(URL, body, content_type="application/json")
    )

    print(f"peak RSS growth: +{growth:.1f} MB")  # pytest -s shows the figure
    assert growth < MEMORY_BOUND_MB, f"the request took the process +{growth:.0f} MB"
    assert_413(response, f"more than {MAX_CONTAINERS} JSON objects")


def test_plain_body_over_the_limit_is_refused(live: Live):
    body = b'[{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}]'
    response = device(live.tokens[0]).post(URL, body, content_type="application/json")
    assert_413(response, "smaller batches")


def test_braces_inside_strings_do_not_count_as_objects(live: Live):
    # given: 150 points whose extra strings are full of braces (1.5 million '{' in the body)
    node = live.nodes[0]
    extra = {f"s{k}": "{[" * 100 for k in range(50)}
    batch = [{"node": node.pk, "time": at(i), "power_kw": 1, "extra": extra} for i in range(150)]
    body = orjson.dumps(batch)
    assert body.count(b"{") > MAX_CONTAINERS and len(body) < MAX_BODY_BYTES

    response = device(live.tokens[0]).post(URL, body, content_type="application/json")

    assert response.status_code == 200, response.content[:300]
    assert TelemetryPoint.objects.filter(node=node).count() == 150


def test_gzip_members_are_all_inflated_and_truncation_is_a_parse_error(live: Live):
    node = live.nodes[0]
    first = orjson.dumps([{"node": node.pk, "time": at(1), "power_kw": 1}])[:-1] + b","
    second = orjson.dumps({"node": node.pk, "time": at(2), "power_kw": 2}) + b"]"
    client = device(live.tokens[0])

    two_members = gzip.compress(first) + gzip.compress(second)
    response = client.post(
        URL, two_members, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 200 and response.json()["accepted"] == 2

    truncated = gzip.compress(first + second)[:-12]
    response = client.post(
        URL, truncated, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"


@pytest.mark.timeout(120)  # a hang guard, not a speed check: the old count took hours here
def test_an_unterminated_string_full_of_escapes_is_counted_in_linear_time(live: Live):
    # given: the shape that made the string-stripping regex restart at every quote (5 KB gzipped)
    body = b"{" * 40_000 + b'"' + b'\\"' * 2_500_000
    assert len(body) < MAX_BODY_BYTES

    response = device(live.tokens[0]).post(
        URL, gzip.compress(body), content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )

    assert_413(response, f"more than {MAX_CONTAINERS} JSON objects")

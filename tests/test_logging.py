import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_production_logs_are_json_lines():
    code = (
        "import django, logging; django.setup();"
        "logging.getLogger('imewe.test').warning('hello %s', 'ops')"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "imewe.settings",
        "SECRET_KEY": "log-test-" + "Hq2-Zr8_wN5xK1mB7vT4cY9" * 3,
        "DEBUG": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert record["message"] == "hello ops"
    assert record["level"] == "WARNING" and record["logger"] == "imewe.test"
    assert "time" in record


REFUSAL_SCRIPT = """
import django
django.setup()
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.log import log_response

request = RequestFactory().get("/maintenance/")
try:
    raise PermissionDenied("Your role does not allow this: manage 100% of tickets.")
except PermissionDenied as exc:
    log_response("Forbidden (Permission denied): %s", request.path,
                 response=HttpResponse(status=403), request=request, exception=exc)
try:
    raise ValueError("a fault in the platform")
except ValueError as exc:
    log_response("Internal Server Error: %s", request.path, response=HttpResponse(status=500),
                 request=request, exception=exc)
"""


def test_development_console_logs_a_refusal_as_one_line_and_a_fault_with_its_traceback():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "imewe.settings",
        "SECRET_KEY": "log-test-" + "Hq2-Zr8_wN5xK1mB7vT4cY9" * 3,
        "DEBUG": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", REFUSAL_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    refusals = [line for line in lines if "Forbidden" in line]
    # printed once (not by Django's own console handler as well), with the reason, no traceback
    assert len(refusals) == 1, result.stderr
    assert "WARNING" in refusals[0] and "/maintenance/" in refusals[0]
    assert "manage 100% of tickets" in refusals[0]
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert result.stderr.index("Internal Server Error") < result.stderr.index("Traceback")
    assert "ValueError: a fault in the platform" in result.stderr

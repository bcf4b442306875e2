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

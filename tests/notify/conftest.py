from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.notify.receivers import Receiver


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    # The receivers run on this machine; production refuses loopback unless allowed.
    settings.NOTIFY_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.NOTIFY_GROUP_WINDOW_S = 0
    settings.SITE_URL = "https://imewe.example"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(port=8211).start()
    yield r
    r.stop()


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    r = Receiver(port=8212).start()
    yield r
    r.stop()

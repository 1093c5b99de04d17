"""Fixtures of the webhook tests: a real local HTTP receiver, and loopback targets allowed
(WEBHOOKS_ALLOW_PRIVATE_TARGETS) as the tests' receiver is on 127.0.0.1."""

import pytest

from tests.sharing.webhooks.receiver import Receiver


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()

"""Fixtures shared by the feedback, announcement and follow tests (a pytest plugin: test
modules name it in `pytest_plugins`; plain helpers are in tests/feedback_utils.py)."""

import pytest

from portal.celery import app
from tests.factories import ProductFactory


@pytest.fixture
def fast_passwords(settings):
    """A fast hasher: these tests create many users (use with pytest.mark.usefixtures)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eager_tasks():
    """Tasks enqueued with .delay() run in this process (the callers' wiring, no broker)."""
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def product(domain, owner, steward):
    return ProductFactory(domain=domain, name="Orders", slug="orders", owners=[owner])

"""Fixtures and helpers shared by the feedback, announcement and follow tests."""

import pytest
from django.urls import reverse

from portal.celery import app
from tests.factories import PASSWORD, ProductFactory


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


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def product_url(name: str, product, **kwargs) -> str:
    return reverse(
        f"products:{name}",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug, **kwargs},
    )


def thread_url(thread, suffix: str = "detail") -> str:
    return product_url(f"feedback-{suffix}", thread.product, thread_id=thread.pk)

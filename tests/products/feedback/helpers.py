"""Plain helpers of the feedback, announcement and follow tests."""

from django.urls import reverse

from tests.factories import PASSWORD


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def product_url(name: str, product, **kwargs) -> str:
    return reverse(
        f"products:{name}",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug, **kwargs},
    )


def thread_url(thread, suffix: str = "detail") -> str:
    return product_url(f"feedback-{suffix}", thread.product, thread_id=thread.pk)

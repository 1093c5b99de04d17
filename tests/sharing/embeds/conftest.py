"""Fixtures of the embed tests: the serving tests' orders on PostgreSQL (`pg_product`,
sales.pg-orders: order_id, country, email (confidential), amount), an embed of them locked
on `tenant` -> country, a host application with an Ed25519 key, and `sign` for its tokens."""

from __future__ import annotations

import pytest

from sharing.embeds.host import embed_token_sign, key_pair
from sharing.embeds.services.apps import embed_app_create
from sharing.embeds.services.embeds import embed_create

HOST = "https://shop.example.com"


@pytest.fixture(scope="session")
def ed_keys() -> tuple[str, str]:
    return key_pair("EdDSA")


@pytest.fixture
def table_embed(pg_product, owner, ed_keys):
    """Orders of one country (the token's tenant) as a table, CSV allowed."""
    embed = embed_create(
        by=owner,
        product=pg_product,
        title="Your orders",
        chart="table",
        columns=["order_id", "amount"],
        locked_params={"tenant": "country"},
        allowed_origins=[HOST],
        allow_csv=True,
    )
    embed_app_create(
        by=owner, name="Shop", embed=embed, kid="shop-1", algorithm="EdDSA", public_key=ed_keys[1]
    )
    return embed


@pytest.fixture
def sign(ed_keys):
    def signed(embed, params=None, *, kid="shop-1", private_key=None, **fields) -> str:
        return embed_token_sign(
            private_key=private_key or ed_keys[0],
            kid=kid,
            embed_id=embed.pk,
            params={"tenant": "BE"} if params is None else params,
            **fields,
        )

    return signed


@pytest.fixture
def call(client):
    """GET an embed's data as its framed page does (X-Embed-Origin: the host)."""

    def data(embed, token, *, origin=None, parent=HOST, fmt=None, **headers):
        extra = {"HTTP_AUTHORIZATION": f"Bearer {token}", **headers}
        if parent:
            extra["HTTP_X_EMBED_ORIGIN"] = parent
        if origin:
            extra["HTTP_ORIGIN"] = origin
        url = f"/embed/{embed.pk}/data/" + (f"?format={fmt}" if fmt else "")
        return client.get(url, **extra)

    return data

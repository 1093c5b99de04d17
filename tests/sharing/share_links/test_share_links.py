"""Share links: who may share, the token (shown once, 256 bits, only its hash stored),
scope within the creator's access (columns, rows, masking), the one 404 for every unusable
token, the creator losing access, the audit of each use, every file format read back, and
export-run files. Services, API and pages."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import timedelta

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from products.choices import MembershipRole
from products.models import DomainMembership
from sharing.choices import AuditAction, ExportStatus
from sharing.models import AccessEvent, AccessGrant, ExportRun, ExportSchedule, ShareLink
from sharing.share_links.services import share_link_consume, share_link_create, share_link_resolve
from tests.factories import MembershipFactory, UserFactory
from tests.sharing.readers import NARROW_COLUMNS, NARROW_FILTER, ROWS, grant

API = "/api/v1/share-links/"
SHARE_PAGE = "/products/sales/orders/share/"
DATA_PAGE = "/products/sales/orders/data/"
ALL = list(ROWS)


def sharer(kind: str, product):
    """A user who may (or may not) share `product`."""
    if kind == "admin":
        return UserFactory(username="admin", is_staff=True, is_superuser=True)
    user = UserFactory(username=kind)
    if kind in ("owner", "steward", "member"):
        role = {"owner": MembershipRole.OWNER, "steward": MembershipRole.STEWARD}.get(
            kind, MembershipRole.MEMBER
        )
        MembershipFactory(domain=product.domain, user=user, role=role)
    elif kind == "shareable_grant":
        grant(product, user, shareable=True)
    elif kind == "narrow_shareable_grant":
        grant(product, user, shareable=True, columns=NARROW_COLUMNS, row_filter=NARROW_FILTER)
    elif kind == "grant":
        grant(product, user)
    return user


def create(by, product, **fields):
    fields.setdefault("format", "csv")
    return share_link_create(by=by, product=product, **fields)


def download(client, token: str, **extra):
    response = client.get(f"/s/{token}/download", **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def csv_rows(body: bytes) -> list[dict]:
    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    return frame.to_dict("records")


# --- who may share ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, status",
    [
        ("anonymous", 401),
        ("outsider", 403),  # signed in, no access
        ("grant", 403),  # reads the product, grant not shareable
        ("member", 403),  # reads everything, but shares only through a shareable grant
        ("shareable_grant", 201),
        ("narrow_shareable_grant", 201),
        ("steward", 201),
        ("owner", 201),
        ("admin", 201),
    ],
)
def test_who_may_create_a_link(api_client, orders, kind, status):
    if kind != "anonymous":
        api_client.force_authenticate(sharer(kind, orders))
    response = api_client.post(API, {"product": "sales.orders"}, format="json")
    assert response.status_code == status, response.content
    if status == 201:
        link = ShareLink.objects.get()
        expected = NARROW_COLUMNS if kind == "narrow_shareable_grant" else ALL
        assert link.columns == expected  # every column the sharer may read, frozen
        assert response.json()["columns"] == expected
        assert link.expires_at - timezone.now() > timedelta(days=6, hours=23)
        assert link.expires_at - timezone.now() <= timedelta(days=7)
        event = AccessEvent.objects.get(action=AuditAction.GRANT)
        assert event.detail["share_link"] == link.pk
    else:
        assert not ShareLink.objects.exists()
    if status == 403:
        assert "share" in response.json()["detail"]


def test_the_data_tab_offers_share_only_to_those_who_may(client, orders):
    client.force_login(sharer("grant", orders))
    assert f'href="{SHARE_PAGE}' not in client.get(DATA_PAGE).content.decode()
    assert client.get(SHARE_PAGE).status_code == 403
    client.force_login(sharer("shareable_grant", orders))
    html = client.get(DATA_PAGE).content.decode()
    assert f'href="{SHARE_PAGE}?port=orders">Share</a>' in html


def test_an_invisible_or_unknown_product_is_a_400_naming_product(api_client, outsider):
    api_client.force_authenticate(outsider)
    response = api_client.post(API, {"product": "sales.nope"}, format="json")
    assert response.status_code == 400
    assert "sales.nope" in response.json()["product"][0]


# --- the token ---------------------------------------------------------------------------


def test_token_has_256_bits_is_shown_once_and_only_its_hash_is_stored(
    api_client,
    orders,
    owner,
):
    api_client.force_authenticate(owner)
    body = api_client.post(API, {"product": "sales.orders"}, format="json").json()
    token = body["token"]
    assert len(base64.urlsafe_b64decode(token + "=")) == 32  # 256 bits
    assert body["url"] == f"http://testserver/s/{token}/"
    link = ShareLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(link.token_hint) and len(link.token_hint) < 10

    # The token is nowhere in the database: not in the link's row, nor the audit.
    api_client.get(f"/s/{token}/")
    with connection.cursor() as cursor:
        for table in (ShareLink._meta.db_table, AccessEvent._meta.db_table):
            cursor.execute(f"SELECT t::text FROM {table} AS t")  # noqa: S608 - our tables
            rows = [row[0] for row in cursor.fetchall()]
            assert rows and not any(token in row for row in rows)
    # Nor shown again: not by the API's list and detail, nor by "My share links".
    for url in (API, f"{API}{link.pk}/"):
        response = api_client.get(url)
        assert response.status_code == 200
        assert token not in response.content.decode()
        assert "token" not in (response.json()["results"][0] if url == API else response.json())
    api_client.force_login(owner)
    assert token not in api_client.get("/my/share-links/").content.decode()

    # Each link has its own token.
    second = api_client.post(API, {"product": "sales.orders"}, format="json").json()["token"]
    assert second != token


# --- one 404 for every unusable token ----------------------------------------------------


def test_unknown_expired_revoked_and_used_up_tokens_get_the_same_404(
    client,
    orders,
    owner,
):
    expired, expired_token = create(owner, orders)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    revoked, revoked_token = create(owner, orders)
    ShareLink.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    used, used_token = create(owner, orders, max_downloads=1)
    assert download(client, used_token)[0].status_code == 200
    good, good_token = create(owner, orders)

    bodies = set()
    for token in (
        "A" * 43,  # well-formed, unknown
        "not-a-token",  # malformed
        expired_token,
        revoked_token,
        used_token,
    ):
        for path in (f"/s/{token}/", f"/s/{token}/download"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response["Referrer-Policy"] == "no-referrer"
            assert response["Cache-Control"] == "no-store"
            assert "noindex" in response["X-Robots-Tag"]
            bodies.add(response.content)
    assert len(bodies) == 1
    page = bodies.pop().decode()
    assert "This link is not available" in page
    assert orders.name not in page

    # A usable link's pages carry the same headers.
    response = client.get(f"/s/{good_token}/")
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    assert '<meta name="robots" content="noindex, nofollow">' in response.content.decode()
    response, _ = download(client, good_token)
    assert (response.status_code, response["Cache-Control"]) == (200, "no-store")
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_landing_page_shows_the_name_note_format_and_expiry_only(
    client,
    orders,
    owner,
):
    orders.summary, orders.description = "Secret summary", "Internal description"
    orders.save()
    _, token = create(owner, orders, note="For the <b>audit</b> team.\nSee row 3.", max_downloads=5)
    response = client.get(f"/s/{token}/")  # anonymous: no sign-in
    html = response.content.decode()
    assert response.status_code == 200
    assert '<h1 id="share-heading">Orders</h1>' in html
    assert "For the &lt;b&gt;audit&lt;/b&gt; team.<br>See row 3." in html
    assert "<dd>CSV</dd>" in html
    assert "<dt>Downloads left</dt><dd>5</dd>" in html
    assert 'href="download"' in html
    for hidden in ("Secret summary", "Internal description", "sales.orders", "owner", "Sales"):
        assert hidden not in html
    # Looking is not a use.
    assert ShareLink.objects.get().download_count == 0
    assert not AccessEvent.objects.filter(action=AuditAction.READ).exists()


# --- scope within the creator's access ---------------------------------------------------


def test_a_narrow_grantees_link_stays_within_their_columns_and_rows(client, orders):
    user = sharer("narrow_shareable_grant", orders)
    # The grant: order_id, country, email (named: unmasked), country = BE (orders 1, 3).
    link, token = create(
        user,
        orders,
        columns=["order_id", "email"],
        row_filter=[{"column": "order_id", "op": ">", "value": 1}],
    )
    response, body = download(client, token, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    assert csv_rows(body) == [{"order_id": "3", "email": ""}]
    event = AccessEvent.objects.get(action=AuditAction.READ)
    assert event.channel == "share_link"
    assert event.client_address == "203.0.113.9"
    assert event.user == user  # read with the creator's access, on their behalf
    assert event.detail["share_link"] == link.pk
    assert event.rows == 1
    assert event.row_filter == [*NARROW_FILTER, {"column": "order_id", "op": ">", "value": 1}]
    link.refresh_from_db()
    assert link.download_count == 1 and link.last_used_at is not None


def test_a_link_serves_masked_what_the_creator_reads_masked(client, orders):
    _, token = create(sharer("shareable_grant", orders), orders)
    rows = csv_rows(download(client, token)[1])
    assert [row["email"] for row in rows] == ["****", "****", "", "****"]
    assert [row["iban"] for row in rows] == ["****", "", "****", "****"]


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"columns": ["order_id", "iban"]}, "columns", "Outside your access"),
        ({"columns": ["nope"]}, "columns", "Unknown column"),
        ({"row_filter": [{"column": "amount", "op": ">", "value": 1}]}, "row_filter", "outside"),
        ({"row_filter": [{"column": "nope", "op": "=", "value": 1}]}, "row_filter", "unknown"),
        ({"row_filter": [{"column": "country", "op": "~", "value": 1}]}, "row_filter", "operator"),
        ({"format": "json"}, "format", "csv, parquet, xlsx, jsonl"),
        ({"expires_in_days": 91}, "expires_in_days", "At most 90 days"),
        ({"expires_in_days": 0}, "expires_in_days", "At least 1 day"),
        ({"expires_at": "PAST"}, "expires_at", "in the past"),
        ({"expires_at": "FAR"}, "expires_at", "At most 90 days"),
        ({"max_downloads": 0}, "max_downloads", "At least 1"),
        ({"note": "x" * 1001}, "note", "At most 1000 characters"),
        ({"port": "nope"}, "port", "no output port"),
        ({"export_run": 999}, "export_run", "no such export run"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    api_client,
    orders,
    body,
    field,
    message,
):
    api_client.force_authenticate(sharer("narrow_shareable_grant", orders))
    now = timezone.now()
    if body.get("expires_at") == "PAST":
        body["expires_at"] = (now - timedelta(minutes=5)).isoformat()
    elif body.get("expires_at") == "FAR":
        body["expires_at"] = (now + timedelta(days=91)).isoformat()
    response = api_client.post(API, {"product": "sales.orders", **body}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert message.lower() in " ".join(errors[field]).lower(), errors
    assert not ShareLink.objects.exists()
    assert not AccessEvent.objects.exists()


def test_an_expiry_date_within_90_days_is_kept(api_client, orders, owner):
    api_client.force_authenticate(owner)
    when = (timezone.now() + timedelta(days=90)).replace(microsecond=0)
    response = api_client.post(
        API,
        {"product": "sales.orders", "expires_at": when.isoformat(), "max_downloads": 3},
        format="json",
    )
    assert response.status_code == 201, response.content
    link = ShareLink.objects.get()
    assert (link.expires_at, link.max_downloads) == (when, 3)


# --- the creator losing access ----------------------------------------------------------


def test_links_stop_when_the_grant_is_revoked_expires_or_is_no_longer_shareable(
    client,
    orders,
):
    user = sharer("shareable_grant", orders)
    _, token = create(user, orders)
    assert client.get(f"/s/{token}/").status_code == 200
    the_grant = AccessGrant.objects.get(user=user)

    for change, undo in (
        ({"shareable": False}, {"shareable": True}),
        ({"revoked_at": timezone.now()}, {"revoked_at": None}),
        (
            {"expires_at": timezone.now() - timedelta(minutes=1)},
            {"expires_at": the_grant.expires_at},
        ),
    ):
        AccessGrant.objects.filter(pk=the_grant.pk).update(**change)
        assert client.get(f"/s/{token}/").status_code == 404, change
        assert download(client, token)[0].status_code == 404, change
        AccessGrant.objects.filter(pk=the_grant.pk).update(**undo)
        assert client.get(f"/s/{token}/").status_code == 200
    assert ShareLink.objects.get().download_count == 0
    assert not AccessEvent.objects.filter(action=AuditAction.READ).exists()


def test_links_stop_when_the_owner_leaves_the_domain_or_is_disabled(client, orders, owner):
    _, token = create(owner, orders)
    assert download(client, token)[0].status_code == 200
    membership = DomainMembership.objects.get(user=owner)
    membership.role = MembershipRole.MEMBER  # still reads, may no longer share
    membership.save()
    assert client.get(f"/s/{token}/").status_code == 404
    membership.role = MembershipRole.OWNER
    membership.save()
    owner.is_active = False
    owner.save()
    assert client.get(f"/s/{token}/").status_code == 404


def test_a_link_stops_when_the_creators_grant_narrows_below_it(client, orders):
    user = sharer("shareable_grant", orders)
    _, token = create(user, orders, columns=["order_id", "amount"])
    AccessGrant.objects.filter(user=user).update(columns=NARROW_COLUMNS)
    assert client.get(f"/s/{token}/").status_code == 404
    AccessGrant.objects.filter(user=user).update(columns=[*NARROW_COLUMNS, "amount"])
    assert download(client, token)[0].status_code == 200


# --- use, limits, revocation ------------------------------------------------------------


def test_the_download_limit_counts_each_use(client, orders, owner):
    link, token = create(owner, orders, max_downloads=2)
    assert [download(client, token)[0].status_code for _ in range(3)] == [200, 200, 404]
    link.refresh_from_db()
    assert link.download_count == 2
    assert share_link_resolve(token) is None
    assert not share_link_consume(link=link)
    assert AccessEvent.objects.filter(action=AuditAction.READ, channel="share_link").count() == 2


def test_revoke_through_the_api(api_client, orders, owner):
    user = sharer("shareable_grant", orders)
    link, token = create(user, orders)
    api_client.force_authenticate(sharer("outsider", orders))
    assert api_client.delete(f"{API}{link.pk}/").status_code == 404  # not theirs
    api_client.force_authenticate(user)
    assert api_client.delete(f"{API}{link.pk}/").status_code == 204
    response = api_client.post(f"{API}{link.pk}/revoke/", {}, format="json")
    assert response.status_code == 400
    assert "already revoked" in response.json()["detail"][0]
    assert api_client.get(f"{API}{link.pk}/").json()["status"] == "revoked"
    assert api_client.get(f"/s/{token}/").status_code == 404
    # The product's owner revokes a grantee's link too.
    other, _ = create(user, orders)
    api_client.force_authenticate(owner)
    response = api_client.post(f"{API}{other.pk}/revoke/", {"reason": "Leak"}, format="json")
    assert response.status_code == 200
    assert (response.json()["revoked_by"], response.json()["revoke_reason"]) == ("owner", "Leak")
    assert AccessEvent.objects.filter(action=AuditAction.REVOKE).count() == 2


def test_api_list_shows_mine_with_their_use_in_constant_queries(
    api_client,
    orders,
    owner,
    django_assert_max_num_queries,
):
    for limit in (None, 2, 3):
        create(owner, orders, max_downloads=limit)
    create(sharer("admin", orders), orders)  # someone else's
    api_client.force_authenticate(owner)
    with django_assert_max_num_queries(4):
        body = api_client.get(API).json()
    assert body["count"] == 3
    assert [row["max_downloads"] for row in body["results"]] == [3, 2, None]
    assert {row["status"] for row in body["results"]} == {"active"}
    assert body["results"][0]["product"] == "sales.orders"


# --- every format, read back ------------------------------------------------------------


def _read(fmt: str, body: bytes) -> list[dict]:
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(body)).to_dict("records")
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in body.decode().splitlines()]
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize(
    "fmt, content_type",
    [
        ("csv", "text/csv; charset=utf-8"),
        ("parquet", "application/vnd.apache.parquet"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("jsonl", "application/x-ndjson"),
    ],
)
def test_each_format_is_readable_back(client, orders, owner, fmt, content_type):
    _, token = create(
        owner,
        orders,
        format=fmt,
        columns=["order_id", "country", "amount"],
        row_filter=[{"column": "country", "op": "in", "value": ["BE", "FR"]}],
    )
    response, body = download(client, token)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="sales.orders.{fmt}"'
    rows = _read(fmt, body)
    assert [(int(r["order_id"]), r["country"], float(r["amount"])) for r in rows] == [
        (1, "BE", 10.0),
        (3, "BE", 30.0),
        (4, "FR", 40.0),
    ]
    assert AccessEvent.objects.get(action=AuditAction.READ).detail["format"] == fmt


# --- export-run files --------------------------------------------------------------------


@pytest.fixture
def export_run(orders, owner):
    schedule = ExportSchedule.objects.create(
        product=orders, name="Nightly", created_by=owner, cron="0 2 * * *", format="parquet"
    )
    data = b"PAR1 pretend parquet bytes " * 100
    name = default_storage.save("exports/sales.orders/run-1.parquet", ContentFile(data))
    return ExportRun.objects.create(
        schedule=schedule,
        status=ExportStatus.SUCCEEDED,
        file_name=name,
        rows=4,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        finished_at=timezone.now(),
    )


def test_an_export_run_link_serves_the_stored_file(client, orders, owner, export_run):
    link, token = create(owner, orders, format=None, export_run=export_run.pk, max_downloads=1)
    assert (link.format, link.port, link.columns) == ("parquet", None, [])
    html = client.get(f"/s/{token}/").content.decode()
    assert "<dt>Rows</dt><dd>4</dd>" in html
    assert export_run.sha256 in html
    assert "2.6\xa0KB" in html  # 2,700 bytes
    response, body = download(client, token, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200
    assert body == default_storage.open(export_run.file_name).read()
    assert response["Content-Length"] == str(export_run.bytes)
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    event = AccessEvent.objects.get(action=AuditAction.READ)
    assert (event.channel, event.client_address, event.rows, event.bytes) == (
        "share_link",
        "198.51.100.7",
        4,
        export_run.bytes,
    )
    assert event.detail == {
        "share_link": link.pk,
        "export_run": export_run.pk,
        "export_schedule": export_run.schedule_id,
        "file": "run-1.parquet",
        "sha256": export_run.sha256,
        "format": "parquet",
        "basis": "export_file",
    }
    assert download(client, token)[0].status_code == 404  # its one download is used


def test_export_run_links_need_a_file_and_full_access(
    api_client,
    orders,
    owner,
    export_run,
):
    grantee = sharer("shareable_grant", orders)
    api_client.force_authenticate(grantee)  # masked columns: may not share the raw file
    response = api_client.post(
        API, {"product": "sales.orders", "export_run": export_run.pk}, format="json"
    )
    assert response.status_code == 403
    api_client.force_authenticate(owner)
    body = {"product": "sales.orders", "export_run": export_run.pk, "columns": ["order_id"]}
    assert "columns" in api_client.post(API, body, format="json").json()
    link, token = create(owner, orders, format=None, export_run=export_run)
    default_storage.delete(export_run.file_name)  # pruned by retention
    assert api_client.get(f"/s/{token}/").status_code == 404
    ExportRun.objects.filter(pk=export_run.pk).update(status=ExportStatus.FAILED)
    response = api_client.post(
        API, {"product": "sales.orders", "export_run": export_run.pk}, format="json"
    )
    assert "no file to share" in response.json()["export_run"][0]


# --- pages -------------------------------------------------------------------------------


def test_the_share_form_creates_a_link_and_shows_its_url_once(client, orders):
    client.force_login(sharer("narrow_shareable_grant", orders))
    html = client.get(SHARE_PAGE, {"port": "orders"}).content.decode()
    for name in NARROW_COLUMNS:
        assert f'value="{name}"' in html
    assert 'value="iban"' not in html  # outside the grant: not offered
    assert "only rows where <strong>country is BE</strong>" in html
    assert 'value="7"' in html  # the default expiry

    response = client.post(
        SHARE_PAGE,
        {
            "port": "orders",
            "columns": ["order_id", "country"],
            "row_filter": "",
            "format": "xlsx",
            "expires_in_days": "91",
            "note": "",
        },
    )
    assert response.status_code == 400
    assert "At most 90 days." in response.content.decode()
    assert not ShareLink.objects.exists()

    response = client.post(
        SHARE_PAGE,
        {
            "port": "orders",
            "columns": ["order_id", "country"],
            "format": "xlsx",
            "expires_in_days": "3",
            "max_downloads": "2",
            "note": "Q3 figures",
        },
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    url = response.context["share_url"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    html = response.content.decode()
    assert f'value="{url}"' in html
    assert 'data-copy-target="share-url"' in html
    assert '<script src="/static/js/share_links.js" defer></script>' in html
    link = share_link_resolve(token)
    assert (link.columns, link.format, link.max_downloads, link.note) == (
        ["order_id", "country"],
        "xlsx",
        2,
        "Q3 figures",
    )
    # The list shows the link, never its URL.
    html = client.get("/my/share-links/").content.decode()
    assert token not in html
    assert f'<code title="The first characters of the link\'s token">{link.token_hint}…' in html


def test_my_share_links_lists_use_and_status_in_constant_queries(
    client,
    orders,
    owner,
    django_assert_max_num_queries,
):
    client.force_login(owner)
    assert "You have not shared any data yet." in client.get("/my/share-links/").content.decode()
    used, token = create(owner, orders, max_downloads=1, row_filter=NARROW_FILTER)
    download(client, token)
    revoked, _ = create(owner, orders)
    ShareLink.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    for _ in range(5):
        create(owner, orders, max_downloads=10)
    with django_assert_max_num_queries(6):
        response = client.get("/my/share-links/")
    html = response.content.decode()
    assert html.count('class="badge badge-share-active"') == 5
    assert '<span class="badge badge-share-used_up">used up</span>' in html
    assert '<span class="badge badge-share-revoked">revoked</span>' in html
    assert "<td>1 / 1</td>" in html
    assert "rows where country is BE" in html
    assert html.count(">Revoke</button>") == 6  # not the revoked one

    response = client.post(f"/my/share-links/{used.pk}/revoke/", follow=True)
    assert "is dead" in response.content.decode()
    assert ShareLink.objects.get(pk=used.pk).revoked_by == owner


def test_the_user_menu_links_to_my_share_links(client, outsider):
    client.force_login(outsider)
    assert '<a href="/my/share-links/">My share links</a>' in client.get("/").content.decode()


def test_a_head_request_is_not_a_download(client, orders, owner):
    link, token = create(owner, orders, max_downloads=1)
    assert client.head(f"/s/{token}/download").status_code == 405
    assert client.head(f"/s/{token}/").status_code == 200
    link.refresh_from_db()
    assert link.download_count == 0


def test_a_source_that_cannot_be_read_gives_the_use_back(client, orders, owner, media_root):
    link, token = create(owner, orders, max_downloads=1)
    (media_root / "matrix" / "orders.parquet").unlink()
    response, body = download(client, token)
    # The port's file is gone: not there (404), not a server error; same page either way.
    assert response.status_code == 404
    assert b"could not be read just now" in body
    assert b"orders.parquet" not in body  # no detail of the source for a stranger
    assert response["Cache-Control"] == "no-store"
    link.refresh_from_db()
    assert link.download_count == 0
    assert share_link_resolve(token) is not None


def test_the_share_form_shares_an_export_file(client, orders, owner, export_run):
    client.force_login(owner)
    html = client.get(SHARE_PAGE, {"export_run": export_run.pk}).content.decode()
    assert "Share this export file" in html
    assert 'name="columns"' not in html and 'name="format"' not in html
    response = client.post(
        SHARE_PAGE, {"export_run": export_run.pk, "expires_in_days": "2", "note": "Nightly"}
    )
    assert response.status_code == 201
    link = ShareLink.objects.get()
    assert (link.export_run, link.format, link.note) == (export_run, "parquet", "Nightly")
    assert client.get(SHARE_PAGE, {"export_run": 999}).status_code == 404


def test_the_share_form_offers_the_filter_builder_and_keeps_a_bad_filter(client, orders):
    client.force_login(sharer("narrow_shareable_grant", orders))
    html = client.get(SHARE_PAGE, {"port": "orders"}).content.decode()
    assert '<script src="/static/js/filter_builder.js" defer></script>' in html
    config = html.split('data-filter-builder="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    offered = [column["name"] for column in json.loads(config)["columns"]]
    assert offered == NARROW_COLUMNS  # within the grant: not iban
    bad_filter = json.dumps([{"column": "order_id", "op": "in", "value": []}])
    response = client.post(
        SHARE_PAGE,
        {
            "port": "orders",
            "columns": ["order_id"],
            "row_filter": bad_filter,
            "format": "csv",
            "expires_in_days": "3",
            "note": "For Ann",
        },
    )
    assert response.status_code == 400 and not ShareLink.objects.exists()
    html = response.content.decode()
    field = html[html.index('id="id_row_filter"') :]
    field = field[: field.index("</div>")]
    assert "Condition 1 (order_id is one of) takes a list of 1 to 1000 values." in field
    assert "[]" in field  # as entered
    assert 'name="columns" value="country" id="id_columns_1">' in html  # still unticked
    assert "For Ann</textarea>" in html

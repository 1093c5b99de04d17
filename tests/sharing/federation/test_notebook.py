"""`portal.sql(...)` in the notebook client, against a real running portal."""

from __future__ import annotations

import pandas as pd
import pytest
from knox.models import AuthToken

from portal_client import Portal, PortalLimitClamped, PortalPermissionError, PortalRequestError
from sharing.models import FederatedQuery

live = pytest.mark.django_db(transaction=True)


def _portal(live_server, user) -> Portal:
    return Portal(url=live_server.url, token=AuthToken.objects.create(user)[1])


@live
def test_sql_returns_a_dataframe_across_sources(live_server, crm, orders, narrowed):
    frame = _portal(live_server, narrowed).sql(
        "SELECT o.order_id, o.email, c.customer_id FROM sales.orders o "
        "JOIN crm.customers c ON c.country = o.country ORDER BY 1, 3"
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["order_id", "email", "customer_id"]
    assert frame["order_id"].tolist() == [1, 1, 3, 3]
    assert set(frame["email"].dropna()) == {"****"}
    assert FederatedQuery.objects.get().channel == "notebook"


@live
def test_sql_refusals_and_truncation(live_server, crm, narrowed, admin):
    portal = _portal(live_server, narrowed)
    with pytest.raises(PortalPermissionError, match="crm.visits"):
        portal.sql("SELECT * FROM crm.visits")
    with pytest.raises(PortalRequestError, match="line 1"):
        portal.sql("SELEC 1")
    with pytest.warns(PortalLimitClamped):
        frame = _portal(live_server, admin).sql("SELECT * FROM crm.visits", limit=2)
    assert len(frame) == 2
    plan = portal.sql_explain("SELECT customer_id FROM crm.customers")
    assert plan["engine"] == "postgresql"

"""Plain helpers of the trust tests: customers in a Parquet file (two without an email),
a check run executed as the check_run task does, the charts of a page."""

import json
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq

from products.trust.services.checks import check_run_execute
from products.trust.services.checks import check_run_request as _request
from products.trust.services.evidence import trust_after_check_run
from tests.factories import FilePortFactory, ProductFactory

# 10 customers, 2 without an email.
DIRTY = [None if i in (3, 7) else f"c{i}@x.com" for i in range(10)]
CLEAN = [f"c{i}@x.com" for i in range(10)]


def write_emails(media_root, name: str, emails: list[str | None]) -> None:
    path = media_root / "trust" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "customer_id": pa.array(range(len(emails)), pa.int64()),
            "email": pa.array(emails, pa.string()),
        }
    )
    pq.write_table(table, path)


def orders_parquet(media_root, name: str, emails: list[str | None]) -> str:
    """A Parquet file of orders (order_id 1..n, email) under the media root; its path as a
    file port names it."""
    path = media_root / "trust-orders" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array(list(range(1, len(emails) + 1)), pa.int64()),
                "email": pa.array(emails, pa.string()),
            }
        ),
        path,
    )
    return f"trust-orders/{name}"


def customers_port(media_root, domain, emails=DIRTY, name=None, **product):
    name = name or f"customers-{time.monotonic_ns()}.parquet"
    if emails is not None:
        write_emails(media_root, name, emails)
    product = ProductFactory(domain=domain, name=product.pop("product_name", "Customers"))
    return FilePortFactory(product=product, name="customers", file_path=f"trust/{name}")


def run_checks(port, by):
    """Request a run, execute it, and apply the trust hook, as the check_run task does."""
    run = check_run_execute(run_id=_request(port=port, by=by).pk)
    trust_after_check_run(run=run)
    return run


def figures(content: str) -> dict[str, dict]:
    """Each chart of the page (its container's figure: data, layout, config), by the
    heading of the card it is in."""
    charts = {}
    pattern = re.compile(
        r'<h3 class="card-title">([^<]+)</h3>\s*<div class="plotly-graph-div plotly-chart" '
        r'data-plotly-figure="([^"]+)"></div><script id="\2" type="application/json">(.*?)'
        r"</script>",
        re.S,
    )
    for title, _, payload in pattern.findall(content):
        charts[title] = json.loads(payload)
    return charts

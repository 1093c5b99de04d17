"""The mixed workload of bench/load.py: signed-in people searching the catalog, opening
product pages, listing products through the API, previewing data and posting feedback.

Each simulated person holds the session of one of the bench's readers (made by
bench/load.py as the login form would), members of the demo's Sales domain (so previews
serve rows); unsafe requests carry the CSRF cookie and header, as a browser's would. After
every page, the browser's own follow-up request: the notification badge, which htmx loads
on every page.

Between two actions each person waits LOAD_THINK_SECONDS ("low,high", uniformly at
random): the time a person spends reading what a page shows."""

from __future__ import annotations

import os
import random
import re
import secrets

from locust import HttpUser, between, task

SESSIONS_FILE = os.environ.get("LOAD_SESSIONS_FILE", "")
SESSIONS = open(SESSIONS_FILE).read().split() if SESSIONS_FILE else []
TERMS = ["orders", "customer", "revenue", "campaign", "inventory", "supplier", "daily", "risk"]
# Demo products the readers may preview (members of Sales), and any product to view.
PREVIEW = [("sales", "orders"), ("sales", "customers"), ("sales", "daily-revenue")]
BASELINE_PATH = os.environ.get("LOAD_BASELINE_PATH", "/healthz")
THINK_LOW, THINK_HIGH = (float(s) for s in os.environ.get("LOAD_THINK_SECONDS", "5,15").split(","))


def _product_pages() -> list[str]:
    path = os.environ.get("LOAD_PRODUCT_PAGES_FILE", "")
    if path and os.path.exists(path):
        with open(path) as handle:
            return [line.strip() for line in handle if line.strip()]
    return [f"/products/{d}/{p}/" for d, p in PREVIEW]


PRODUCT_PAGES = _product_pages()


class PortalUser(HttpUser):
    wait_time = between(THINK_LOW, THINK_HIGH)

    def on_start(self):
        self.client.cookies.set("sessionid", random.choice(SESSIONS))
        self.client.cookies.set("csrftoken", secrets.token_hex(16))

    def _csrf(self) -> dict:
        return {
            "X-CSRFToken": self.client.cookies.get("csrftoken", ""),
            "Referer": self.host + "/",
        }

    def _page(self, path: str, name: str) -> None:
        self.client.get(path, name=name)
        self.client.get("/notifications/badge/", name="notification badge (htmx, every page)")

    @task(5)
    def search(self):
        self._page(f"/search/?q={random.choice(TERMS)}", "search page")

    @task(4)
    def product_page(self):
        self._page(random.choice(PRODUCT_PAGES), "product page")

    @task(3)
    def api_list(self):
        self.client.get(f"/api/v1/products/?q={random.choice(TERMS)}", name="API product list")

    @task(2)
    def preview(self):
        domain, product = random.choice(PREVIEW)
        self._page(f"/products/{domain}/{product}/data/", "data preview")

    @task(1)
    def feedback(self):
        domain, product = random.choice(PREVIEW)
        with self.client.post(
            f"/api/v1/products/{domain}.{product}/feedback/",
            json={
                "kind": "question",
                "title": f"Load question {random.randrange(10**6)}",
                "body": "Is this figure **net** of returns?",
            },
            headers=self._csrf(),
            name="feedback post",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                body = re.sub(r"\s+", " ", response.text[:200])
                response.failure(f"{response.status_code}: {body}")


class BaselineUser(HttpUser):
    """The same number of people asking the cheapest request there is (no database, no
    template): what the machine, gunicorn and the load tool cost on their own."""

    wait_time = between(THINK_LOW, THINK_HIGH)

    @task
    def baseline(self):
        self.client.get(BASELINE_PATH, name="baseline")

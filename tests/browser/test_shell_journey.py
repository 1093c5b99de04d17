"""The shell of every page in a real browser (issue 15: phones, navigation, consistency
and accessibility):

- axe-core on every page of the URL walk, for a reader, an owner and an admin: no
  serious or critical violation;
- at 390 px no page is wider than the screen (tables and tabs scroll in their own box);
- a phone journey: the menu button opens the navigation, results come before filters,
  the bell and the user menu stay on screen;
- at 1280 and 1440 px the navigation holds on one line;
- an unknown address shows the portal's 404 page.

Screenshots go to var/screenshots/ (SCREENSHOT_DIR)."""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from products.choices import MembershipRole
from products.feedback.services.announcements import announcement_create
from products.trust.services.checks import check_create, check_run_execute, check_run_request
from products.trust.services.incidents import incident_open
from sharing.models import AccessGrant
from tests.factories import MembershipFactory, UserFactory, parquet_product
from tests.urlwalk import page_routes

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "amount": [12.5, 80.0, 3.25, 41.0],
    "email": ["a@x", None, None, "d@x"],
}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
BLOCKING = ("serious", "critical")


@pytest.fixture
def world(domain, owner, media_root):
    """sales.orders (a Parquet port) with a failing check and its open incident, an
    announcement, a reader with a grant of some columns, and an admin."""
    owner.first_name, owner.last_name = "Olivia", "Owner"
    owner.save()
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="shell/orders.parquet",
        owners=[owner],
        access_auto_approve=False,
    )
    port = product.ports.get()
    check_create(port=port, by=owner, name="email", kind="not_null", column="email")
    check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    incident_open(
        product=product,
        port=port,
        cause="check",
        cause_key=f"shell:{port.pk}",
        title="Emails missing in 2 of 4 orders",
    )
    announcement_create(
        product=product, by=owner, kind="maintenance", title="Reload on Sunday night"
    )
    reader = UserFactory(username="reader", first_name="Rita", last_name="Reader")
    AccessGrant.objects.create(
        product=product,
        user=reader,
        columns=["order_id", "country", "amount"],
        expires_at=timezone.now() + timedelta(days=30),
        reason="Quarterly report",
    )
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    MembershipFactory(
        domain=domain, user=UserFactory(username="member"), role=MembershipRole.MEMBER
    )
    return product


def signed_in_context(browser, live_server, username: str, viewport: dict):
    """A browser context signed in as `username` (a session made by Django's test client:
    the sign-in form has its own tests)."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    context = browser.new_context(viewport=viewport, base_url=live_server.url)
    context.set_default_timeout(15_000)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context


def walk_values(product) -> dict[str, str]:
    return {
        "domain_slug": product.domain.slug,
        "product_slug": product.slug,
        "port_slug": product.ports.get().slug,
        "slug": product.domain.slug,
    }


def open_page(page, path: str) -> bool:
    """Open `path` when it is an HTML page that answers 200 (downloads and HTMX fragments
    share routes with pages: asked first, without the browser); True when opened."""
    answer = page.request.get(path)
    if answer.status != 200 or "text/html" not in (answer.headers.get("content-type") or ""):
        return False
    if "<html" not in answer.text()[:500].lower():
        return False
    page.goto(path)
    page.wait_for_load_state("load")
    return True


def page_overflow(page) -> int:
    """How many pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


# The outermost elements that reach past the right edge of the screen, to name in a
# failure (an element inside a box that scrolls on its own does not count).
WIDE_ELEMENTS = """
() => {
  const name = (el) => el.tagName.toLowerCase() + (
    typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/ +/).join(".") : "");
  const scrolls = (el) =>
    ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (scrolls(p)) return true;
    }
    return false;
  };
  return [...document.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 &&
      (!clipped(el) || getComputedStyle(el).position === "absolute"))
    .slice(0, 4)
    .map((el) => name(el) + " (" + Math.round(el.getBoundingClientRect().right) + ")");
}
"""


def describe(violation: dict) -> str:
    nodes = "; ".join(
        " ".join(node.get("target", [""])[:1]) + " " + node.get("failureSummary", "")[:160]
        for node in violation["nodes"][:3]
    )
    return f"{violation['id']} ({violation['impact']}): {violation['help']} -> {nodes}"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["reader", "owner", "admin"])
def test_every_page_passes_axe_and_fits_a_phone(
    browser, live_server, world, username, screenshot_dir
):
    axe = Axe()
    routes = page_routes(walk_values(world))
    paths = ["/", "/search/?q=orders", *[path for _, path in routes]]
    paths = list(dict.fromkeys(paths))

    desktop = signed_in_context(browser, live_server, username, DESKTOP)
    phone = signed_in_context(browser, live_server, username, PHONE)
    problems: list[str] = []
    opened: list[str] = []
    try:
        wide, narrow = desktop.new_page(), phone.new_page()
        for path in paths:
            if not open_page(wide, path):
                continue
            opened.append(path)
            results = axe.run(wide)
            for violation in results.response["violations"]:
                if violation["impact"] in BLOCKING:
                    problems.append(f"{path} at 1280 px: {describe(violation)}")
            assert open_page(narrow, path), path
            overflow = page_overflow(narrow)
            if overflow > 0:
                culprits = narrow.evaluate(WIDE_ELEMENTS)
                problems.append(
                    f"{path} at 390 px: {overflow} px wider than the screen: {culprits}"
                )
                narrow.screenshot(path=str(screenshot_dir / f"too-wide-{username}.png"))
            if path in ("/", world.get_absolute_url()):
                results = axe.run(narrow)  # the phone layout of the shell, menu folded
                problems.extend(
                    f"{path} at 390 px: {describe(v)}"
                    for v in results.response["violations"]
                    if v["impact"] in BLOCKING
                )
    finally:
        desktop.close()
        phone.close()
    assert len(opened) >= 10, opened
    assert world.get_absolute_url() in opened
    (screenshot_dir / f"axe-{username}.txt").write_text("\n".join(problems))
    assert problems == [], "\n".join(problems)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_phone_journey_through_the_menu(browser, live_server, world, screenshot_dir):
    context = signed_in_context(browser, live_server, "reader", PHONE)
    page = context.new_page()
    try:
        page.goto("/")
        toggle = page.get_by_role("button", name="Menu")
        nav = page.get_by_role("navigation", name="Main")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(nav).to_be_hidden()
        for selector in (".notif-bell", ".user-menu summary"):  # on screen, not pushed off
            box = page.locator(selector).bounding_box()
            assert box and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], selector
        page.screenshot(path=str(screenshot_dir / "phone-catalog.png"), full_page=True)

        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(nav).to_be_visible()
        expect(page.get_by_role("searchbox", name="Search data products").first).to_be_visible()
        page.screenshot(path=str(screenshot_dir / "phone-menu-open.png"))
        page.keyboard.press("Escape")
        expect(nav).to_be_hidden()
        expect(toggle).to_be_focused()

        toggle.click()
        nav.get_by_role("link", name="Domains").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Domains")
        expect(nav).to_be_hidden()  # a new page starts with the menu folded

        # Search: the results come before the filters on a phone.
        page.goto("/search/?q=orders")
        results = page.locator(".results").bounding_box()
        filters = page.locator(".facets").bounding_box()
        assert results["y"] < filters["y"], (results, filters)
        page.screenshot(path=str(screenshot_dir / "phone-search.png"), full_page=True)

        # A product: its tabs scroll inside their own box, the page does not.
        page.goto(world.get_absolute_url())
        tabs = page.locator("nav.tabs")
        assert tabs.evaluate("el => el.scrollWidth > el.clientWidth"), "tabs fit: no test"
        assert page_overflow(page) <= 0
        expect(page.locator("[data-product-notices]")).to_contain_text("Incident open")
        expect(page.locator(".product-notices-more summary")).to_contain_text("1 more notice")
        page.screenshot(path=str(screenshot_dir / "phone-product.png"), full_page=True)
        page.goto(world.get_absolute_url() + "data/")
        assert page_overflow(page) <= 0
        current = page.locator('nav.tabs [aria-current="page"]')
        expect(current).to_have_text("Data")
        expect(current).to_be_in_viewport(ratio=0.9)  # the tabs scrolled to the current one
        page.screenshot(path=str(screenshot_dir / "phone-data.png"), full_page=True)

        # The smallest phones in use (360 px): the main pages still fit.
        page.set_viewport_size({"width": 360, "height": 780})
        for path in ("/", "/search/?q=orders", world.get_absolute_url(), "/my/access/"):
            page.goto(path)
            assert page_overflow(page) <= 0, path
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 1440])
def test_the_navigation_holds_on_one_line(browser, live_server, world, width, screenshot_dir):
    context = signed_in_context(browser, live_server, "admin", {"width": width, "height": 800})
    page = context.new_page()
    try:
        page.goto(world.get_absolute_url())
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        links = page.locator(".mainnav a")
        expect(links).to_have_count(9)  # the admin's: every link
        tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}
        assert len(tops) == 1, f"the navigation wraps at {width} px"
        bar = page.locator(".topbar").bounding_box()
        assert bar["height"] <= 64, bar
        for selector in (".nav-search input", ".notif-bell", ".user-menu summary"):
            box = page.locator(selector).bounding_box()
            assert box["y"] < bar["height"] and box["x"] + box["width"] <= width, selector
        page.screenshot(path=str(screenshot_dir / f"nav-admin-{width}.png"))
        # The focus ring shows on the dark header.
        page.locator(".mainnav a").first.focus()
        page.keyboard.press("Tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_unknown_address_shows_a_page_that_helps(browser, live_server, world, screenshot_dir):
    context = signed_in_context(browser, live_server, "reader", DESKTOP)
    page = context.new_page()
    try:
        response = page.goto("/no-such-page/")
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("We can’t find that page")
        page.get_by_role("searchbox", name="Search data products").last.fill("orders")
        page.get_by_role("button", name="Search").last.click()
        expect(page).to_have_url(f"{live_server.url}/search/?q=orders")
        page.go_back()
        page.screenshot(path=str(screenshot_dir / "not-found.png"))
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_api_docs_open_inside_the_portal(browser, live_server, world, screenshot_dir):
    context = signed_in_context(browser, live_server, "reader", DESKTOP)
    page = context.new_page()
    try:
        page.goto("/")
        page.locator(".user-menu summary").click()
        page.get_by_role("link", name="API docs").click()
        expect(page.locator(".swagger-ui .info")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / "api-docs.png"))
        page.get_by_role("navigation", name="Breadcrumb").get_by_role(
            "link", name="Catalog"
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Find data you can trust")
    finally:
        context.close()

"""Write the CSS plotly.js would inject, as static files (see portal.core.plotly_assets).

Run after upgrading plotly; needs Playwright and Debian's chromium (the dev extra).
"""

import os

from django.core.management.base import BaseCommand
from playwright.sync_api import sync_playwright

from portal.core.plotly_assets import collect_injected_styles, plotly_js_version, write_assets


class Command(BaseCommand):
    help = "Extract the styles plotly.js injects into static/vendor/plotly-csp/ (strict CSP)."

    def handle(self, *args, **options):
        chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            try:
                styles = collect_injected_styles(browser.new_page())
            finally:
                browser.close()
        for path in write_assets(styles):
            self.stdout.write(f"wrote {path}")
        self.stdout.write(
            f"plotly.js v{plotly_js_version()}: {len(styles['global'])} global rules, "
            f"{len(styles['injected'])} bundled stylesheet(s)."
        )

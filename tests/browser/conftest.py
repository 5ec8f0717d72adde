"""Browser tests: Playwright drives Debian's Chromium against a live server.

Each page visited is saved as a PNG under test-artifacts/screenshots/ for a person to
look at.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.factories import PASSWORD, make_user

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API runs an event loop in this thread from here on; the ORM calls
    # the tests make for their arrangements are still plain synchronous calls.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _staff_groups(staff_groups):
    pass


class Visit:
    """A browser tab on the live server that saves a screenshot of each step."""

    def __init__(self, page, base_url: str, test_name: str):
        self.page = page
        self.base_url = base_url
        self.prefix = re.sub(r"[^A-Za-z0-9]+", "-", test_name).strip("-")
        self.step = 0

    def go(self, path: str):
        self.page.goto(self.base_url + path)
        return self.page

    def snap(self, name: str) -> Path:
        self.step += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}-{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def log_in(self, username: str):
        self.go("/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.snap("login")
        self.page.get_by_role("button", name="Log in").click()


@pytest.fixture
def visit(browser, live_server, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Visit(page, live_server.url, request.node.name)
    context.close()


@pytest.fixture
def staff_user():
    return make_user("staff")

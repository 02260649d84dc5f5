"""A customer in a real browser: log in, build a pizza, order it, and watch it arrive without reloading.

The whole shop runs as real processes (status, assemble, bake, delivery, webapp) on the session's
Kafka broker, with the kitchen sped up. Chromium is Debian's (/usr/bin/chromium, `apt-get install
chromium`), driven by Playwright. The order page's screenshot is saved to artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Debian's Chromium where it is installed; elsewhere (e.g. GitHub's Ubuntu runners,
# where `playwright install chromium` provides one) Playwright's own build.
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
KITCHEN_TIME_SCALE = "0.05"
# Upper bounds for a slow machine, not expectations: at this scale an order takes a few seconds.
DELIVERED_WITHIN_MS = 90_000
STEP_TIMEOUT_MS = 20_000


@pytest.fixture
def shop(service_process, tmp_path):
    kitchen = {"KITCHEN_TIME_SCALE": KITCHEN_TIME_SCALE}
    status = service_process("pizza-status", env=kitchen)
    for name in ("pizza-assemble", "pizza-bake", "pizza-delivery"):
        service_process(name, env=kitchen)
    return service_process(
        "pizza-webapp",
        env={
            "STATUS_URL": status.api_url("").rstrip("/"),
            "SECRET_KEY": "browser-test-key",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "webapp-metrics"),
            "WEB_CONCURRENCY": "2",
        },
    )


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_order_a_pizza_and_watch_it_delivered(shop, browser):
    page = browser.new_page(viewport={"width": 1100, "height": 1300})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.set_default_timeout(STEP_TIMEOUT_MS)

    page.goto(shop.url("/"))
    expect(page).to_have_url(shop.url("/login"))
    page.get_by_label("Your name").fill("Browser Betty")
    page.get_by_role("button", name="Start my order").click()

    expect(page).to_have_url(shop.url("/menu"))
    expect(page.get_by_text("Hi, Browser Betty")).to_be_visible()
    page.get_by_label("Pesto").check()
    page.get_by_label("Provolone").check()
    page.get_by_label("Minced meat").check()
    page.get_by_label("Mushroom").check()
    page.get_by_label("Fresh garlic").check()
    page.get_by_role("button", name="Order this pizza").click()

    expect(page.get_by_role("heading", name="Thank you, Browser Betty! Your order is in.")).to_be_visible()
    summary = page.locator(".pizza-summary")
    expect(summary).to_contain_text("Pesto")
    expect(summary).to_contain_text("Mushroom, Fresh garlic")
    order_id = page.locator(".order-id").inner_text()
    page.get_by_role("link", name="Track your pizza").click()

    expect(page).to_have_url(shop.url(f"/orders/{order_id}"))
    # A marker that a reload or navigation would wipe out.
    page.evaluate("window.__stillTheSamePage = true")
    status = page.locator("#status-text")
    expect(status).to_have_text("Your pizza was delivered", timeout=DELIVERED_WITHIN_MS)
    assert page.evaluate("window.__stillTheSamePage") is True, "the page was reloaded"
    assert page.url == shop.url(f"/orders/{order_id}")

    timeline = page.locator("#timeline li")
    expect(timeline).to_have_count(4)
    expect(timeline.nth(0)).to_contain_text("Order received and being prepared")
    expect(timeline.nth(1)).to_contain_text("Your pizza is in the oven")
    expect(timeline.nth(2)).to_contain_text("Your pizza is out for delivery")
    expect(timeline.nth(3)).to_contain_text("Your pizza was delivered")
    expect(page.locator("#progress li.done")).to_have_count(4)
    expect(page.locator("#status-unavailable")).to_be_hidden()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "order-delivered.png"), full_page=True)

    page.get_by_role("link", name="My orders", exact=True).click()
    expect(page.locator(".order-row").filter(has_text="Minced meat on Pesto")).to_contain_text(
        "Your pizza was delivered"
    )
    assert problems == [], problems

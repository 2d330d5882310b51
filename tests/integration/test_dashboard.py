"""The dashboard in a real headless browser (Debian's chromium and chromium-driver).

Fails when chromium is not installed (a run that skips it proves nothing about the
page), unless ``LIAISON_TEST_ALLOW_SKIP=1`` asks for a skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from liaison.settings import Settings
from schemas.examples import example_envelope
from tests.conftest import missing_requirement
from tests.integration.console import Hub, serving
from tests.integration.harness import publish_as

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1600",
)
WAIT_S = 30


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless chromium driven by Selenium, with a fresh profile."""
    if CHROMIUM is None or DRIVER is None:
        message = (
            "chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
        )
        missing_requirement(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(driver: WebDriver, css: str, attribute: str) -> str | None:
    """An attribute (or property) of the first element matching ``css``; None if absent."""
    try:
        return driver.find_element(By.CSS_SELECTOR, css).get_attribute(attribute)
    except NoSuchElementException:
        return None


def wait_until(driver: WebDriver, predicate: Callable[[WebDriver], bool], message: str) -> None:
    """Wait for ``predicate`` on the live page, failing with ``message``."""
    WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(predicate, message)


class TestDashboard:
    def test_depths_follow_the_broker(
        self, browser: WebDriver, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """The page shows an inbox's depth, and the number changes when messages arrive."""
        s = hub_settings
        inbox = 'tr[data-queue="inbox.gs-archives"]'
        with serving(s, tmp_path) as hub:
            driver = browser
            driver.get(hub.url + "/")
            wait_until(driver, lambda d: text_of(d, inbox, "data-depth") == "0", "depth 0 shown")
            wait_until(
                driver,
                lambda d: text_of(d, "#router-health", "data-alive") == "true",
                "router shown alive",
            )
            for _ in range(3):
                publish_as(
                    s,
                    "gs",
                    example_envelope(
                        "correspondence.letter", 1, sender="gs", recipients=("gs-archives",)
                    ),
                )
            publish_as(s, "gs", b"{not json", routing_key="correspondence.letter")

            wait_until(driver, lambda d: text_of(d, inbox, "data-depth") == "3", "depth 3 shown")
            wait_until(
                driver, lambda d: text_of(d, "#dead-count", "data-count") == "1", "a dead letter"
            )
            wait_until(
                driver,
                lambda d: text_of(d, 'tr[data-reason="not_json"]', "data-reason") == "not_json",
                "the dead letter's reason",
            )
            wait_until(
                driver,
                lambda d: text_of(d, 'tr[data-institution="gs-archives"]', "data-delivered") == "3",
                "traffic by institution",
            )
            shown = text_of(driver, f"{inbox} td.depth", "textContent")
            assert shown == "3"
            assert text_of(driver, "#breaches", "hidden") is None  # the banner is showing
            assert "1 dead letter(s) in hub.dead" in (
                text_of(driver, "#breaches", "textContent") or ""
            )
            driver.save_screenshot(str(tmp_path / "dashboard.png"))
            severe = [
                entry
                for entry in driver.get_log("browser")  # type: ignore[no-untyped-call]
                if entry.get("level") == "SEVERE"
            ]
            assert severe == [], severe
            assert_offline(hub)


def assert_offline(hub: Hub) -> None:
    """The page pulls nothing from another origin (it must work on an isolated network)."""
    page = hub.get("/").text + hub.get("/static/app.js").text + hub.get("/static/style.css").text
    assert "http://" not in page and "https://" not in page


class TestAwaitingAcknowledgement:
    def test_panel_shows_who_has_not_acknowledged_and_when_it_is_overdue(
        self, browser: WebDriver, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """A FLASH cable nobody acknowledges appears in the panel, then turns overdue; the banner says so."""
        from schemas.envelope import new_envelope
        from schemas.examples import example_payload
        from schemas.types import Precedence
        from tests.integration.console import cli
        from tests.integration.harness import running
        from tests.integration.procedures_support import procedures_env, procedures_settings

        s = procedures_settings(
            hub_settings, f"sqlite:///{tmp_path / 'proc.sqlite3'}", tmp_path, within="3 seconds"
        )
        env = {
            k: v
            for k, v in procedures_env(s).items()
            if k.startswith(("LIAISON_PROC", "LIAISON_ACKS"))
        }
        assert cli(s, "procedures", "migrate", **env).code == 0
        cable = new_envelope(
            example_payload("mission.cable", 2),
            sender="emb-berlin",
            recipients=("dir-political",),
            precedence=Precedence.FLASH,
        )
        row = f'tr[data-message-id="{cable.message_id}"]'
        with (
            serving(s, tmp_path, **env) as hub,
            running(
                s,
                "procedures",
                "run",
                wait_queue="inbox.gs-procedures",
                log_path=str(tmp_path / "procedures.log"),
                env=procedures_env(s),
            ),
        ):
            driver = browser
            driver.get(hub.url + "/")
            wait_until(
                driver, lambda d: text_of(d, "#acks-count", "data-count") == "0", "panel shown"
            )
            publish_as(s, "emb-berlin", cable)
            wait_until(
                driver,
                lambda d: text_of(d, row, "data-waiting-on") == "dir-political",
                "awaited row",
            )
            wait_until(
                driver, lambda d: text_of(d, row, "data-overdue") == "true", "row turns overdue"
            )
            assert text_of(driver, "#acks-overdue", "data-overdue") == "1"
            assert "acknowledgement overdue" in (text_of(driver, "#breaches", "textContent") or "")
            metrics = hub.get("/metrics").text
            assert "liaison_acks_pending 1.0" in metrics and "liaison_acks_overdue 1.0" in metrics
            driver.save_screenshot(str(tmp_path / "acks.png"))

            # A treaty file and an overdue parliamentary question show in their panel.
            opened = example_envelope(
                "treaty.file_opened", 1, sender="gs-treaties", recipients=("gs-legal",)
            )
            publish_as(s, "gs-treaties", opened)
            late = example_envelope("chamber.question", 1, sender="chamber", recipients=("gs",))
            publish_as(s, "chamber", late)
            wait_until(
                driver,
                lambda d: text_of(d, "#questions-overdue", "data-overdue") == "1",
                "overdue question shown",
            )
            assert text_of(driver, "#treaties-count", "data-count") == "1"
            group = 'tr[data-group="signed|gs-treaties"]'
            assert text_of(driver, group, "data-files") == "1"
            assert "parliamentary question overdue" in (
                text_of(driver, "#breaches", "textContent") or ""
            )
            metrics = hub.get("/metrics").text
            assert "liaison_questions_overdue 1.0" in metrics
            assert 'liaison_treaty_files{step="signed",waiting_on="gs-treaties"} 1.0' in metrics

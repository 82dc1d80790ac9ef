"""The dashboard in a real headless browser (Debian's chromium, driven by selenium).

The demo service runs in this process, in its own thread and event loop,
with its control socket and its dashboard (control enabled, with a token);
the browser loads the page as a person would. These tests are marked slow;
where chromium is missing they are skipped, except in CI (``CI=true``),
where a missing browser fails them.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervised_loops import Loop, Supervisor, serve
from supervised_loops.loops import recent
from supervised_loops.messages import Stop

selenium = pytest.importorskip("selenium")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
TOKEN = "browser-test-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _browser_or_skip() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    message = "chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # in CI a missing browser is a failure, never a skip
    pytest.skip(message)


def _finalize(target: object) -> None:
    """Run now the finalizers registered on ``target`` (the demo closes its database so)."""
    for found in gc.get_objects():
        if isinstance(found, weakref.finalize):
            attached = found.peek()
            if attached is not None and attached[0] is target:
                found()


class Service:
    """A tree served with its dashboard in a background thread."""

    def __init__(self, make: Any, directory: Path, *, control: bool) -> None:
        self._make = make
        self.socket = directory / "service.sock"
        self._control = control
        self.tree: Supervisor | None = None
        self.url = ""
        self._found = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        service = self

        class Address(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                message = record.getMessage()
                if message.startswith("dashboard: ") and record.thread == service._thread.ident:
                    service.url = message.removeprefix("dashboard: ")
                    service._found.set()

        logger = logging.getLogger("supervised_loops")
        handler = Address()
        logger.addHandler(handler)
        level = logger.level
        logger.setLevel(logging.INFO)

        async def main() -> int:
            self._loop = asyncio.get_running_loop()
            self.tree = self._make()  # SQLite connections belong to the thread that made them
            return await serve(
                self.tree,
                control=self.socket,
                handle_signals=False,
                dashboard="127.0.0.1:0",
                dashboard_control=self._control,
                dashboard_token=TOKEN if self._control else None,
            )

        try:
            asyncio.run(main())
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            # The demo closes its SQLite connection when its tree is let go
            # of: do it here, in the thread that opened it, not at exit.
            _finalize(self.tree)
            self.tree = None

    def start(self) -> None:
        self._thread.start()
        if not self._found.wait(30):
            raise RuntimeError("the dashboard did not start")

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` on the service's event loop and return its result."""
        assert self._loop is not None
        done = threading.Event()
        result: list[Any] = []

        def run() -> None:
            result.append(function(*args))
            done.set()

        self._loop.call_soon_threadsafe(run)
        assert done.wait(10)
        return result[0]

    def stop(self) -> None:
        assert self.tree is not None
        self.call(self.tree.tell, Stop())
        self._thread.join(30)


def demo_tree(directory: Path) -> Any:
    sys.path.insert(0, str(DEMO))
    try:
        from service import make_tree  # the README's demo
    finally:
        sys.path.remove(str(DEMO))
    return lambda: make_tree(str(directory / "demo.sqlite3"), seed=3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    _browser_or_skip()
    directory = tmp_path_factory.mktemp("demo")
    service = Service(demo_tree(directory), directory, control=True)
    service.start()
    yield service
    service.stop()


def chromium(width: int = 1280, height: int = 900) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=ChromeService(CHROMEDRIVER))


@pytest.fixture(scope="module")
def page(demo: Service) -> Iterator[WebDriver]:
    driver = chromium()
    try:
        driver.get(demo.url + "?token=" + TOKEN)
        WebDriverWait(driver, 10).until(lambda d: row(d, "demo/heartbeat"))
        yield driver
    finally:
        driver.quit()


def row(driver: WebDriver, path: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, f'#tree [data-path="{path}"]')
    return found[0] if found else None


def state_of(driver: WebDriver, path: str) -> str:
    found = row(driver, path)
    return "" if found is None else found.find_element(By.CSS_SELECTOR, ".state").text


def countdown_seconds(text: str) -> float:
    """The seconds a countdown cell shows ("2 h 5 min", "3 min 4 s", "4.5 s", "due")."""
    if text == "due":
        return 0.0
    words = text.split()
    units = {"h": 3600.0, "min": 60.0, "s": 1.0}
    pairs = zip(words[::2], words[1::2], strict=True)
    return sum(float(amount) * units[unit] for amount, unit in pairs)


def seconds_until_next_1800_utc() -> float:
    now = datetime.datetime.now(datetime.UTC)
    target = now.replace(hour=18, minute=0, second=0, microsecond=0)
    if target <= now:
        target += datetime.timedelta(days=1)
    return (target - now).total_seconds()


def test_countdown_seconds_reads_every_format() -> None:
    assert countdown_seconds("2 h 5 min") == 7500
    assert countdown_seconds("3 min 4 s") == 184
    assert countdown_seconds("4.5 s") == 4.5
    assert countdown_seconds("due") == 0


def test_the_page_loads_and_shows_the_demo_tree_live(page: WebDriver) -> None:
    assert page.find_element(By.ID, "title").text == "demo"
    WebDriverWait(page, 5).until(lambda d: d.find_element(By.ID, "link").text == "live")
    paths = [
        r.get_attribute("data-path") for r in page.find_elements(By.CSS_SELECTOR, "#tree .row")
    ]
    assert paths == [
        "demo",
        "demo/ingest",
        "demo/ingest/writer",
        "demo/ingest/poller",
        "demo/report",
        "demo/heartbeat",
    ]
    assert state_of(page, "demo") == "running"
    assert "0/5 in 60 s" in row(page, "demo").text  # type: ignore[union-attr]
    heartbeat = row(page, "demo/heartbeat")
    assert heartbeat is not None
    first = int(heartbeat.find_element(By.CSS_SELECTOR, ".c-iter").text)
    # Live: the heartbeat's iteration count moves without a reload.
    WebDriverWait(page, 5).until(
        lambda _d: int(heartbeat.find_element(By.CSS_SELECTOR, ".c-iter").text) > first
    )
    report = row(page, "demo/report")
    assert report is not None
    # The report runs daily at 18:00 UTC: its countdown is the time left until then,
    # whatever the hour the test runs at.
    shown = countdown_seconds(report.find_element(By.CSS_SELECTOR, ".c-next").text)
    assert abs(shown - seconds_until_next_1800_utc()) <= 61  # the widest format drops seconds


def test_a_ctl_stop_from_another_client_shows_within_a_second(
    page: WebDriver, demo: Service
) -> None:
    assert state_of(page, "demo/report") == "sleeping"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "supervised_loops",
            "ctl",
            "--socket",
            str(demo.socket),
            "stop",
            "demo/report",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    replied = time.monotonic()
    WebDriverWait(page, 1.0, poll_frequency=0.02).until(
        lambda d: state_of(d, "demo/report") == "stopped"
    )
    assert time.monotonic() - replied < 1.0


def _fail_an_iteration(demo: Service, path: str) -> None:
    """Record a failed iteration in the loop's ring, as the loop engine does."""

    def report() -> None:
        assert demo.tree is not None
        poller = demo.tree.lookup(path.partition("/")[2])
        assert isinstance(poller, Loop)
        try:
            raise ConnectionError('source unavailable <b id="injected">as markup</b>')
        except ConnectionError as error:
            recent.attach(poller).add_outcome(0.1, 0.2, 0.0, "retried", error, 99)

    demo.call(report)


def _open_traceback(page: WebDriver, path: str) -> str:
    target = row(page, path)
    assert target is not None
    WebDriverWait(page, 30).until(lambda _d: target.find_element(By.CSS_SELECTOR, ".error").text)
    target.find_element(By.CSS_SELECTOR, ".error").click()
    shown = page.find_element(By.ID, "details-traceback")
    WebDriverWait(page, 5).until(lambda _d: "loading" not in shown.text)
    text = shown.text
    page.find_element(By.CSS_SELECTOR, "#details .close").click()
    return text


def test_a_click_on_a_failure_shows_its_traceback(page: WebDriver, demo: Service) -> None:
    # The poller also fails by itself (one read in five): the page shows the
    # latest failure, so a natural one may land between the report and the
    # click. Report again until the click shows ours (each try is a full check).
    for _ in range(5):
        _fail_an_iteration(demo, "demo/ingest/poller")
        text = _open_traceback(page, "demo/ingest/poller")
        if "(iteration 99)" in text:
            break
    assert "Traceback (most recent call last)" in text
    # Shown as text, never as markup: an error message cannot inject into the page.
    assert 'ConnectionError: source unavailable <b id="injected">as markup</b>' in text
    assert page.find_elements(By.ID, "injected") == []


def test_a_real_failed_iteration_shows_its_traceback_and_history(
    page: WebDriver, demo: Service
) -> None:
    # The demo's poller fails one read in five: its own traceback, from the engine.
    poller = row(page, "demo/ingest/poller")
    assert poller is not None
    WebDriverWait(page, 30).until(
        lambda _d: (
            "r"
            in (
                poller.find_element(By.CSS_SELECTOR, ".c-strip").get_attribute("data-outcomes")
                or ""
            )
        )
    )
    url = demo.url + "api/traceback?path=demo/ingest/poller"

    def engine_traceback(_driver: WebDriver) -> bool:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return "in read" in (json.load(reply)["traceback"] or "")

    # A failure reported by hand in another test may be the latest: wait for a real one.
    WebDriverWait(page, 30).until(engine_traceback)
    text = _open_traceback(page, "demo/ingest/poller")
    assert "in read" in text  # the demo's FlakySource.read raised it
    assert "ConnectionError: source unavailable" in text


def test_with_control_a_click_on_restart_restarts_the_loop(page: WebDriver, demo: Service) -> None:
    def starts() -> int:
        return sum(1 for e in page.find_elements(By.CSS_SELECTOR, "#timeline li"))

    page.find_element(By.ID, "filter-path").send_keys("demo/heartbeat")
    Select(page.find_element(By.ID, "filter-type")).select_by_value("ActorStarted")
    before = starts()
    assert before >= 1
    assert all(
        li.get_attribute("data-path") == "demo/heartbeat"
        and li.get_attribute("data-type") == "ActorStarted"
        for li in page.find_elements(By.CSS_SELECTOR, "#timeline li")
    )
    heartbeat = row(page, "demo/heartbeat")
    assert heartbeat is not None
    heartbeat.find_element(By.CSS_SELECTOR, '[data-command="restart"]').click()
    WebDriverWait(page, 5).until(lambda d: "done" in d.find_element(By.ID, "ack").text)
    assert page.find_element(By.ID, "ack").text.startswith(
        "demo/heartbeat: Restart done at iteration "
    )
    WebDriverWait(page, 2).until(lambda _d: starts() == before + 1)  # a new run began
    assert demo.call(lambda: demo.tree.lookup("heartbeat").status().state.value) in (
        "running",
        "sleeping",
    )


def test_with_control_change_interval_asks_for_the_interval_and_applies_it(
    page: WebDriver, demo: Service
) -> None:
    writer = row(page, "demo/ingest/writer")
    assert writer is not None
    writer.find_element(By.CSS_SELECTOR, '[data-command="change-interval"]').click()
    prompt = WebDriverWait(page, 5).until(lambda d: d.switch_to.alert)
    prompt.send_keys("7")
    prompt.accept()
    WebDriverWait(page, 5).until(lambda d: "ChangeInterval" in d.find_element(By.ID, "ack").text)
    assert page.find_element(By.ID, "ack").text.startswith(
        "demo/ingest/writer: ChangeInterval done at iteration "
    )
    WebDriverWait(page, 3).until(lambda _d: "seconds=7.0" in writer.text)
    schedule = demo.call(lambda: demo.tree.lookup("ingest/writer").status().schedule)
    assert schedule == "Every(seconds=7.0)"
    # A bad value comes back as the control protocol's error, shown as such.
    writer.find_element(By.CSS_SELECTOR, '[data-command="change-interval"]').click()
    prompt = WebDriverWait(page, 5).until(lambda d: d.switch_to.alert)
    prompt.send_keys("soon")
    prompt.accept()
    WebDriverWait(page, 5).until(lambda d: d.find_element(By.ID, "ack").text.startswith("error:"))
    assert "'seconds' must be a number" in page.find_element(By.ID, "ack").text


def test_supervisors_fold_and_unfold(page: WebDriver) -> None:
    ingest = row(page, "demo/ingest")
    assert ingest is not None
    ingest.find_element(By.CSS_SELECTOR, ".fold").click()
    WebDriverWait(page, 5).until(lambda d: row(d, "demo/ingest/poller") is None)
    assert row(page, "demo/heartbeat") is not None
    assert "2 children" in ingest.text
    ingest.find_element(By.CSS_SELECTOR, ".fold").click()
    WebDriverWait(page, 5).until(lambda d: row(d, "demo/ingest/poller") is not None)
    # The view goes on updating live after the fold (a new stream of the new view).
    WebDriverWait(page, 5).until(lambda d: d.find_element(By.ID, "link").text == "live")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_the_page_fits_a_desktop_and_a_phone_without_sideways_scrolling(
    demo: Service, width: int, height: int
) -> None:
    driver = chromium(width, height)
    try:
        driver.get(demo.url)
        WebDriverWait(driver, 10).until(lambda d: row(d, "demo/heartbeat"))
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        # Read-only without the token: no control buttons.
        assert driver.find_elements(By.CSS_SELECTOR, "[data-command]") == []
    finally:
        driver.quit()


def test_every_state_has_its_own_colour_stopping_included(page: WebDriver) -> None:
    states = [
        "idle",
        "starting",
        "running",
        "sleeping",
        "retrying",
        "paused",
        "stopping",
        "stopped",
        "cancelled",
        "failed",
        "quarantined",
    ]
    colours = page.execute_script(
        """
        return arguments[0].map((state) => {
          const badge = document.createElement("span");
          badge.className = "state " + state;
          document.body.append(badge);
          const colour = getComputedStyle(badge).backgroundColor;
          badge.remove();
          return colour;
        });
        """,
        states,
    )
    shown = dict(zip(states, colours, strict=True))
    # Ended states share grey; every other state, stopping included, has a colour of its own.
    assert shown["idle"] == shown["stopped"] == shown["cancelled"]
    distinct = [shown[state] for state in states if state not in ("idle", "cancelled")]
    assert len(set(distinct)) == len(distinct), shown


def test_a_charts_new_iterations_are_appended_to_what_the_page_holds(page: WebDriver) -> None:
    # After the first update the server sends only the iterations the page has
    # not had: what the page holds must stay every iteration up to the last 60.
    poller = row(page, "demo/ingest/poller")
    assert poller is not None
    strip = poller.find_element(By.CSS_SELECTOR, ".c-strip")

    def held() -> tuple[int, str]:
        # Both read in one script: an update between two reads would pair them wrongly.
        count, outcomes = page.execute_script(
            "return [arguments[0].dataset.count || '0', arguments[0].dataset.outcomes || ''];",
            strip,
        )
        return int(count), outcomes

    start, _ = held()
    WebDriverWait(page, 30).until(lambda _d: held()[0] >= start + 3)  # three updates at least
    count, outcomes = held()
    assert len(outcomes) == min(count, 60)
    assert set(outcomes) <= set("orfc")

"""Take the screenshots shown on docs/dashboard.md, from the real demo service.

    python docs/screenshots.py            # writes docs/images/dashboard-*.png

The demo tree runs in this process (its own thread and event loop) with the
dashboard on loopback and control enabled; Debian's chromium, driven by
selenium through chromium-driver, loads the page and is photographed in the
views the guide describes. Needs the ``dashboard`` and ``test`` extras and
``apt-get install chromium chromium-driver``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "demo"))

from service import make_tree  # noqa: E402  (the demo, from its directory)

from supervised_loops import serve  # noqa: E402
from supervised_loops.messages import Stop  # noqa: E402

IMAGES = ROOT / "docs" / "images"
TOKEN = "screenshots-token"


def _finalize(target: object) -> None:
    """Run now the finalizers registered on ``target`` (the demo closes its database so)."""
    for found in gc.get_objects():
        if isinstance(found, weakref.finalize):
            attached = found.peek()
            if attached is not None and attached[0] is target:
                found()


class DemoService:
    """The demo tree served with its dashboard, in a background thread."""

    def __init__(self, directory: Path) -> None:
        self.db = str(directory / "demo.sqlite3")
        self.tree: Any = None
        self.socket = directory / "demo.sock"
        self.url = ""
        self._found = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        service = self

        class Address(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                message = record.getMessage()
                if message.startswith("dashboard: "):
                    service.url = message.removeprefix("dashboard: ")
                    service._found.set()

        logger = logging.getLogger("supervised_loops")
        logger.setLevel(logging.INFO)  # serve() says the dashboard's address at INFO
        logger.addHandler(Address())

        async def main() -> int:
            self._loop = asyncio.get_running_loop()
            self.tree = make_tree(self.db, seed=7)  # SQLite: made in the thread that uses it
            return await serve(
                self.tree,
                control=self.socket,
                handle_signals=False,
                dashboard="127.0.0.1:0",
                dashboard_control=True,
                dashboard_token=TOKEN,
            )

        asyncio.run(main())
        _finalize(self.tree)  # the demo's SQLite connection closes in the thread that opened it
        self.tree = None

    def __enter__(self) -> DemoService:
        self._thread.start()
        if not self._found.wait(30):
            raise RuntimeError("the dashboard did not start")
        return self

    def call(self, function: Any, *args: Any) -> None:
        """Run ``function(*args)`` on the service's event loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(function, *args)

    def __exit__(self, *exc_info: object) -> None:
        self.call(self.tree.tell, Stop())
        self._thread.join(30)


def browser(width: int, height: int) -> webdriver.Chrome:
    """Headless chromium of Debian, at ``width`` × ``height`` CSS pixels."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory, DemoService(Path(directory)) as service:
        time.sleep(12)  # some history: iterations, retries, a flush or four
        driver = browser(1280, 800)
        try:
            driver.get(service.url + "?token=" + TOKEN)
            WebDriverWait(driver, 10).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, '[data-path="demo/ingest/poller"]')
            )
            time.sleep(3)  # a few live updates
            driver.save_screenshot(str(IMAGES / "dashboard-tree.png"))
            row = driver.find_element(By.CSS_SELECTOR, '[data-path="demo/ingest/poller"]')
            WebDriverWait(driver, 30).until(
                lambda d: row.find_element(By.CSS_SELECTOR, ".error").text
            )
            row.find_element(By.CSS_SELECTOR, ".error").click()
            WebDriverWait(driver, 5).until(
                lambda d: "loading" not in d.find_element(By.ID, "details-traceback").text
            )
            driver.save_screenshot(str(IMAGES / "dashboard-traceback.png"))
            driver.find_element(By.CSS_SELECTOR, "#details .close").click()
            row.find_element(By.CSS_SELECTOR, '[data-command="restart"]').click()
            WebDriverWait(driver, 5).until(lambda d: "done" in d.find_element(By.ID, "ack").text)
            driver.find_element(By.ID, "filter-path").send_keys("poller")
            time.sleep(0.5)
            driver.save_screenshot(str(IMAGES / "dashboard-control.png"))
        finally:
            driver.quit()
        phone = browser(390, 844)
        try:
            phone.get(service.url + "?token=" + TOKEN)
            WebDriverWait(phone, 10).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, '[data-path="demo/heartbeat"]')
            )
            time.sleep(2)
            phone.save_screenshot(str(IMAGES / "dashboard-phone.png"))
        finally:
            phone.quit()
    for image in sorted(IMAGES.glob("dashboard-*.png")):
        print(image.relative_to(ROOT))


if __name__ == "__main__":
    main()

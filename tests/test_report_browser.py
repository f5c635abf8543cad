"""The report opens in a real headless browser: Debian's ``chromium``, driven through Selenium
and Debian's ``chromium-driver`` (no browser download: ``make test`` installs both as root).
Every image on the page loads, the console shows no error, and the sorting works."""
from __future__ import annotations

import shutil

import pytest

from active_learning.reports.html import main
from report_fixtures import make_run_folder, write_round_report

pytest.importorskip("selenium", reason="the browser test needs selenium (the dev extra)")
pytest.importorskip("sklearn", reason="the report's map needs scikit-learn (the dev extra)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: install Debian's chromium and chromium-driver "
           "(apt-get install chromium chromium-driver; make test does it as root)")

BROKEN_IMAGES = ("return Array.from(document.images)"
                 ".filter(image => !(image.complete && image.naturalWidth > 0))"
                 ".map(image => image.src);")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    # The console (console.error, uncaught exceptions, failed loads) through the driver's log.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def open_page(browser, index):
    browser.get(index.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    return browser


def console_errors(browser):
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_every_image_loads_and_the_console_is_clean(browser, tmp_path):
    index = write_round_report(tmp_path)
    open_page(browser, index)
    count = browser.execute_script("return document.images.length")
    assert count == 8       # 5 thumbnails, the learning curve, the class histogram, the map
    assert browser.execute_script(BROKEN_IMAGES) == []
    assert console_errors(browser) == []


def test_the_run_folder_page_loads_in_the_browser(browser, tmp_path):
    images = tmp_path / "pool"
    run = make_run_folder(tmp_path / "runs", images)
    assert main([str(run), "--images", str(images), "--max-map-points", "30"]) == 0
    open_page(browser, run / "report" / "index.html")
    assert browser.execute_script("return document.images.length") >= 7
    assert browser.execute_script(BROKEN_IMAGES) == []
    assert console_errors(browser) == []


def test_a_missing_image_would_be_caught(browser, tmp_path):
    # The check above is not vacuous: a page whose image is gone fails it.
    index = write_round_report(tmp_path)
    (index.parent / "img" / "s00_00002.jpg").unlink()
    open_page(browser, index)
    assert [src.rsplit("/", 1)[-1] for src in browser.execute_script(BROKEN_IMAGES)] == [
        "s00_00002.jpg"]
    assert any("s00_00002.jpg" in entry["message"] for entry in console_errors(browser))


def test_the_thumbnails_and_tables_sort(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, write_round_report(tmp_path))
    cards = "return Array.from(document.querySelectorAll('#grid-0 figure'))" \
            ".map(card => card.getAttribute('data-{}'));"
    assert browser.execute_script(cards.format("score")) == ["0.9", "0.3", "0.7", "0.5", "0.1"]
    menu = Select(browser.find_element(By.CSS_SELECTOR, "select[data-grid='grid-0']"))
    menu.select_by_value("score-desc")
    assert browser.execute_script(cards.format("score")) == ["0.9", "0.7", "0.5", "0.3", "0.1"]
    menu.select_by_value("score-asc")
    assert browser.execute_script(cards.format("score")) == ["0.1", "0.3", "0.5", "0.7", "0.9"]
    menu.select_by_value("name-asc")
    assert browser.execute_script(cards.format("name")) == [
        "cls.png", "det/a <1>.jpg", "pose.png", "seg.png", "sp.png"]
    menu.select_by_value("rank-asc")
    assert browser.execute_script(cards.format("rank")) == ["1", "2", "3", "4", "5"]
    # The table of every chosen item: a click on "score" sorts ascending, a second descending.
    table = browser.find_elements(By.CSS_SELECTOR, "section.selection table.sortable")[-1]
    header = [cell for cell in table.find_elements(By.TAG_NAME, "th") if cell.text == "score"][0]
    column = "return Array.from(arguments[0].tBodies[0].rows).map(row => row.cells[2].textContent);"
    header.click()
    assert browser.execute_script(column, table) == ["0.05", "0.1", "0.3", "0.5", "0.7", "0.9"]
    header.click()
    assert browser.execute_script(column, table) == ["0.9", "0.7", "0.5", "0.3", "0.1", "0.05"]
    assert header.get_attribute("aria-sort") == "descending"
    assert console_errors(browser) == []

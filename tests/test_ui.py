"""The Web UI in headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
upload a real scan, wait for the result, check the recognised text and the drawn boxes, and
keep a screenshot in ``test-artifacts/``."""

from __future__ import annotations

import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ops.launcher import Topology
from tests.helpers import ROOT, clean_env

ARTIFACTS = ROOT / "test-artifacts"
SCAN = ROOT / "samples" / "pages" / "quarterly_report.jpg"


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1200"):
        options.add_argument(flag)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download drivers
    driver = chromium()
    yield driver
    driver.quit()


def test_upload_a_scan_and_see_its_lines_and_boxes(browser):
    with Topology(workers=1, env=clean_env(), log_level="WARNING") as topology:
        browser.get(topology.api_url + "/")
        WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) >= 2)
        versions = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
        assert "ppocrv6-small" in versions
        assert browser.find_element(By.ID, "priority").get_attribute("value") == "interactive"
        browser.find_element(By.ID, "files").send_keys(str(SCAN))
        WebDriverWait(browser, 180).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".status.finished") or d.find_elements(By.CSS_SELECTOR, ".status.failed"))
        status = browser.find_element(By.CSS_SELECTOR, ".job .status")
        assert "finished" in status.get_attribute("class"), status.text
        table = browser.find_element(By.CSS_SELECTOR, ".job table.lines").text
        assert "The archive digitised 18,450 pages this quarter," in table
        assert "%" in table, "confidences are shown"
        drawn = browser.execute_script(
            "const c = document.querySelector('.job canvas'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let blue = 0;"
            "for (let i = 0; i < d.length; i += 4) if (d[i] < 60 && d[i + 2] > 200) blue++; return [c.width, blue];")
        assert drawn[0] > 100 and drawn[1] > 500, f"line boxes drawn over the scan: {drawn}"
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "ui-result.png"))
        assert (ARTIFACTS / "ui-result.png").stat().st_size > 10_000
        # A job canceled or stopped elsewhere (rq's tools) ends the page's polling with its status.
        browser.execute_script(
            "const real = window.fetch; window.fetch = (url, init) => String(url).startsWith('v1/jobs/')"
            " ? Promise.resolve(new Response(JSON.stringify({status: 'canceled'}), {status: 200})) : real(url, init);")
        browser.find_element(By.ID, "files").send_keys(str(SCAN))
        WebDriverWait(browser, 60).until(lambda d: any(
            e.text == "canceled" and "failed" in e.get_attribute("class")
            for e in d.find_elements(By.CSS_SELECTOR, ".job .status")))
        # A collection: made on the page, chosen for an upload, its progress shown once the job ends.
        browser.get(topology.api_url + "/")
        WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) >= 2)
        browser.find_element(By.ID, "new-collection").click()
        WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert).send_keys("box 7")
        browser.switch_to.alert.accept()
        WebDriverWait(browser, 30).until(lambda d: "box 7" in d.find_element(By.ID, "collection").text)
        assert browser.find_element(By.ID, "collection").get_attribute("value"), "the new collection is chosen"
        browser.find_element(By.ID, "files").send_keys(str(SCAN))
        WebDriverWait(browser, 180).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".status.finished"))
        assert browser.find_element(By.CSS_SELECTOR, ".job .meta").text == "priority interactive, collection box 7"
        WebDriverWait(browser, 30).until(lambda d: "100 % of 1" in d.find_element(By.ID, "collections").text)
        row = browser.find_element(By.CSS_SELECTOR, "#collections tbody tr").text
        assert "box 7" in row and "finished" in row and "1 finished" in row, row
        browser.save_screenshot(str(ARTIFACTS / "ui-collection.png"))
        # The API's docs page renders every path of the OpenAPI document, with nothing fetched from elsewhere.
        browser.get(topology.api_url + "/v1/docs")
        WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) >= 5)
        shown = {e.text.replace("\u200b", "") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/v1/jobs", "/v1/jobs/{job_id}", "/api/v1/ocr"} <= shown, shown
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(url.startswith(topology.api_url) for url in loaded), loaded

"""explorer.html in a real browser: headless Chromium driven by Selenium.

Uses the system's Chromium and chromedriver (Debian: ``apt-get install chromium
chromium-driver``; ``.ci/run`` installs them). The test installs nothing and is skipped with the
reason where they are absent."""

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from cxrvae.report.explorer import explorer_payload

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


CHROMEDRIVER = shutil.which("chromedriver")


def test_explorer_is_self_contained_and_holds_every_model(study):
    _, out = study
    html = (out / "explorer.html").read_text()
    assert not re.search(r"""(src|href)=["']?https?://""", html)  # no CDN, works offline
    assert "<script src" not in html
    payload = explorer_payload(out)
    assert [m["name"] for m in payload["models"]] == ["latent 2", "latent 4"]
    with np.load(out / "latent_2" / "embedding.npz") as e:
        n = len(e["sample_idx"])
        assert e["recon"].shape[0] == n and e["frames"].shape[:2] == (5, 9)
    for m in payload["models"]:
        assert len(m["pca"]) == len(m["tsne"]) == len(m["clusters"]) == n
        axes = [it["axis"] for it in m["interps"]]
        assert axes[:4] == ["pca1", "pca2", "tsne1", "tsne2"] and axes[4].startswith("z")
        assert all(len(it["t"]) == 9 for it in m["interps"])


@pytest.fixture
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "headless Chromium and chromedriver are not installed "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1300,1400",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def _wait(driver, script, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(script):
            return True
        time.sleep(0.1)
    return False


def _lit_pixels(driver, canvas_id) -> int:
    return driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 8) n++; return n;",
        canvas_id,
    )


@pytest.mark.browser
def test_explorer_in_headless_chromium(study, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, out = study
    browser.get((out / "explorer.html").resolve().as_uri())
    assert _wait(browser, "return window.explorerReady === true"), "the page never got ready"
    assert _lit_pixels(browser, "hover-original") == 0  # nothing shown before hovering

    # Hover point 7 of the t-SNE map: that X-ray and its reconstruction appear.
    canvas = browser.find_element(By.ID, "map-tsne")
    p = browser.execute_script("return window.explorer.point('tsne', 7)")
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(browser).move_to_element_with_offset(
        canvas, p["x"] - w / 2, p["y"] - h / 2
    ).perform()
    assert _wait(browser, "return window.explorer.state.hover !== null")
    hovered = browser.execute_script("return window.explorer.state.hover")
    q = browser.execute_script(f"return window.explorer.point('tsne', {hovered})")
    assert (q["x"] - p["x"]) ** 2 + (q["y"] - p["y"]) ** 2 < 4  # that point, or one on it
    assert _lit_pixels(browser, "hover-original") > 1000
    assert _lit_pixels(browser, "hover-recon") > 1000
    assert "Image" in browser.find_element(By.ID, "hover-info").text

    # Colour by label, switch model, move the interpolation slider.
    browser.find_element(By.ID, "colour-label").click()
    assert "normal" in browser.find_element(By.ID, "legend").text
    browser.find_element(By.CSS_SELECTOR, "#model option[value='1']").click()
    assert browser.execute_script("return window.explorer.state.model") == 1
    slider = browser.find_element(By.ID, "t-slider")
    browser.execute_script(
        "arguments[0].value = 4; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    assert browser.find_element(By.ID, "t-value").text == "t = 0.500"
    assert _lit_pixels(browser, "interp-frame") > 1000

    shot = Path(os.environ.get("CXRVAE_SCREENSHOTS", tmp_path)) / "explorer.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

"""explorer.html: its payload, and the page in a real browser (headless Chromium driven by
Selenium).

Uses the system's Chromium and chromedriver (Debian: ``apt-get install chromium
chromium-driver``; ``.ci/run`` installs them). The tests install nothing and are skipped with
the reason where they are absent."""

import io
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import NearestNeighbors

from cxrvae.analysis import latent as lt
from cxrvae.analysis.embedding import GRID, N_NEIGHBOURS
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.data.xray import as_uint8
from cxrvae.finished import open_run
from cxrvae.report.explorer import JPEG_QUALITY, build_explorer, explorer_payload

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
CHROMEDRIVER = shutil.which("chromedriver")
REACH = 10  # px: the page's hover reach around a point


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
        assert e["grid"].shape == (GRID * GRID, 32, 32) and e["grid_z"].shape == (GRID * GRID, 2)
        assert e["neighbours"].shape == e["neighbour_distances"].shape == (n, N_NEIGHBOURS)
        assert e["traversal_frames"].shape[1:] == (2, 13, 32, 32)  # both dimensions, 13 steps
    assert len(payload["ids"]) == n and payload["ids"][0].endswith(".jpeg")
    assert {f["key"] for f in payload["features"]} >= {"exposure", "lung_opacity"}
    for m in payload["models"]:
        assert len(m["pca"]) == len(m["tsne"]) == len(m["clusters"]) == len(m["error"]) == n
        axes = [it["axis"] for it in m["interps"]]
        assert axes[:4] == ["pca1", "pca2", "tsne1", "tsne2"] and axes[4].startswith("z")
        assert all(len(it["t"]) == 9 for it in m["interps"])
        assert len(m["grid"]["x"]) == len(m["grid"]["y"]) == GRID
    assert payload["layers"] == []  # nothing scored into this run


@pytest.fixture(scope="module")
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
        "--window-size=1400,1400",
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
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def scored_run(scoring_run, tmp_path_factory):
    """A copy of the shared scoring run (8 epochs: its decoder's images differ across the map)
    with a batch scored into it, so that its explorer has a layer."""
    from cxrvae.cli import main

    run = tmp_path_factory.mktemp("explorer") / "run"
    shutil.copytree(scoring_run[1], run)
    images, _ = synthetic_xrays(n=30, size=32, seed=5)
    images[:6] = 255 - images[:6]  # six inverted films
    ids = np.array([f"new{i}.png" for i in range(30)])
    np.savez(run.parent / "batch.npz", images=images, ids=ids)
    assert main(["score", str(run), str(run.parent / "batch.npz"), "--fpr", "0.05", "-q"]) == 0
    return run


@pytest.fixture
def page(scored_run, browser):
    """The scored run's explorer, freshly loaded: (driver, run folder)."""
    out = scored_run
    browser.get((out / "explorer.html").resolve().as_uri())
    assert _wait(browser, "return window.explorerReady === true"), "the page never got ready"
    yield browser, out
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def _js(driver, script, *args):
    return driver.execute_script("return " + script, *args)


def _move(driver, canvas_id, x, y, click=False):
    """The mouse to (x, y) px from the corner of a canvas (and a click there)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, canvas_id)
    w, h = canvas.size["width"], canvas.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(canvas, x - w / 2, y - h / 2)
    (chain.click() if click else chain).perform()


def _jpeg(image: np.ndarray) -> np.ndarray:
    """A uint8 image through the page's JPEG encoding and back."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buf), dtype=float)


def _empty_grid_nodes(driver) -> list[tuple[int, int, dict]]:
    """The decoded grid's points on the PCA map with no sampled image within hover reach."""
    points = np.asarray(_js(driver, "window.explorer.points('pca')"))
    nodes = []
    for iy in range(GRID):
        for ix in range(GRID):
            p = _js(driver, "window.explorer.gridPoint(arguments[0], arguments[1])", ix, iy)
            if np.min(np.hypot(*(points - [p["x"], p["y"]]).T)) > REACH + 2:
                nodes.append((ix, iy, p))
    return nodes


@pytest.mark.browser
def test_hovering_empty_pca_space_shows_what_the_decoder_makes_there(page):
    driver, out = page
    nodes = _empty_grid_nodes(driver)
    assert len(nodes) >= 2, "the map has no empty space to hover"
    (ix0, iy0, p0), (ix1, iy1, p1) = nodes[0], nodes[-1]
    with np.load(out / "latent_2" / "embedding.npz") as e:
        z = e["grid_z"]
    model = open_run(out).model(2)

    shown = []
    for ix, iy, p in ((ix0, iy0, p0), (ix1, iy1, p1)):
        _move(driver, "map-pca", p["x"], p["y"])
        assert _wait(driver, f"return window.explorer.state.cursor === {iy * GRID + ix}")
        assert _js(driver, "window.explorer.state.hover") is None  # empty space: no image hovered
        pixels = np.asarray(_js(driver, "window.explorer.pixels('decoded')"), float).reshape(32, 32)
        expected = as_uint8(lt.decode(model, z[iy * GRID + ix : iy * GRID + ix + 1]))[0]
        # Within JPEG error: as far from the decoder's image as its own JPEG round trip is.
        jpeg = _jpeg(expected)
        assert np.abs(pixels - jpeg).mean() < 1
        assert np.abs(pixels - expected).mean() <= np.abs(jpeg - expected).mean() + 0.5
        shown.append(pixels)
    assert np.abs(shown[0] - shown[1]).mean() > 5  # another point, another image
    assert "Decoded by latent 2" in _js(
        driver, "document.getElementById('decoded-info').textContent"
    )


@pytest.mark.browser
def test_the_arrow_keys_move_over_the_grid_and_enter_selects_the_nearest_image(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, _ = page
    canvas = driver.find_element(By.ID, "map-pca")
    canvas.send_keys(Keys.ARROW_RIGHT)
    centre = (GRID // 2) * GRID + GRID // 2
    assert _js(driver, "window.explorer.state.cursor") == centre + 1
    canvas.send_keys(Keys.ARROW_UP, Keys.ENTER)
    assert _js(driver, "window.explorer.state.cursor") == centre + 1 + GRID
    selected = _js(driver, "window.explorer.state.selected")
    g = _js(
        driver,
        "window.explorer.gridPoint(arguments[0], arguments[1])",
        GRID // 2 + 1,
        GRID // 2 + 1,
    )
    points = np.asarray(_js(driver, "window.explorer.points('pca')"))
    assert selected == int(np.argmin(np.hypot(*(points - [g["x"], g["y"]]).T)))


@pytest.mark.browser
def test_clicking_an_image_lists_its_nearest_neighbours_in_latent_space(page):
    driver, out = page
    p = _js(driver, "window.explorer.point('tsne', 7)")
    _move(driver, "map-tsne", p["x"], p["y"], click=True)
    i = _js(driver, "window.explorer.state.selected")
    assert i is not None
    with np.load(out / "latent_2" / "embedding.npz") as e:
        mu = e["mu"]
    rows = NearestNeighbors(n_neighbors=N_NEIGHBOURS + 1).fit(mu).kneighbors(mu[[i]])[1][0]
    assert _js(driver, "window.explorer.neighbours()") == [r for r in rows if r != i]

    # A neighbour's button selects it; the side-by-side view shows every model's reconstruction.
    from selenium.webdriver.common.by import By

    driver.find_elements(By.CSS_SELECTOR, "#neighbours button")[2].click()
    assert _js(driver, "window.explorer.state.selected") == rows[rows != i][2]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#compare canvas")) == 2
    # The selected image is ringed in black on both models' maps.
    j = _js(driver, "window.explorer.state.selected")
    for view in ("cmp0", "cmp1"):
        p = _js(driver, f"window.explorer.point('pca', {j}, '{view}')")
        for dx, dy in ((8, 0), (-8, 0), (0, 8), (0, -8)):
            rgb = _js(driver, f"window.explorer.rgbAt('{view}', {p['x'] + dx}, {p['y'] + dy})")
            assert max(rgb) < 90, (view, dx, dy, rgb)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#compare-hover canvas")) == 3


@pytest.mark.browser
def test_colouring_by_a_feature_uses_that_features_values(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, out = page
    Select(driver.find_element(By.ID, "colour")).select_by_value("feature:lung_opacity")
    with np.load(out / "sample.npz") as f:
        values = f["feature_lung_opacity"]
    np.testing.assert_allclose(_js(driver, "window.explorer.colourValues()"), values, atol=1e-4)
    ends = [_js(driver, "window.explorer.colourAt('pca', arguments[0])", int(j))
            for j in (np.argmin(values), np.argmax(values))]  # fmt: skip
    assert ends == ["rgb(68,1,84)", "rgb(253,231,37)"]  # the two ends of the scale
    legend = driver.find_element(By.ID, "legend").text
    assert "lung-field brightness" in legend
    lo, hi = np.quantile(values, [0.02, 0.98], method="nearest")
    assert f"{lo:.3f}" in legend and f"{hi:.3f}" in legend


@pytest.mark.browser
def test_search_finds_an_image_by_its_file_name(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, out = page
    ids = _js(driver, "window.explorer.ids")
    target = ids[5]
    box = driver.find_element(By.ID, "search")
    box.send_keys(target.upper(), Keys.ENTER)  # case does not matter; an exact match first
    assert _js(driver, "window.explorer.state.selected") == ids.index(target)
    n = sum(target.lower() in x.lower() for x in ids)
    assert driver.find_element(By.ID, "search-count").text.startswith(f"{n} of {len(ids)} ")
    assert target in driver.find_element(By.ID, "selected-info").text


@pytest.mark.browser
def test_the_page_shows_interpolations_and_traversals_with_labelled_controls(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver, _ = page
    driver.find_element(By.CSS_SELECTOR, "#model option[value='1']").click()
    assert _js(driver, "window.explorer.state.model") == 1
    slider = driver.find_element(By.ID, "t-slider")
    driver.execute_script(
        "arguments[0].value = 4; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    assert driver.find_element(By.ID, "t-value").text == "t = 0.500"
    trav = driver.find_element(By.ID, "trav-slider")
    before = _js(driver, "window.explorer.pixels('trav-frame')")
    driver.execute_script(
        "arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", trav
    )
    assert driver.find_element(By.ID, "trav-value").text == "−3.0 SD"
    assert _js(driver, "window.explorer.pixels('trav-frame')") != before
    # Every control has a label a screen reader (or a keyboard user) finds.
    for control in driver.find_elements(By.CSS_SELECTOR, "select, input"):
        cid = control.get_attribute("id")
        assert driver.find_elements(By.CSS_SELECTOR, f"label[for='{cid}']"), cid

    shot = Path(os.environ.get("CXRVAE_SCREENSHOTS", tmp_path)) / "explorer.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
def test_a_scored_batch_is_a_layer_with_its_flags(page):
    from selenium.webdriver.common.by import By

    driver, out = page
    layer = explorer_payload(out)["layers"][0]
    assert layer["name"] == "batch" and layer["n"] == 30
    box = driver.find_element(By.ID, "layer-batch")
    assert (
        box.is_selected()
        and "scored 'batch' (30)"
        in driver.find_element(By.CSS_SELECTOR, "label[for='layer-batch']").text
    )
    flagged = layer["models"]["2"]["flagged"]
    assert (
        sum(flagged[:6]) >= 4
        and f"flagged by latent 2 ({sum(flagged)})" in driver.find_element(By.ID, "legend").text
    )
    # Hovering a scored image shows it, with its percentile and flag.
    j = flagged.index(1)
    p = _js(driver, "window.explorer.layerPoints('pca', 'batch')")[j]
    _move(driver, "map-pca", *p)
    assert _wait(driver, "return (window.explorer.state.hover || {}).kind === 'layer'")
    assert "scored batch 'batch'" in driver.find_element(By.ID, "hover-info").text
    assert "flagged by latent 2" in driver.find_element(By.ID, "hover-info").text
    # Search covers the scored images; unticking the layer hides them.
    driver.find_element(By.ID, "search").send_keys("new1")
    assert "11 scored images" in driver.find_element(By.ID, "search-count").text  # new1, new10..19
    box.click()
    assert "batch" not in _js(driver, "[...window.explorer.state.layers].join()")


def test_a_run_analysed_by_an_earlier_version_still_gets_its_maps(study_copy):
    """Without the grid, neighbours and traversals (and ids and features in sample.npz), the
    page shows what there is and asks for the analysis again."""
    _, out = study_copy
    old = {"grid", "grid_x", "grid_y", "grid_z", "error", "neighbours", "neighbour_distances"}
    for k in (2, 4):
        path = out / f"latent_{k}" / "embedding.npz"
        with np.load(path) as e:
            kept = {n: e[n] for n in e.files if n not in old and not n.startswith("traversal_")}
        np.savez_compressed(path, **kept)
    with np.load(out / "sample.npz") as f:
        kept = {n: f[n] for n in f.files if n != "ids" and not n.startswith("feature_")}
    np.savez(out / "sample.npz", **kept)
    payload = explorer_payload(out)
    assert payload["ids"][:2] == ["#0", "#1"] and payload["features"] == []
    assert all("grid" not in m and "neighbours" not in m for m in payload["models"])
    html = build_explorer(out).read_text()
    assert "cxrvae analyze RUN" in html

"""The explorer's size, what each part of it costs, and how long it takes to open.

    python benchmarks/explorer_size.py [--run RUN] [--repeat 5]

RUN is an analysed run (without one, a short run of the shared 64 px set, 3 models of 1,000
sampled images each, is trained into /tmp/cxrvae_explorer/run first: the page's size and load
time depend on the number of images and models, not on how well they are trained). Prints:

- the page's size, and its parts: the sampled X-rays, each model's reconstructions, decoded
  grid, traversals and interpolations (JPEG sprite sheets), the numbers (JSON), the layers;
- what the decoded grid, the traversals and the neighbours cost the analysis, per model;
- the time to build the page, and to open it in headless Chromium (from navigation to the page
  drawn and ready, as the page measures it), REPEAT times: min, median, max.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/pediatric_cxr_64.npz"


def train(run: Path) -> None:
    if (run / "metrics.json").exists():
        return
    data = str(SHARED) if SHARED.exists() else "sample"
    cmd = [sys.executable, "-m", "cxrvae", "run", data, "--out", str(run), "--epochs", "2",
           "--max-steps", "20", "--n-samples", "1000", "--overwrite", "-q"]  # fmt: skip
    subprocess.run(cmd, check=True)


def parts(payload: dict) -> dict[str, int]:
    """Bytes of each part of the page's data."""
    sizes = {"sampled X-rays": len(payload["images"])}
    for m in payload["models"]:
        sizes[f"{m['name']}: reconstructions"] = len(m.pop("recon"))
        if "grid" in m:
            sizes[f"{m['name']}: decoded grid"] = len(m["grid"].pop("sprite"))
            sizes[f"{m['name']}: traversals"] = len(m["traversal"].pop("sprite"))
        sizes[f"{m['name']}: interpolations"] = sum(len(it.pop("sprite")) for it in m["interps"])
    sizes["layers (scored batches)"] = len(json.dumps(payload.pop("layers")))
    payload["images"] = ""
    sizes["numbers (JSON)"] = len(json.dumps(payload))
    return sizes


def seconds(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def analysis_cost(run: Path) -> None:
    """Time what the explorer adds to each model's analysis."""
    from cxrvae.analysis.embedding import decoded_grid, nearest_neighbours, traversals
    from cxrvae.analysis.latent import fit_pca
    from cxrvae.analysis.structure import Clustering, Maps
    from cxrvae.finished import open_run
    from cxrvae.seeding import derive_seed

    r = open_run(run)
    for k in r.latent_dims:
        e, model = r.embedding(k), r.model(k)
        mu = e["mu"]
        projection = fit_pca(mu, derive_seed(r.config.seed, "pca"))  # as map_step fits it
        maps = Maps(pca=e["pca"], tsne=e["tsne"], projection=projection, trustworthiness={})
        clusters = Clustering(e["clusters"], int(e["clusters"].max()) + 1, {}, [], [], {})
        kl = r.metrics.analysed[k].kl_per_dim
        times = {
            "grid": seconds(decoded_grid, model, maps),
            "traversals": seconds(traversals, model, mu, kl, clusters),
            "neighbours": seconds(nearest_neighbours, mu),
        }
        print(f"  latent {k}: " + ", ".join(f"{n} {s:.2f} s" for n, s in times.items()))


def open_times(page: Path, repeat: int) -> list[float]:
    """Seconds from navigation to the page ready, in headless Chromium, ``repeat`` loads."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = next(filter(None, map(shutil.which, ("chromium", "google-chrome"))))
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1400",
    ):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    times = []
    try:
        for _ in range(repeat):
            driver.get(page.resolve().as_uri())
            while not driver.execute_script("return window.explorerReady === true"):
                time.sleep(0.01)
            times.append(driver.execute_script("return window.explorerLoadMs") / 1000)
    finally:
        driver.quit()
    return times


def spread(xs: list[float]) -> str:
    return f"min {min(xs):.2f} s, median {statistics.median(xs):.2f} s, max {max(xs):.2f} s"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    from cxrvae.report.explorer import build_explorer, explorer_payload

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs")
    run = a.run or Path("/tmp/cxrvae_explorer/run")
    train(run)
    payload = explorer_payload(run)
    n, k = payload["n"], len(payload["models"])
    builds = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        page = build_explorer(run)
        builds.append(time.perf_counter() - t)
    print(f"explorer.html of {run}: {page.stat().st_size / 1e6:.2f} MB, {k} models x {n} images")
    for name, size in parts(payload).items():
        print(f"  {name:32s} {size / 1e6:6.2f} MB")
    print("what the explorer adds to the analysis:")
    analysis_cost(run)
    print(f"build the page: {spread(builds)} ({a.repeat} builds)")
    print(f"open in headless Chromium: {spread(open_times(page, a.repeat))} ({a.repeat} loads)")


if __name__ == "__main__":
    main()

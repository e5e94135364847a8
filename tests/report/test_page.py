"""The HTML report: every section and figure, self-contained, escaped, every finding linked."""

import copy
import json
import re

import numpy as np
import pytest

from cxrvae.cli import main
from cxrvae.report.page import build_report


def _write_run(tmp_path, metrics, config=None):
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "config.json").write_text(json.dumps({"seed": 0, "config": config or {"seed": 0}}))
    return build_report(tmp_path).read_text()


def test_report_escapes_text_from_the_input(tmp_path, constructed):
    metrics = constructed()
    metrics["data"].update(source="<script>alert(1)</script>.npz", notes=["<b>note</b>"])
    html = _write_run(tmp_path, metrics)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>note</b>" not in html


def test_every_finding_links_to_an_element_of_the_report(study):
    _, out = study
    html = (out / "report.html").read_text()
    assert 'id="findings"' in html
    for section in ("data", "training", "reconstructions", "clusters", "interpolations",
                    "discussion", "config"):  # fmt: skip
        assert f'id="{section}"' in html, section
    links = re.findall(r'<li>[^<]*<a href="#([^"]+)">', html)
    assert 5 <= len(links) <= 8
    for anchor in links:
        assert f'id="{anchor}"' in html, anchor


@pytest.mark.parametrize("wall, at_once", [(2.5, True), (60.0, False)])
def test_report_gives_the_training_wall_time_and_says_when_times_overlap(
    tmp_path, wall, at_once, constructed
):
    metrics = copy.deepcopy(constructed())
    metrics["timings"] = {"train": wall}
    html = _write_run(tmp_path, metrics)  # three models of 2 s each: 6 s in all
    assert f"Training took {wall:.0f} s of wall time" in html
    assert ("models trained at once" in html) == at_once


def test_report_has_every_section_figure_and_the_config(study):
    _, out = study
    html = (out / "report.html").read_text()
    for section in (
        "Data",
        "Models and training",
        "Reconstructions",
        "Clusters and maps",
        "Interpolations",
        "Discussion",
        "Configuration",
    ):
        assert section in html
    n_figures = len(list((out / "figures").rglob("*.png")))
    assert html.count('src="data:image/png;base64,') == n_figures
    assert "http://" not in html and "https://" not in html  # self-contained
    assert '"latent_dims": [\n' in html or "latent_dims" in html
    assert "person" not in html  # no patient identifiers


def test_report_rebuilds_from_disk(study_copy):
    _, out = study_copy
    (out / "report.html").unlink()
    assert main(["report", str(out), "-q"]) == 0
    assert "Discussion" in (out / "report.html").read_text()


def test_a_set_with_integer_labels_and_no_ids_reads_labelled_and_no_patients(tmp_path, tiny_cli):
    """PneumoniaMNIST's npz layout: labels 0/1 without names, no file names, some copies."""
    from cxrvae.data.synthetic import synthetic_xrays

    images, labels = synthetic_xrays(n=96, size=32, seed=3)
    images[[40, 41]] = images[5]  # pixel-identical copies
    np.savez(tmp_path / "x.npz", train_images=images[:80], train_labels=labels[:80, None],
             test_images=images[80:], test_labels=labels[80:, None])  # fmt: skip
    out = tmp_path / "run"
    args = ["run", str(tmp_path / "x.npz"), "--out", str(out), *tiny_cli]
    assert main([*args, "--n-samples", "60", "--perplexity", "10"]) == 0
    page = (out / "report.html").read_text()
    text = re.sub(r"<[^>]+>|data:image/png;base64,[^\"]+", " ", page)
    assert "labelled 1" in text and "labelled 0" in text
    assert "patient" not in text.lower()
    assert not re.search(r"\b[01] (images|ones)\b", text)
    assert "3 pixel-identical images (1 set) are kept on one side of the split" in text

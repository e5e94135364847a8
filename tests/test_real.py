"""The whole pipeline on the real shared images (slow: run with `python -m pytest -m slow`)."""

import json

import pytest

from cxrvae.cli import main


@pytest.mark.slow
def test_run_on_real_data_end_to_end(shared_npz, tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            str(shared_npz),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--max-steps",
            "20",
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["n_images"] == 5840 and m["data"]["patient_grouped"]
    assert m["analysis"]["n_samples"] == 1000
    for k in ("4", "16", "32"):
        rows = (out / f"latent_{k}" / "history.csv").read_text().splitlines()[1:]
        test_loss = [float(r.split(",")[4]) for r in rows]
        assert test_loss[1] < test_loss[0]
        assert len(m["models"][k]["analysis"]["interpolations"]) == 5
    assert (out / "report.html").stat().st_size > 100_000

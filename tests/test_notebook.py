"""examples/quickstart.ipynb runs top to bottom on a tiny synthetic set (nbclient)."""

import json
from pathlib import Path

import numpy as np
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_uses_only_the_public_api():
    import cxrvae

    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    used = {
        w.split("(")[0]
        for w in code.replace("cxrvae.", " cxrvae.").split()
        if w.startswith("cxrvae.")
    }
    for name in used:  # every cxrvae.<name> the notebook calls exists in the package's API
        assert name.split(".")[1] in cxrvae.__all__, name
    assert "from cxrvae." not in code and "import cxrvae." not in code


@pytest.mark.notebook
def test_quickstart_notebook_executes(tmp_path, xrays):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel", reason="ipykernel is needed to run the notebook")
    images, labels = xrays
    data = tmp_path / "tiny.npz"
    np.savez(data, images=images, labels=labels, label_names=np.array(["normal", "pneumonia"]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = (
        f"DATA = {str(data)!r}\nOUT = {str(tmp_path / 'run')!r}\nIMAGE_SIZE = 32\n"
        "LATENT_DIMS = (4,)\nEPOCHS = 2\nN_SAMPLES = 40\n"  # one model: every cell, less work
    )
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 4  # image grid, history comparison, maps, samples
    texts = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "'n_images': 96" in texts and "[4]" in texts
    # the losses cell shows the metrics that the run folder holds
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert f"{metrics['models']['4']['test_loss']:.1f}" in texts
    assert (tmp_path / "run" / "report.html").is_file()
    assert (tmp_path / "run" / "explorer.html").is_file()

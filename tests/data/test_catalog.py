"""Sets by name: public sets downloaded from a server on 127.0.0.1 (md5-checked, cached), and
the packaged sample that a first run studies offline."""

import hashlib
import http.server
import json
import socket
import threading
from functools import partial

import numpy as np
import pytest

from cxrvae.cli import main
from cxrvae.data.catalog import DATASETS, fetch
from cxrvae.data.loader import load
from cxrvae.errors import DataError


class _Server:
    """A static file server on 127.0.0.1 that counts the requests for each path."""

    def __init__(self, folder):
        hits = self.hits = {}

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                hits[self.path] = hits.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path, monkeypatch, xrays):
    """A MedMNIST-layout pneumoniamnist_64.npz served on 127.0.0.1, and an empty cache.

    The served file is small and synthetic, so its md5 replaces the published one for the
    test; everything else (URL, pooch, cache, checks) is the real path.
    """
    images, labels = xrays
    folder = tmp_path / "served"
    folder.mkdir()
    path = folder / "pneumoniamnist_64.npz"
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)  # 64 px like the real file
    np.savez(
        path,
        train_images=big[:64],
        train_labels=labels[:64, None],
        val_images=big[64:80],
        val_labels=labels[64:80, None],
        test_images=big[80:],
        test_labels=labels[80:, None],
    )
    monkeypatch.setitem(
        DATASETS["pneumoniamnist"].md5, 64, hashlib.md5(path.read_bytes()).hexdigest()
    )
    server = _Server(folder)
    monkeypatch.setenv("CXRVAE_DATASET_URL", server.url)
    monkeypatch.setenv("CXRVAE_CACHE", str(tmp_path / "cache"))
    yield server, tmp_path / "cache"
    server.close()


def test_named_set_is_downloaded_once_and_cached(mirror):
    server, cache = mirror
    data = load("pneumoniamnist", image_size=64)
    assert data.source == "pneumoniamnist:64"
    assert data.label_names == ["normal", "pneumonia"] and len(data) == 96
    assert set(data.source_split) == {"train", "val", "test"}
    assert (cache / "pneumoniamnist_64.npz").is_file()
    load("pneumoniamnist:64", image_size=32)
    assert server.hits == {"/pneumoniamnist_64.npz": 1}


def test_checksum_mismatch_is_an_error_and_keeps_nothing(mirror, monkeypatch, capsys):
    server, cache = mirror
    monkeypatch.setitem(DATASETS["pneumoniamnist"].md5, 64, "0" * 32)
    assert main(["inspect", "pneumoniamnist:64"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("cxrvae: error:")]
    assert len(errors) == 1 and "does not match the md5" in errors[0]
    assert "Traceback" not in err
    assert not any(cache.iterdir()) if cache.exists() else True


def test_unreachable_server_suggests_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXRVAE_DATASET_URL", "http://127.0.0.1:9/")  # discard port: refused
    with pytest.raises(DataError, match="cannot download .*give its path") as e:
        fetch(DATASETS["chestmnist"], 64)
    assert "chestmnist_64.npz" in str(e.value)


def test_missing_file_on_the_server_says_http_404(mirror):
    with pytest.raises(DataError, match="HTTP 404"):
        load("chestmnist:28")


def test_a_public_set_by_name_trains_and_is_found_again(mirror, tmp_path, monkeypatch, tiny_cli):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "pneumoniamnist:64", *tiny_cli]) == 0
    saved = json.loads((tmp_path / "runs" / "pneumoniamnist_64" / "config.json").read_text())
    assert saved["source"] == "pneumoniamnist:64"
    assert saved["config"]["data"]["image_size"] == 32  # --image-size wins over the set's size
    # analyze finds the data again through the cache
    assert main(["analyze", "runs/pneumoniamnist_64", "--n-samples", "40", "-q"]) == 0


def test_named_size_sets_the_default_image_size(mirror, capsys):
    assert main(["inspect", "pneumoniamnist:64"]) == 0
    assert "models see:    64x64" in capsys.readouterr().out


def test_run_without_data_studies_the_sample_offline(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise OSError("this test allows no network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    quick = ["--epochs", "1", "--max-steps", "2", "--latent-dims", "2", "--n-samples", "60"]
    assert main(["run", *quick, "--perplexity", "10"]) == 0
    assert "no DATA given: studying the packaged sample" in capsys.readouterr().err
    run = tmp_path / "runs" / "sample"
    assert (run / "report.html").is_file() and (run / "explorer.html").is_file()

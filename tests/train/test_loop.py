"""The training loop: the loss falls, seeds repeat, resumes are exact, weights round-trip."""

import numpy as np
import pytest
import torch

from cxrvae.analysis.latent import reconstruct
from cxrvae.config import TrainConfig
from cxrvae.data.loader import load_npz
from cxrvae.data.split import split_indices
from cxrvae.train.checkpoints import load_model, save_model
from cxrvae.train.loop import DeviceData, build_model, evaluate, fit
from cxrvae.train.model import ConvVAE, vae_loss


@pytest.fixture
def setup(npz_path, tiny_config):
    data = load_npz(npz_path, image_size=32)
    train, test = split_indices(len(data), data.labels, data.groups, seed=0)
    return data, train, test, tiny_config


def _model(cfg, k=4, seed=0):
    torch.manual_seed(seed)
    return build_model(cfg.model, 32, k)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_fit_lowers_test_loss(setup):
    data, train, test, cfg = setup
    tc = TrainConfig(epochs=6, batch_size=16, lr=3e-3, device="cpu")
    history = fit(_model(cfg), data, train, test, tc, seed=0)
    assert len(history) == 6
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert all(row["train_kl"] >= 0 and row["test_kl"] >= 0 for row in history)


def test_fit_same_seed_same_history(setup):
    data, train, test, cfg = setup
    a = fit(_model(cfg), data, train, test, cfg.train, seed=1)
    b = fit(_model(cfg), data, train, test, cfg.train, seed=1)
    c = fit(_model(cfg), data, train, test, cfg.train, seed=2)
    assert _strip(a) == _strip(b)
    assert _strip(a) != _strip(c)


def test_fit_changes_weights_and_evaluate_does_not(setup):
    data, train, test, cfg = setup
    model = _model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate(model, DeviceData.from_data(data, "cpu"), torch.as_tensor(test))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    fit(model, data, train, test, cfg.train, seed=0)
    assert not torch.equal(before["fc_mu.weight"], model.state_dict()["fc_mu.weight"])


def test_fit_max_steps_caps_steps(setup):
    data, train, test, cfg = setup
    seen = []
    model = _model(cfg)
    model.fc_mu.register_forward_hook(lambda m, i, o: seen.append(1) if m.training else None)
    fit(
        model,
        data,
        train,
        test,
        TrainConfig(epochs=1, batch_size=8, max_steps=3, device="cpu"),
        seed=0,
    )
    assert len(seen) == 3


def test_fit_raises_on_non_finite_loss(setup):
    from cxrvae.errors import TrainingError

    data, train, test, cfg = setup
    with pytest.raises(TrainingError, match="non-finite"):
        fit(
            _model(cfg),
            data,
            train,
            test,
            TrainConfig(epochs=1, lr=1e12, batch_size=16, device="cpu"),
            0,
        )


def test_fit_resumes_bit_identically(setup, tmp_path):
    data, train, test, cfg = setup
    tc = TrainConfig(epochs=4, batch_size=16, lr=3e-3, device="cpu")
    full = fit(_model(cfg), data, train, test, tc, seed=5)

    ckpt = tmp_path / "checkpoint.pt"

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            _model(cfg),
            data,
            train,
            test,
            tc,
            seed=5,
            checkpoint_path=ckpt,
            callback=stop_after_two,
        )
    assert len(torch.load(ckpt, weights_only=True)["history"]) == 2
    # A fresh process would build a fresh model (other random state) and resume from the file.
    torch.manual_seed(123)
    resumed = fit(_model(cfg, seed=99), data, train, test, tc, seed=5, checkpoint_path=ckpt)
    assert _strip(resumed) == _strip(full)


def test_save_load_model_gives_identical_reconstructions(setup, tmp_path):
    data, train, test, cfg = setup
    model = _model(cfg)
    fit(model, data, train, test, cfg.train, seed=0)
    save_model(tmp_path / "model.safetensors", model)
    loaded = load_model(tmp_path / "model.safetensors")
    assert loaded.latent_dim == 4 and loaded.widths == cfg.model.widths
    np.testing.assert_array_equal(
        reconstruct(model, data, test[:5]), reconstruct(loaded, data, test[:5])
    )


@pytest.mark.parametrize(
    "dtype, factor", [("uint8", 1), ("uint16", 257), ("int16", 100), ("float32", 1 / 255)]
)
def test_device_batch_matches_numpy_normalisation(setup, tmp_path, dtype, factor):
    data, *_ = setup
    path = tmp_path / "typed.npz"
    np.savez(path, images=(data.images.astype(np.float64) * factor).astype(dtype))
    data = load_npz(path, image_size=32)
    assert data.images.dtype == np.dtype(dtype)  # kept in its source type, no float copy
    dd = DeviceData.from_data(data, "cpu")
    assert dd.images.data_ptr() == data.images.ctypes.data  # shared, not copied
    idx = np.array([3, 0, 7])
    np.testing.assert_allclose(
        dd.batch(torch.as_tensor(idx))[:, 0].numpy(), data.normalized(idx), atol=1e-6
    )


def test_vae_loss_on_model_output_is_finite():
    model = ConvVAE(32, 2, (8, 16))
    x = torch.rand(4, 1, 32, 32)
    out = vae_loss(*model(x)[:1], x, *model(x)[1:])
    assert torch.isfinite(out["loss"])


def test_channels_last_path_computes_the_contiguous_loss():
    """The layout cxrvae trains in gives the same loss and gradients as plain fp32 NCHW."""
    torch.manual_seed(0)
    plain = ConvVAE(32, 4, (8, 16, 32)).eval()
    fast = ConvVAE(32, 4, (8, 16, 32)).eval()
    fast.load_state_dict(plain.state_dict())
    fast = fast.to(memory_format=torch.channels_last)
    x = torch.rand(8, 1, 32, 32)
    a = vae_loss(*plain(x)[:1], x, *plain(x)[1:])["loss"]
    xf = x.contiguous(memory_format=torch.channels_last)
    b = vae_loss(*fast(xf)[:1], xf, *fast(xf)[1:])["loss"]
    a.backward()
    b.backward()
    assert b.item() == pytest.approx(a.item(), rel=1e-5)  # stated tolerance: 1e-5 relative
    for p, q in zip(plain.parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5)

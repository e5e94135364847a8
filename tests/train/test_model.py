import math

import numpy as np
import pytest
import torch

from cxrvae.train.model import ConvVAE, kl_divergence, vae_loss


@pytest.mark.parametrize("size, widths", [(32, (8, 16)), (64, (8, 16, 32, 64)), (128, (4, 8))])
def test_convvae_shapes(size, widths):
    torch.manual_seed(0)
    model = ConvVAE(size, 5, widths)
    x = torch.rand(3, 1, size, size)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape
    assert mu.shape == logvar.shape == (3, 5)
    assert model.encode(x)[0].shape == (3, 5)
    assert model.decode(mu).shape == x.shape


def test_convvae_is_symmetric_stride2():
    model = ConvVAE(64, 4, (8, 16, 32))
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == len(deconvs) == 3
    assert all(m.stride == (2, 2) for m in convs + deconvs)
    assert [c.out_channels for c in convs] == [d.in_channels for d in deconvs][::-1]
    assert isinstance(model.encoder[0][0], torch.nn.Conv2d)  # the input goes in as it is


def test_convvae_returns_the_raw_outputs_of_its_last_layers():
    """No activation on the latent heads or the output: ``forward`` returns exactly what the
    heads and the last transposed convolution compute (logits, mu, logvar)."""
    torch.manual_seed(0)
    model = ConvVAE(32, 4, (8, 16)).eval()
    seen = {}
    for name in ("fc_mu", "fc_logvar"):
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: seen.update({n: o}))
    last = model.decoder[-1]
    assert isinstance(last, torch.nn.ConvTranspose2d)
    last.register_forward_hook(lambda m, i, o: seen.update(logits=o))
    x_hat, mu, logvar = model(torch.rand(8, 1, 32, 32))
    assert torch.equal(x_hat, seen["logits"]) and x_hat.min() < 0  # logits, not probabilities
    assert torch.equal(mu, seen["fc_mu"]) and torch.equal(logvar, seen["fc_logvar"])


def test_convvae_rejects_indivisible_size():
    with pytest.raises(ValueError, match="not divisible"):
        ConvVAE(48, 4, (8, 16, 32, 64, 128))


def test_vae_loss_matches_hand_computation():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 0.5]]]])  # (1, 1, 2, 2)
    x = torch.tensor([[[[0.0, 1.0], [0.25, 1.0]]]])
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[0.0, math.log(0.25)]])
    bce = 0.0
    for lg, t in zip([0.0, 2.0, -1.0, 0.5], [0.0, 1.0, 0.25, 1.0]):
        p = 1 / (1 + math.exp(-lg))
        bce -= t * math.log(p) + (1 - t) * math.log(1 - p)
    kl = 0.5 * (0.5**2 + 1 - 1 - 0.0) + 0.5 * (1.0 + 0.25 - 1 - math.log(0.25))
    out = vae_loss(logits, x, mu, logvar)
    assert out["bce"].item() == pytest.approx(bce, rel=1e-6)
    assert out["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert out["loss"].item() == pytest.approx(bce + kl, rel=1e-6)


def test_vae_loss_averages_over_images():
    torch.manual_seed(0)
    logits, x = torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    whole = vae_loss(logits, x, mu, logvar)["loss"]
    parts = [
        vae_loss(logits[i : i + 1], x[i : i + 1], mu[i : i + 1], logvar[i : i + 1])["loss"]
        for i in range(4)
    ]
    assert whole.item() == pytest.approx(sum(p.item() for p in parts) / 4, rel=1e-5)


def test_kl_is_nonnegative_and_zero_at_prior():
    torch.manual_seed(0)
    assert (kl_divergence(torch.randn(100, 8), torch.randn(100, 8)) >= 0).all()
    assert kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_reparameterize_uses_mu_in_eval_mode():
    torch.manual_seed(0)
    model = ConvVAE(32, 4, (8, 16)).eval()
    x = torch.rand(2, 1, 32, 32)
    a, b = model(x)[0], model(x)[0]
    assert torch.equal(a, b)


@pytest.mark.parametrize("batchnorm", [True, False])
def test_hidden_layers_are_conv_batchnorm_leaky_relu(batchnorm):
    model = ConvVAE(32, 4, (8, 16), batchnorm=batchnorm)
    hidden = [*model.encoder[:-1], *model.decoder[:-1]]  # the blocks, not Flatten or logits
    for block in hidden:
        conv, *norm, act = block
        assert isinstance(conv, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
        assert (conv.bias is None) == batchnorm  # BatchNorm's shift replaces the bias
        assert [type(n) for n in norm] == ([torch.nn.BatchNorm2d] if batchnorm else [])
        assert isinstance(act, torch.nn.LeakyReLU) and act.negative_slope == 0.2
    assert model.decoder[-1].bias is not None
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in ConvVAE(32, 4, (8, 16)).modules())


def test_the_smallest_image_halves_down_to_one_pixel():
    model = ConvVAE(16, 2, (4, 4, 4, 4))  # 16 -> 8 -> 4 -> 2 -> 1
    assert model.bottom == 1
    assert model(torch.rand(2, 1, 16, 16))[0].shape == (2, 1, 16, 16)


def test_reparameterize_draws_from_the_posterior():
    torch.manual_seed(0)
    mu = torch.tensor([[1.0, -2.0, 0.5]]).expand(200_000, 3)
    logvar = torch.tensor([[0.0, np.log(4.0), np.log(0.01)]]).expand(200_000, 3)
    z = ConvVAE.reparameterize(mu, logvar)
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0, 0.5], atol=0.01)
    np.testing.assert_allclose(z.std(0), [1.0, 2.0, 0.1], rtol=0.01)


def test_forward_samples_in_training_and_uses_the_mean_in_eval():
    torch.manual_seed(0)
    model = ConvVAE(32, 4, (8, 16), batchnorm=False)
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        model.train()
        a, b = model(x)[0], model(x)[0]
        assert not torch.equal(a, b)  # another code each time
        model.eval()
        mu, _ = model.encode(x)
        assert torch.equal(model(x)[0], model.decode(mu))

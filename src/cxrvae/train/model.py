"""The convolutional VAE: a symmetric stride-2 encoder/decoder and its loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _down(c_in: int, c_out: int, batchnorm: bool) -> nn.Sequential:
    # kernel 4, stride 2, padding 1 halves H and W exactly.
    layers = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int, batchnorm: bool) -> nn.Sequential:
    layers = [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class ConvVAE(nn.Module):
    """Convolutional VAE for single-channel square images.

    The encoder is ``len(widths)`` stride-2 ``Conv2d`` blocks, each halving the image, then two
    linear heads giving ``mu`` and ``logvar`` (no activation). The decoder mirrors it: a linear
    layer, a reshape, and stride-2 ``ConvTranspose2d`` blocks, the last one giving logits (no
    activation). No activation is applied to the input.

    Parameters
    ----------
    image_size : int
        Height and width of the input; must be divisible by ``2 ** len(widths)``.
    latent_dim : int
        Size of the latent code.
    widths : sequence of int
        Channel widths of the encoder blocks; the decoder uses them in reverse.
    batchnorm : bool
        Put ``BatchNorm2d`` between hidden convolutions (never on input, latent or output).
    """

    def __init__(
        self, image_size: int, latent_dim: int, widths=(32, 64, 128, 256), batchnorm: bool = True
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        factor = 2 ** len(widths)
        if image_size % factor or image_size // factor < 1:
            raise ValueError(
                f"image_size {image_size} is not divisible by 2**{len(widths)} = {factor} "
                f"(one halving per encoder width {widths})"
            )
        self.image_size, self.latent_dim, self.widths = image_size, latent_dim, widths
        self.bottom = image_size // factor  # spatial size after the encoder
        flat = widths[-1] * self.bottom * self.bottom

        chans = (1, *widths)
        self.encoder = nn.Sequential(
            *(_down(chans[i], chans[i + 1], batchnorm) for i in range(len(widths))),
            nn.Flatten(),
        )
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)

        self.fc_dec = nn.Linear(latent_dim, flat)
        rev = widths[::-1]
        self.decoder = nn.Sequential(
            *(_up(rev[i], rev[i + 1], batchnorm) for i in range(len(rev) - 1)),
            # Last layer: logits, no normalisation and no activation.
            nn.ConvTranspose2d(rev[-1], 1, 4, stride=2, padding=1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each (B, latent_dim), for images x (B, 1, H, W) in [0, 1]."""
        h = self.encoder(x)  # (B, C * s * s)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return logits (B, 1, H, W) for latent codes z (B, latent_dim)."""
        h = self.fc_dec(z).view(-1, self.widths[-1], self.bottom, self.bottom)
        return self.decoder(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Sample z = mu + sigma * eps with eps ~ N(0, I) (Kingma & Welling 2014)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor):
        """Return ``(x_hat, mu, logvar)``; x_hat are logits, sampled z in training only."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per image and latent dimension, shape (B, D).

    Closed form from Kingma & Welling (2014), Appendix B:
    -1/2 * (1 + log sigma^2 - mu^2 - sigma^2).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def vae_loss(
    x_hat: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> dict[str, torch.Tensor]:
    """Negative ELBO in nats per image.

    Parameters
    ----------
    x_hat : Tensor (B, 1, H, W)
        Decoder logits.
    x : Tensor (B, 1, H, W)
        Targets in [0, 1].
    mu, logvar : Tensor (B, D)
        Posterior parameters.
    beta : float
        Weight of the KL term.

    Returns
    -------
    dict with ``loss``, ``bce`` (binary cross-entropy summed over pixels) and ``kl`` (summed
    over latent dimensions), each averaged over the batch. Computed in float32 whatever the
    autocast dtype.
    """
    n = x.shape[0]
    bce = F.binary_cross_entropy_with_logits(x_hat.float(), x.float(), reduction="sum") / n
    kl = kl_divergence(mu.float(), logvar.float()).sum() / n
    return {"loss": bce + beta * kl, "bce": bce, "kl": kl}

"""cxrvae: convolutional VAEs for chest X-rays, and what their latent spaces learned."""

__version__ = "0.1.0"

"""The analysis step: every trained model's latent space, on one shared sample.

:mod:`.latent` encodes, clusters, maps and interpolates; :mod:`.evidence` measures what the
discussion quotes; :mod:`.sampling` draws the sample and fits the linear baseline;
:mod:`.per_model` analyses one model through :mod:`.reconstruction`, :mod:`.structure`
and :mod:`.paths`; :mod:`.comparison` compares the models.
"""

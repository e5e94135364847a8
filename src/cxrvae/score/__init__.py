"""Scoring new images with a trained run: each image against the run's test images (how
atypical it is under each model, where it falls on the run's maps, its nearest training images),
and the batch as a whole against them (two-sample tests, feature shifts).

:mod:`.loading` reads the images as the run read its training images; :mod:`.images` scores
each of them, :mod:`.batch` the batch; :mod:`.scoring` runs both and writes the files, whose
numbers :mod:`.summary` types.
"""

"""Every threshold behind a number the report quotes or a claim it makes, named, in one place.

The first group defines counts that the analysis measures and ``metrics.json`` records
(dimensions used, active units, the paths that change a feature); the report quotes them and
states the threshold beside the count. The second group decides what a sentence claims. They
are tested on constructed cases, not tuned to one data set. No imports: any step may use them.
"""

# --------------------------------------------------------------------------- measured counts

ACTIVE_VARIANCE = 0.01  # a latent unit is active when its means vary more than this
USED_KL = 0.05  # a latent dimension carries information when its mean KL exceeds this (nats)
MIN_EFFECT = 0.5  # a path changes a feature when it moves it by half its SD across the images

# --------------------------------------------------------------------------- claims

ARI_SAME = 0.7  # adjusted Rand above this: two models group the images in much the same way
ARI_DIFFERENT = 0.3  # below this: they group them differently
LINEAR_SHARED = 0.8  # cross-validated R^2 above this: one space is a linear map of the other
SILHOUETTE_CLEAR = 0.5  # silhouette above this: well-separated clusters
SILHOUETTE_WEAK = 0.25  # below this: clusters are cuts through a continuum
EFFECT_MEDIUM = 0.5  # Cohen's d: a medium difference between labels
EFFECT_LARGE = 0.8  # a large one
PROBE_GOOD = 0.85  # probe AUC at or above: the latent space captures the label well
PROBE_SOME = 0.65  # at or above: in part
PROBE_MOVE = 0.3  # a path moves the label probability by this much: it follows the label
BETTER = 0.02  # a relative difference below this is "about the same" (reconstruction error)
COLLAPSED = 1  # at most this many dimensions carrying information: posterior collapse
P_DIFFERENT = 0.05  # MMD permutation p below this: a scored batch differs from the test images
# Two latent sizes differ by a number when their means over the seeds lie further apart than
# this many standard deviations between seeds (the two sizes' SDs pooled): about what a
# two-sided test at the 5% level asks of a difference.
SEED_MARGIN = 2.0

# The repeats a one-seed report suggests for testing its rankings: the fewest that give a
# spread beside a mean.
SUGGESTED_SEEDS = 3

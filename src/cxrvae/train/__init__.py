"""The training step: the convolutional VAE and its loss (:mod:`.model`), the training loop
(:mod:`.loop`) and what it writes (:mod:`.checkpoints`), one model of a run (:mod:`.runner`),
and every model of a run (:mod:`.all_models`): in turn, at once in worker processes
(:mod:`.parallel` on :mod:`.workers`), or across torchrun processes (:mod:`.distributed`),
optionally logged for TensorBoard (:mod:`.tensorboard_logs`).
"""

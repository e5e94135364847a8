"""The last module the workers' server imports (see :func:`cxrvae.train.workers.start_server`):
importing it freezes every object imported so far (:func:`gc.freeze`).

Frozen objects are never visited by the garbage collector again: the workers forked from the
server share their memory pages instead of copying them as a collection touches them (the use
Python's documentation gives for ``gc.freeze``), and the server's own exit, once its parent is
gone, skips collecting what torch, scikit-learn and matplotlib made, which otherwise takes
seconds while the server still holds the command's output open.
"""

import gc

gc.freeze()

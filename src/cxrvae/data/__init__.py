"""The data step: reading chest X-rays from any source into an ``XrayData``, the train/test
split, and the survey of how the images differ.

Readers (:mod:`.npz` with :mod:`.layouts`, :mod:`.folders` with :mod:`.dicom`, :mod:`.catalog`
for sets by name and the packaged sample) hand :mod:`.pixels`' ``RawImages`` to
:mod:`.loader`, which checks, resizes and normalises them into :mod:`.xray`'s ``XrayData``;
:mod:`.split` splits it by patient; :mod:`.features` and :mod:`.survey` describe it.
"""

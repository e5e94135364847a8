"""The report step: the study report and the explorer page, built from a run folder's files.

:mod:`.prose` turns numbers into words; :mod:`.reading` picks what the report starts from;
:mod:`.findings` are the key findings, :mod:`.discussion` (with :mod:`.map_answers`) the
answers to the study's questions; :mod:`.page` writes ``report.html`` and :mod:`.explorer`
``explorer.html``, from ``templates/``. Nothing here imports torch.
"""

"""Sphinx settings of cxrvae's documentation: ``python -m sphinx -W -b html docs docs/_build``.

The pages are MyST markdown; the command line and configuration references are written from
the code when the build starts (``_ext/reference.py``), the Python API from its docstrings
(autodoc with napoleon), and the example notebook is rendered as it is saved (myst-nb).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import cxrvae  # noqa: E402

project = "cxrvae"
author = "the cxrvae developers"
copyright = "2026, the cxrvae developers"
release = version = cxrvae.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "reference",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebook trains models: shown as saved, run by the tests
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "README.md"]

napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"

html_theme = "furo"
html_title = f"cxrvae {version}"
html_static_path = []

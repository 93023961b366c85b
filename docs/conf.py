"""Sphinx configuration for mint's documentation site.

Why Sphinx + furo + MyST rather than MkDocs + Material: the API reference is
generated from the docstrings, which are written in reST style (``literals``,
``*emphasis*``) that Sphinx's autodoc reads natively, while MkDocs would need
a plugin that reinterprets them as Markdown.  MyST keeps the prose pages in
Markdown like README.md and docs/architecture.md, and its ``{include}`` pulls
benchmarks/README.md in unchanged.  furo is a clean, readable theme with a
dark mode and good search, and needs no configuration.

Build with ``./dev docs`` (HTML in docs/_build/html).  ``tests/test_docs.py``
builds with warnings as errors and runs every Python example in the pages.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

project = "mint"
author = "the mint authors"
copyright = "the mint authors"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = "mint"

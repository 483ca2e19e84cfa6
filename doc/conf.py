"""Sphinx configuration of the skinfluence documentation."""

import skinfluence

project = "skinfluence"
author = "the skinfluence developers"
release = skinfluence.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
exclude_patterns = ["_build"]
html_theme = "alabaster"

"""Sphinx configuration of the skinfluence documentation.

Build with ``python -m sphinx -b html doc doc/_build`` (``-W`` turns warnings into
errors, as CI does). The gallery's examples in ``../examples`` run on every build.

Cross-links to other projects' documentation (intersphinx) need their object
inventories. The build never downloads anything by default: an inventory is used when
``doc/_intersphinx/<name>.inv`` exists, or fetched from the project's site when the
environment variable ``SKINFLUENCE_DOCS_ONLINE=1`` is set; otherwise the names of other
projects stay plain code text, without a warning.
"""

import os
from pathlib import Path

import skinfluence

_HERE = Path(__file__).resolve().parent

project = "skinfluence"
author = "the skinfluence developers"
copyright = "the skinfluence developers"
release = skinfluence.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.extlinks",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_intersphinx", "auto_examples/*.ipynb"]
default_role = "literal"

# -- API reference -------------------------------------------------------------------
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False


def _skip_member(app, what, name, obj, skip, options):
    """Leave out inherited members that document scikit-learn's or Python's machinery:
    the metadata-routing methods and ``set_output`` (their docstrings point into
    scikit-learn's own user guide, with links that only resolve there) and the methods
    every tuple or exception has."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if name in ("get_metadata_routing", "set_output"):
        return True
    owner = getattr(obj, "__objclass__", None)
    if owner in (tuple, object, BaseException, Exception):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# -- links to other projects ---------------------------------------------------------
_INTERSPHINX = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "sklearn": "https://scikit-learn.org/stable/",
    "lightgbm": "https://lightgbm.readthedocs.io/en/stable/",
    "xgboost": "https://xgboost.readthedocs.io/en/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
}
_ONLINE = os.environ.get("SKINFLUENCE_DOCS_ONLINE") == "1"
intersphinx_mapping = {}
for _name, _url in _INTERSPHINX.items():
    _local = _HERE / "_intersphinx" / f"{_name}.inv"
    if _local.exists():
        intersphinx_mapping[_name] = (_url, str(_local))
    elif _ONLINE:
        intersphinx_mapping[_name] = (_url, None)
if intersphinx_mapping:
    extensions.append("sphinx.ext.intersphinx")

# CatBoost's documentation is not built by Sphinx (no inventory exists): plain links.
extlinks = {
    "catboost": ("https://catboost.ai/docs/en/%s", "CatBoost: %s"),
}

# -- gallery -------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "subsection_order": [
        f"../examples/{d}"
        for d in ("getting_started", "explaining", "data_quality", "evaluation", "scaling")
    ],
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skinfluence",),
    "backreferences_dir": "generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "write_computation_times": True,
}

# -- HTML ----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skinfluence {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "header_links_before_dropdown": 7,
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sg_download_links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "changelog": []}

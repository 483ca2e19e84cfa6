"""The documentation site builds with warnings as errors, every gallery example runs and
draws its figures, and the API reference has a page for every public name.

The build runs in a subprocess on a copy of ``doc/`` and ``examples/`` in a temporary
directory (Sphinx and sphinx-gallery write generated pages next to their sources), as
``python -m sphinx -b html -W doc <out>`` does from the repository. It is one test so
that pytest-xdist never runs the build twice.
"""

import importlib
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: modules whose ``__all__`` the API reference must cover
API_MODULES = (
    "skinfluence",
    "skinfluence.base",
    "skinfluence.cleaning",
    "skinfluence.plotting",
    "skinfluence.evaluation",
    "skinfluence.datasets",
    "skinfluence.testing",
    "skinfluence.testing.strategies",
)
MIN_EXAMPLES = 8


def _public_names(module_name):
    module = importlib.import_module(module_name)
    if module_name == "skinfluence.base":
        return {"BaseInfluence": module.BaseInfluence}
    return {name: getattr(module, name) for name in module.__all__}


def _resolve(fullname):
    """The object a generated page ``fullname`` documents (longest importable module)."""
    parts = fullname.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(fullname)


def _build(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "doc",
        src / "doc",
        ignore=shutil.ignore_patterns(
            "_build", "generated", "auto_examples", "sg_execution_times.rst"
        ),
    )
    shutil.copytree(
        ROOT / "examples", src / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path / "html"
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("SKINFLUENCE_DOCS_ONLINE", None)  # no network during tests
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q"]
    cmd += ["-d", str(tmp_path / "doctrees"), str(src / "doc"), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=src, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return src, out


def _check_api_reference(out):
    generated = out / "generated"
    pages = {p.stem: p for p in generated.glob("*.html")}
    documented = {}
    for stem in pages:
        try:
            documented.setdefault(id(_resolve(stem)), []).append(stem)
        except (LookupError, AttributeError):
            continue
    missing = []
    for module_name in API_MODULES:
        for name, obj in _public_names(module_name).items():
            stem = f"{module_name}.{name}"
            # a re-exported object is documented once, under one of its public paths
            where = [stem] if stem in pages else documented.get(id(obj), [])
            if not where:
                missing.append(stem)
                continue
            html = pages[where[0]].read_text(encoding="utf-8")
            assert f'id="{where[0]}"' in html, f"{where[0]}.html does not describe it"
    assert not missing, f"no API reference page for {missing}"
    # every estimator page documents the shared methods of the contract
    boostin = pages["skinfluence.BoostIn"].read_text(encoding="utf-8")
    for method in ("fit", "transform", "self_influence", "global_influence", "top_k"):
        assert f'id="skinfluence.BoostIn.{method}"' in boostin, method
    api = (out / "api.html").read_text(encoding="utf-8")
    for name, obj in _public_names("skinfluence.plotting").items():
        if name.endswith("Display"):
            assert f"skinfluence.plotting.{name}" in api or f"skinfluence.{name}" in api, name


def _check_gallery(src, out):
    examples = sorted((ROOT / "examples").rglob("plot_*.py"))
    assert len(examples) >= MIN_EXAMPLES, [e.name for e in examples]
    gallery = src / "doc" / "auto_examples"
    for example in examples:
        rel = example.relative_to(ROOT / "examples")
        pattern = f"sphx_glr_{example.stem}_[0-9]*.png"
        images = sorted((gallery / rel.parent / "images").glob(pattern))
        assert images, f"{rel} drew no figure"
        page = out / "auto_examples" / rel.with_suffix(".html")
        html = page.read_text(encoding="utf-8")
        for image in images:
            assert image.name in html, f"{image.name} is not shown on {page.name}"
            assert (out / "_images" / image.name).stat().st_size > 1000, image.name
        text = re.sub(r"<[^>]+>", " ", html)
        assert "Traceback" not in text, f"{rel} printed a traceback"
    index = (out / "auto_examples" / "index.html").read_text(encoding="utf-8")
    for example in examples:
        assert example.stem in index, f"{example.name} is not in the gallery index"


def test_docs_build_with_gallery_and_api(tmp_path):
    src, out = _build(tmp_path)
    for page in ("index", "user_guide", "methods", "models", "api", "changelog"):
        assert (out / f"{page}.html").exists(), page
    _check_api_reference(out)
    _check_gallery(src, out)


def test_conf_needs_no_network(monkeypatch):
    """Without local inventories and without SKINFLUENCE_DOCS_ONLINE, intersphinx is off
    (it would download the inventories); with the variable it is on."""
    monkeypatch.delenv("SKINFLUENCE_DOCS_ONLINE", raising=False)
    conf = runpy.run_path(str(ROOT / "doc" / "conf.py"))
    local = {p.stem for p in (ROOT / "doc" / "_intersphinx").glob("*.inv")}
    assert set(conf["intersphinx_mapping"]) == local
    assert all(inv is not None for _, inv in conf["intersphinx_mapping"].values())
    monkeypatch.setenv("SKINFLUENCE_DOCS_ONLINE", "1")
    conf = runpy.run_path(str(ROOT / "doc" / "conf.py"))
    assert "sphinx.ext.intersphinx" in conf["extensions"]
    assert {"sklearn", "numpy", "lightgbm", "xgboost"} <= set(conf["intersphinx_mapping"])

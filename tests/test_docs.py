"""The Sphinx documentation builds without warnings."""

import pytest


def test_sphinx_builds(tmp_path):
    sphinx = pytest.importorskip("sphinx.cmd.build")
    pytest.importorskip("numpydoc")
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "doc"
    status = sphinx.build_main(
        [
            "-q",
            "-W",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(doc),
            str(tmp_path / "html"),
        ]
    )
    assert status == 0
    assert (tmp_path / "html" / "api.html").exists()

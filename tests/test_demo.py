"""The README's main job, ``python -m skinfluence``, runs end to end (quick mode)."""

import pytest

from skinfluence.__main__ import main

pytest.importorskip("pandas")


@pytest.mark.parametrize("library", ["sklearn", "lightgbm", "xgboost", "catboost"])
def test_demo_runs_end_to_end(library, capsys):
    assert main(["--quick", "--library", library, "--queries", "1"]) == 0
    out = capsys.readouterr().out
    assert "Reconstruction: 30 trees reproduce" in out
    assert "most helpful training rows" in out and "most harmful training rows" in out
    assert "flipped rows" in out and "after removing" in out


def test_demo_regression_and_own_csv(tmp_path, capsys):
    from skinfluence.datasets import load_dataset

    X, y, _ = load_dataset("concrete")
    X.assign(strength=y).to_csv(tmp_path / "mine.csv", index=False)
    assert main(["--quick", "--csv", str(tmp_path / "mine.csv"), "--target", "strength"]) == 0
    out = capsys.readouterr().out
    assert "regression" in out and "most helpful training rows" in out
    with pytest.raises(SystemExit):
        main(["--csv", str(tmp_path / "mine.csv"), "--target", "nope"])

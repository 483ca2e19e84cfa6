"""Small real data sets shipped with skinfluence (see ``README.md`` in this folder)."""

from pathlib import Path

import numpy as np

__all__ = ["load_dataset", "DATASETS"]

_HERE = Path(__file__).parent

#: name -> (file, target column, task)
DATASETS = {
    "concrete": ("concrete.csv", "compressive_strength", "regression"),
    "credit": ("credit_data.csv", "Status", "binary"),
    "spam": ("spam7.csv", "yesno", "binary"),
    "hpc": ("hpc_data.csv", "class", "multiclass"),
}


def load_dataset(name, *, as_frame=True, categorical="category"):
    """Load a bundled data set.

    Parameters
    ----------
    name : {"concrete", "credit", "spam", "hpc"}
    as_frame : bool, default=True
        Return a pandas DataFrame (needs pandas) or, if False, a float numpy array in
        which categorical columns are replaced by integer codes (NaN for missing).
    categorical : {"category", "codes"}, default="category"
        With ``as_frame=True``: keep string columns as pandas ``category`` dtype, or
        replace them by float codes (NaN for missing).

    Returns
    -------
    X : DataFrame or ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Float targets for regression, string labels for classification.
    task : str
        ``"regression"``, ``"binary"`` or ``"multiclass"``.

    Examples
    --------
    >>> from skinfluence.datasets import load_dataset
    >>> X, y, task = load_dataset("concrete")
    >>> X.shape, task
    ((1030, 8), 'regression')
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    from .._adapters._base import import_optional

    pd = import_optional("pandas")
    file, target, task = DATASETS[name]
    df = pd.read_csv(_HERE / file)
    y = df.pop(target).to_numpy()
    if task == "regression":
        y = y.astype(np.float64)
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            cat = df[col].astype("category")
            df[col] = cat if categorical == "category" else _codes(cat)
    if not as_frame:
        X = np.column_stack(
            [
                _codes(df[c])
                if isinstance(df[c].dtype, pd.CategoricalDtype)
                else df[c].to_numpy(dtype=np.float64)
                for c in df.columns
            ]
        )
        return X, y, task
    return df, y, task


def _codes(cat):
    codes = cat.cat.codes.to_numpy().astype(np.float64)
    codes[codes < 0] = np.nan
    return codes

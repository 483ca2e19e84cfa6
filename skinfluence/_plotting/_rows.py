"""The training rows behind one prediction: top-k selection, row ids, labels and the
features in which each row differs most from the query (shared by
:class:`InfluenceDisplay` and :func:`top_influences_frame`)."""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..base import _is_dataframe


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _series_row(x, like):
    """A pandas Series as a one-row DataFrame, with the dtypes of ``like`` (the
    training DataFrame) when it has the same columns."""
    row = x.to_frame().T
    if _is_dataframe(like) and hasattr(like, "dtypes") and list(like.columns) == list(row.columns):
        try:
            return row.astype(like.dtypes.to_dict())
        except (TypeError, ValueError):
            pass
    return row.infer_objects()


def one_query_row(x, caller, like=None):
    """The query as a 2-D input of exactly one row (a 1-D array, a pandas Series, which
    gets the dtypes of the training DataFrame ``like``, or a one-row array /
    DataFrame)."""
    if _is_dataframe(x):
        rows = x.shape[0]
    elif type(x).__module__.startswith("pandas") and hasattr(x, "to_frame"):
        x, rows = _series_row(x, like), 1
    else:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise ValueError(f"{caller} explains one query row; got an array of shape {x.shape}")
        rows = x.shape[0]
    if rows != 1:
        raise ValueError(
            f"{caller} explains one query row; got {rows} rows. Pass one row, e.g. "
            "X[[i]] (numpy) or X.iloc[[i]] (pandas)."
        )
    return x


def check_explainer(estimator, caller):
    """A fitted skinfluence influence estimator, and the number of rows it was fitted on."""
    if not all(hasattr(estimator, a) for a in ("transform", "self_influence", "top_k")):
        raise TypeError(
            f"{caller} needs a skinfluence influence estimator (e.g. BoostIn()), fitted on "
            f"the training data; got {type(estimator).__name__}"
        )
    check_is_fitted(estimator, "ensemble_")
    return len(estimator.get_feature_names_out())


def query_influence(estimator, x_query, y_query, X_train, caller):
    """The influence row of one query (1-D, one value per row given to ``fit``)."""
    n_fit = check_explainer(estimator, caller)
    if _n_rows(X_train) != n_fit:
        raise ValueError(
            f"X_train has {_n_rows(X_train)} rows but the explainer was fitted on {n_fit}: "
            "pass the training data given to its fit"
        )
    y = None if y_query is None else np.asarray(y_query).reshape(-1)
    if y is not None and len(y) != 1:
        raise ValueError(f"y_query must be one label for the one query row; got {len(y)}")
    return np.asarray(estimator.transform(x_query, y), dtype=np.float64)[0]


def top_rows(influence, k):
    """Positions and values of the (up to) ``k`` most helpful (> 0) and ``k`` most harmful
    (< 0) rows, all sorted by decreasing influence; ties go to the lower position, as in
    ``top_k``."""
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    pos = np.arange(len(influence))
    helpful = np.lexsort((pos, -influence))[:k]
    helpful = helpful[influence[helpful] > 0]
    harmful = np.lexsort((pos, influence))[:k]
    harmful = harmful[influence[harmful] < 0][::-1]
    idx = np.concatenate([helpful, harmful]).astype(np.int64)
    return idx, influence[idx]


def check_influence_row(influence, n_train, caller):
    """One finite row of influence values, one per training row."""
    v = np.asarray(influence, dtype=np.float64)
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 1:
        raise ValueError(
            f"{caller} takes the influence of one query (shape (n_train,)); got shape {v.shape}"
        )
    if len(v) != n_train:
        raise ValueError(f"influence has {len(v)} values but X_train has {n_train} rows")
    if not np.all(np.isfinite(v)):
        raise ValueError("influence contains NaN or infinite values")
    return v


def _columns(X):
    """The columns of a 2-D input as a list of 1-D arrays."""
    if _is_dataframe(X):
        return [np.asarray(X[c]) for c in X.columns]
    X = np.asarray(X)
    return [X[:, j] for j in range(X.shape[1])]


def feature_names_of(X_train, feature_names, n_features):
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != n_features:
            raise ValueError(f"feature_names has {len(names)} names for {n_features} features")
        return names
    if _is_dataframe(X_train):
        return [str(c) for c in X_train.columns]
    return [f"x{j}" for j in range(n_features)]


def _numeric(col):
    return col.dtype.kind in "fiu"


def _missing(v):
    return v is None or (isinstance(v, float | np.floating) and np.isnan(v))


def _distance(col, rows, q, scale):
    """Per shown row: how far its value is from the query's (0 = equal)."""
    vals = col[rows]
    if _numeric(col) and not _missing(q):
        d = np.abs(vals.astype(float) - float(q)) / scale
        return np.where(np.isnan(d), 1.0, d)
    return np.array([0.0 if (_missing(v) and _missing(q)) or v == q else 1.0 for v in vals])


def fmt(v):
    if _missing(v):
        return "NaN"
    if isinstance(v, float | np.floating):
        return f"{v:.4g}"
    return str(v)


def differences(X_train, x_query, rows, names, n_differences):
    """For each row position: the ``n_differences`` features whose values differ most
    from the query's, as text ``"name=value (query value)"``.

    Numeric features are compared in units of their standard deviation over
    ``X_train`` (a missing value on one side counts as one); other features differ or
    not (one unit).
    """
    cols, qcols = _columns(X_train), _columns(x_query)
    if len(qcols) != len(cols):
        raise ValueError(f"x_query has {len(qcols)} features but X_train has {len(cols)}")
    dist = np.zeros((len(rows), len(cols)))
    for j, (col, qcol) in enumerate(zip(cols, qcols)):
        scale = 1.0
        if _numeric(col):
            s = np.nanstd(col.astype(float)) if np.any(~np.isnan(col.astype(float))) else 0
            scale = s if np.isfinite(s) and s > 0 else 1.0
        dist[:, j] = _distance(col, rows, qcol[0], scale)
    texts = []
    for r, row in enumerate(rows):
        order = [j for j in np.argsort(-dist[r], kind="stable") if dist[r, j] > 0]
        parts = [
            f"{names[j]}={fmt(cols[j][row])} (query {fmt(qcols[j][0])})"
            for j in order[:n_differences]
        ]
        texts.append(", ".join(parts) if parts else "same features as the query")
    return texts


def row_ids(X_train, rows):
    """The DataFrame index labels of the rows (positions for arrays)."""
    index = getattr(X_train, "index", None)
    if index is not None and _is_dataframe(X_train) and hasattr(index, "to_numpy"):
        return np.asarray(index.to_numpy()[rows])
    return np.asarray(rows)


def labels_of(y_train, rows, n_train):
    if y_train is None:
        return None
    y = np.asarray(y_train)
    if y.ndim != 1 or len(y) != n_train:
        raise ValueError(
            f"y_train must be 1-D with one label per training row ({n_train}); got shape {y.shape}"
        )
    return y[rows]


def explain_rows(influence, X_train, y_train, x_query, k, feature_names, n_differences, caller):
    """Everything shown about the top rows of one query: a dict of ``positions``,
    ``rows`` (ids), ``influence``, ``labels``, ``differences`` and ``feature_names``."""
    if not _is_dataframe(X_train):
        X_train = np.asarray(X_train)
        if X_train.ndim != 2:
            raise ValueError(f"X_train must be 2-D; got shape {X_train.shape}")
    n_train = _n_rows(X_train)
    influence = check_influence_row(influence, n_train, caller)
    x_query = one_query_row(x_query, caller, like=X_train)
    pos, vals = top_rows(influence, k)
    names = feature_names_of(X_train, feature_names, X_train.shape[1])
    return {
        "positions": pos,
        "rows": row_ids(X_train, pos),
        "influence": vals,
        "labels": labels_of(y_train, pos, n_train),
        "differences": differences(X_train, x_query, pos, names, n_differences),
        "feature_names": names,
    }

"""Scratch experiments for issue 17 item 3: a method that beats the published ones?

Run from the repository root::

    PYTHONPATH=$PWD nice -n 10 python benchmarks/experiments/new_method.py run --group dev
    PYTHONPATH=$PWD nice -n 10 python benchmarks/experiments/new_method.py summary --group dev

Protocol (the paper's single-query removal): for each query, rank the training rows by
the method (most helpful first), remove the top 0.5, 1, 2 and 5%, retrain, and record
the query's loss; per (setting, query, fraction) the methods are ranked (1 = highest
loss = best). Noise: flip labels (40% classification, 20% regression), score the rows,
and measure the share of noisy rows among the checked 5..30% (detection area).

Data split, declared before any result was looked at:

* dev (prototyping, may be looked at any number of times): concrete, spam,
  breast_cancer, friedman1 (synthetic regression), synth_binary (synthetic), iris.
* held-out (evaluated once at the end): diabetes, credit, digits_binary, hpc, wine.

Every (data set, seed) pair is a setting; results are cached per (setting, method) in
``/tmp/new_method_cache`` so that candidates can be added without re-running the
published methods.
"""

import argparse
import json
import os
import pickle
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import PUBLISHED as REPORT_PUBLISHED  # noqa: E402
from report import load as report_load  # noqa: E402
from report import split_rows  # noqa: E402
from sklearn.base import clone  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from skinfluence import evaluation as ev  # noqa: E402
from skinfluence import testing  # noqa: E402

CACHE = Path(os.environ.get("NEW_METHOD_CACHE", "/tmp/new_method_cache"))
GROUPS = {
    "dev": ("concrete", "spam", "breast_cancer", "friedman1", "synth_binary", "iris"),
    "heldout": ("diabetes", "credit", "digits_binary", "hpc", "wine"),
}
FRACTIONS = (0.005, 0.01, 0.02, 0.05)
CFG = {"n_rows": 500, "n_queries": 20, "n_trees": 40}


# -------------------------------------------------------------------------- data
def load(name, n_rows, seed):
    """report.py's data sets, plus three of this study's own (digits as a binary task,
    Friedman #1 and a synthetic binary task)."""
    from sklearn import datasets as skd

    if name == "digits_binary":
        X, y = skd.load_digits(return_X_y=True)
        return split_rows(X, (y >= 5).astype(int), "binary", n_rows, seed)
    if name == "friedman1":
        X, y = skd.make_friedman1(n_samples=1200, noise=1.0, random_state=0)
        return split_rows(X, y, "regression", n_rows, seed)
    if name == "synth_binary":
        X, y = skd.make_classification(
            n_samples=1200, n_features=10, n_informative=5, flip_y=0.05, random_state=0
        )
        return split_rows(X, y, "binary", n_rows, seed)
    return report_load(name, n_rows, seed)


def make_model(task, n_trees, lib="lightgbm"):
    shape = {
        "lightgbm": {"num_leaves": 15, "min_child_samples": 5},
        "sklearn_hgb": {"max_leaf_nodes": 15, "min_samples_leaf": 5},
        "xgboost": {"max_depth": 4, "tree_method": "hist"},
    }[lib]
    return testing.make_model(
        lib, task, n_estimators=n_trees, learning_rate=0.1, random_state=1, **shape
    )


# ------------------------------------------------------------------------ methods
def published(name):
    from skinfluence import _baselines, _boostin, _leaf_influence, _retrain, _similarity, _trex

    return {
        "BoostIn": lambda: _boostin.BoostIn(),
        "BoostIn (exact)": lambda: _boostin.BoostIn(derivative="exact"),
        "LeafInfluence": lambda: _leaf_influence.LeafInfluence(),
        "LeafRefit": lambda: _leaf_influence.LeafRefit(),
        "TREX": lambda: _trex.TREX(),
        "LeafSim": lambda: _similarity.LeafSim(),
        "TreeSim": lambda: _similarity.TreeSim(),
        "LOO": lambda: _retrain.LOO(n_jobs=1),
        "SubSample": lambda: _retrain.SubSample(n_iter=300, n_jobs=1),
        "Random": lambda: _baselines.RandomInfluence(),
    }[name]()


PUBLISHED = REPORT_PUBLISHED + ("Random",)
SELF_RANKED = {"BoostIn", "BoostIn (exact)"}


class _State:
    """What the prototypes need from the fitted model: leaves, gradients, paths."""

    def __init__(self, model, Xtr, ytr, Xq, yq):
        from skinfluence._boostin import BoostIn

        exp = BoostIn(model).fit(Xtr, ytr)
        self.exp = exp
        self.Xtr, self.ytr = Xtr, ytr
        ens = exp.ensemble_
        self.ens = ens
        self.L = exp._train_leaves.astype(np.int64)  # (n, T)
        self.y = exp._explained_labels
        self.g, self.h, _, _ = ens.replay(exp._train_leaves, self.y)
        self.D = exp.derivatives_  # published BoostIn derivatives (n, T)
        self.T = self.L.shape[1]
        self.n = self.L.shape[0]
        self.off = ens.leaf_offsets
        self.flat = self.L + self.off[:-1]
        self.counts = np.bincount(self.flat.ravel(), minlength=int(self.off[-1]))
        self.eta = ens.learning_rates
        self.lam = ens.l2
        self.values = ens.leaf_values
        if Xq is not None:
            self.set_queries(Xq, yq)

    def set_queries(self, Xq, yq):
        ens = self.ens
        self.Xq, self.yq_raw = Xq, yq
        self.task = (
            "regression" if ens.is_regression else ("binary" if ens.n_outputs == 1 else "multi")
        )
        lq = ens.leaf_ids(Xq)
        yq_enc = np.asarray(self.exp._round_labels(self.exp._encode_y(yq)), dtype=np.float64)
        self.yq = yq_enc
        self.Lq = lq.astype(np.int64)
        self.gq, self.hq, _, _ = ens.replay(lq, yq_enc)
        self.flatq = self.Lq + self.off[:-1]


def _same(S, e):
    """(n, T) boolean: training row shares the leaf of query e in tree t."""
    return S.flat == S.flatq[e][None, :]


def _label_sign(S, e):
    if S.ens.is_regression:
        return None
    return np.where(S.y == S.yq[e], 1.0, -1.0)


def m_boostin_leafsim(S):
    """(c) z-scored sum of published BoostIn and LeafSim."""
    out = np.empty((len(S.yq), S.n))
    w2 = 1.0 / np.maximum(S.counts, 1) ** 2
    for e in range(len(S.yq)):
        same = _same(S, e)
        b = (same * S.D * S.gq[e][None, :]).sum(1)
        ls = (same * w2[S.flat]).sum(1)
        ls = ls * _sign_vector(S, e, None)
        out[e] = b / (b.std() + 1e-300) + ls / (ls.std() + 1e-300)
    return out


def _lca_weights(S, power=2.0):
    """Per tree, W[t][a, b] = 1 / n(LCA of leaves a, b) ** power (n = training rows
    under the node; the LCA of a leaf with itself is the leaf)."""
    ens = S.ens
    ind, nodes, noff = ens.path_indptr, ens.path_nodes, ens.node_offsets
    n_nodes = int(noff[-1])
    node_count = np.zeros(n_nodes)
    for j in range(int(S.off[-1])):
        node_count[nodes[ind[j] : ind[j + 1]]] += S.counts[j]
    Ws = []
    for t in range(S.T):
        lo, hi = int(S.off[t]), int(S.off[t + 1])
        k = hi - lo
        W = np.zeros((k, k))
        paths = [nodes[ind[lo + a] : ind[lo + a + 1]] for a in range(k)]
        for a in range(k):
            for b in range(k):
                if a == b:
                    c = S.counts[lo + a]
                else:
                    pa, pb = paths[a], paths[b]
                    m = min(len(pa), len(pb))
                    d = 0
                    while d < m and pa[d] == pb[d]:
                        d += 1
                    c = node_count[pa[d - 1]] if d > 0 else S.n
                W[a, b] = 1.0 / max(c, 1) ** power
        Ws.append(W)
    return Ws


def _sign_vector(S, e, b):
    sgn = _label_sign(S, e)
    if sgn is None:  # regression: LeafSim's rule around the query's prediction
        p = S.ens.raw_from_leaves(S.Lq[e : e + 1].astype(np.int32))[0, 0]
        se = 1.0 if p >= S.yq[e] else -1.0
        si = np.where(S.y >= p, 1.0, -1.0)
        sgn = np.where(se != si, 1.0, -1.0)
    return sgn


def m_pathsim(S):
    """(a) LeafSim with ancestor credit: sum_t 1 / n(LCA_t(i, e))**2, label-signed."""
    Ws = _lca_weights(S)
    out = np.empty((len(S.yq), S.n))
    for e in range(len(S.yq)):
        sim = np.zeros(S.n)
        for t in range(S.T):
            sim += Ws[t][S.Lq[e, t], S.L[:, t]]
        out[e] = sim * _sign_vector(S, e, None)
    return out


def _loss(task, yq, F):
    """Query loss at raw scores F (K,) (squared error / logistic / softmax)."""
    if task == "regression":
        return 0.5 * (yq - F[..., 0]) ** 2
    if F.shape[-1] == 1:
        z = F[..., 0]
        return np.logaddexp(0, z) - (yq == 1) * z
    mx = F.max(-1, keepdims=True)
    lse = mx[..., 0] + np.log(np.exp(F - mx).sum(-1))
    return lse - F[..., int(yq)]


def _greedy_rank(S, e, k_max, fallback, task):
    """Greedy set selection under the fixed-structure, no-propagation refit: each
    tree's query leaf is a Newton step over its remaining rows; pick the row whose
    removal raises the query loss most given the rows already picked."""
    same = _same(S, e)  # (n, T)
    fl = S.flatq[e]
    G0 = np.bincount(S.flat.ravel(), weights=S.g.ravel(), minlength=int(S.off[-1]))[fl]
    H0 = np.bincount(S.flat.ravel(), weights=S.h.ravel(), minlength=int(S.off[-1]))[fl]
    lam = S.lam[fl]
    eta = S.eta
    v0 = S.values[fl]
    K = S.ens.n_outputs
    col = np.arange(S.T) % K
    F0 = S.ens.raw_from_leaves(S.Lq[e : e + 1].astype(np.int32))[0]
    gm = np.where(same, S.g, 0.0)
    hm = np.where(same, S.h, 0.0)
    Gs = np.zeros(S.T)
    Hs = np.zeros(S.T)
    taken = np.zeros(S.n, dtype=bool)
    order = []
    onehot = np.eye(K)[col]  # (T, K)
    for _ in range(k_max):
        G = G0 - Gs - gm  # (n, T)
        H = H0 - Hs - hm
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(H + lam > 1e-12, -eta * G / (H + lam), 0.0)
        F = F0[None, :] + (v - v0[None, :]) @ onehot  # (n, K)
        L = _loss(task, S.yq[e], F)
        L[taken] = -np.inf
        if not np.isfinite(L).any():
            break
        i = int(np.argmax(L))
        order.append(i)
        taken[i] = True
        Gs += gm[i]
        Hs += hm[i]
    rest = [i for i in np.argsort(-fallback, kind="stable") if not taken[i]]
    return np.array(order + rest)


def m_greedy(S):
    """(b, d) greedy fixed-structure set removal; tail by published BoostIn."""
    task = S.task
    k_max = int(np.floor(max(FRACTIONS) * S.n + 1e-9))
    out = np.empty((len(S.yq), S.n))
    for e in range(len(S.yq)):
        b = (_same(S, e) * S.D * S.gq[e][None, :]).sum(1)
        order = _greedy_rank(S, e, k_max, b, task)
        out[e, order] = np.arange(S.n, 0, -1, dtype=np.float64)
    return out


def m_boostin_w2(S):
    """BoostIn x 1/n_leaf^2 (the paper's BoostInW2, an option of BoostIn)."""
    from skinfluence._boostin import BoostIn

    return (
        BoostIn(S.exp.estimator_, leaf_scaling="inverse_size_squared")
        .fit(S.Xtr, S.ytr)
        .transform(S.Xq, S.yq_raw)
    )


def m_boostin_w1(S):
    from skinfluence._boostin import BoostIn

    return (
        BoostIn(S.exp.estimator_, leaf_scaling="inverse_size")
        .fit(S.Xtr, S.ytr)
        .transform(S.Xq, S.yq_raw)
    )


# ------------------------------------------------ fixed-structure refit and adjoint
def _grad_hess(task, F, y, c):
    """g, h (n, K) and, for the adjoint, p (multiclass probabilities) at scores F."""
    if task == "regression":
        return F - y[:, None], np.ones_like(F), None
    if task == "binary":
        p = 1.0 / (1.0 + np.exp(-F))
        return p - y[:, None], p * (1 - p), p
    mx = F.max(1, keepdims=True)
    p = np.exp(F - mx)
    p /= p.sum(1, keepdims=True)
    Y = np.eye(F.shape[1])[y.astype(int)]
    return p - Y, c * p * (1 - p), p


def refit_forward(S, w):
    """Every leaf re-fitted as a Newton step over the rows weighted by ``w``, tree
    after tree (structure fixed, the effect followed through later trees). Returns
    the per-tree leaf values, gradients, hessians and probabilities for the adjoint."""
    ens = S.ens
    K = ens.n_outputs
    c = ens.multiclass_factor
    F = np.tile(ens.bias, (S.n, 1)).astype(np.float64)
    const = ens.constant_tree if ens.constant_tree is not None else np.zeros(S.T, bool)
    vals = np.array(S.values, dtype=np.float64)
    keep = {"g": [], "h": [], "p": [], "H": []}
    for t in range(S.T):
        k = t % K
        if k == 0:  # the K trees of a round share the gradients at its start
            g, h, p = _grad_hess(S.task, F, S.y, c)
        lo, hi = int(S.off[t]), int(S.off[t + 1])
        leaf = S.L[:, t]
        G = np.bincount(leaf, weights=w * g[:, k], minlength=hi - lo)
        H = np.bincount(leaf, weights=w * h[:, k], minlength=hi - lo)
        if not const[t]:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(H + S.lam[lo:hi] > 0, -S.eta[t] * G / (H + S.lam[lo:hi]), 0.0)
            vals[lo:hi] = v
        F[:, k] += vals[lo:hi][leaf]
        keep["g"].append(g[:, k].copy())
        keep["h"].append(h[:, k].copy())
        keep["p"].append(p)
        keep["H"].append(H)
    keep["vals"] = vals
    return keep


def _query_grad(S, vals, rows):
    """dL/dF (m, K) of the queries ``rows`` at the model with leaf values ``vals``."""
    K = S.ens.n_outputs
    Fq = np.tile(S.ens.bias, (len(rows), 1)).astype(np.float64)
    for t in range(S.T):
        Fq[:, t % K] += vals[S.flatq[rows, t]]
    g, _, _ = _grad_hess(S.task, Fq, S.yq[rows], 1.0)
    return g


def refit_adjoint(S, w, fw, rows):
    """d loss(query) / d w_i (n, m) of the fixed-structure refit at weights ``w``."""
    ens = S.ens
    K = ens.n_outputs
    c = ens.multiclass_factor
    m = len(rows)
    const = ens.constant_tree if ens.constant_tree is not None else np.zeros(S.T, bool)
    vals = fw["vals"]
    bq = _query_grad(S, vals, rows)  # (m, K)
    bF = np.zeros((K, S.n, m))
    bw = np.zeros((S.n, m))
    for r in range(S.T // K - 1, -1, -1):
        upd = []  # the round's terms, applied after all its trees read bF (after round)
        for k in range(K):
            t = r * K + k
            if const[t]:
                continue
            lo, hi = int(S.off[t]), int(S.off[t + 1])
            leaf = S.L[:, t]
            bv = np.zeros((hi - lo, m))
            np.add.at(bv, leaf, bF[k])
            np.add.at(bv, (S.Lq[rows, t], np.arange(m)), bq[:, k])
            den = fw["H"][t] + S.lam[lo:hi]
            with np.errstate(divide="ignore", invalid="ignore"):
                bG = np.where(den[:, None] > 0, bv * (-S.eta[t] / den)[:, None], 0.0)
                bH = np.where(den[:, None] > 0, bv * (-vals[lo:hi] / den)[:, None], 0.0)
            bGr, bHr = bG[leaf], bH[leaf]  # (n, m)
            bw += bGr * fw["g"][t][:, None] + bHr * fw["h"][t][:, None]
            upd.append((t, k, bGr, bHr))
        for t, k, bGr, bHr in upd:
            if S.task == "regression":  # dg/dF = 1, dh/dF = 0
                bF[0] += w[:, None] * bGr
            elif S.task == "binary":
                p = fw["p"][t][:, 0]
                dg = p * (1 - p)
                dh = dg * (1 - 2 * p)
                bF[0] += w[:, None] * (bGr * dg[:, None] + bHr * dh[:, None])
            else:
                p = fw["p"][t]
                pk = p[:, k]
                for k2 in range(K):
                    d = (1.0 if k2 == k else 0.0) - p[:, k2]
                    dg = pk * d
                    dh = c * (1 - 2 * pk) * pk * d
                    bF[k2] += w[:, None] * (bGr * dg[:, None] + bHr * dh[:, None])
    return bw


def m_leafinf_adjoint(S):
    """Check: LeafInfluence recomputed by the numpy adjoint (should equal it)."""
    w = np.ones(S.n)
    fw = refit_forward(S, w)
    return -refit_adjoint(S, w, fw, np.arange(len(S.yq))).T


def _schedule(k_max):
    out, tot, c = [], 0, 1
    while tot < k_max:
        out.append(min(c, k_max - tot))
        tot += out[-1]
        c = 1 if len(out) < 2 else 2 * c
    return out


def m_adaptive(S):
    """(b) Re-linearised LeafInfluence: remove the top chunk, refit the fixed
    structure without it, recompute the derivative, repeat (chunks 1, 1, 2, 4, ...)."""
    k_max = int(np.floor(max(FRACTIONS) * S.n + 1e-9))
    w1 = np.ones(S.n)
    fw1 = refit_forward(S, w1)
    base = -refit_adjoint(S, w1, fw1, np.arange(len(S.yq))).T
    out = np.empty((len(S.yq), S.n))
    for e in range(len(S.yq)):
        w = w1.copy()
        infl = base[e].copy()
        order = []
        for j, c in enumerate(_schedule(k_max)):
            if j > 0:
                fw = refit_forward(S, w)
                infl = -refit_adjoint(S, w, fw, np.array([e]))[:, 0]
            infl[w == 0] = -np.inf
            top = np.argsort(-infl, kind="stable")[:c]
            order.extend(top.tolist())
            w[top] = 0.0
        infl[w == 0] = -np.inf
        rest = [i for i in np.argsort(-infl, kind="stable") if w[i] != 0]
        order = np.array(order + rest)
        out[e, order] = np.arange(S.n, 0, -1, dtype=np.float64)
    return out


def _boostin_at(S, w, fw, e):
    """Published BoostIn of query e at the fixed-structure refit with weights w."""
    K = S.ens.n_outputs
    vals = fw["vals"]
    Fq = np.array(S.ens.bias, dtype=np.float64)
    infl = np.zeros(S.n)
    for t in range(S.T):
        k = t % K
        if k == 0:
            gq, _, _ = _grad_hess(S.task, Fq[None, :], S.yq[e : e + 1], 1.0)
        lo = int(S.off[t])
        lq = S.Lq[e, t]
        v = vals[lo + lq]
        rows = S.L[:, t] == lq
        den = fw["H"][t][lq] + S.lam[lo + lq]
        if den > 0 and v != 0:
            d = S.eta[t] * w[rows] * (fw["g"][t][rows] + v * fw["h"][t][rows]) / den
            infl[rows] += gq[0, k] * d
        Fq[k] += v
    return infl


def m_adaptive_boostin(S):
    """(b) Re-linearised BoostIn: after each chunk, refit the fixed structure without
    the removed rows and recompute BoostIn on that trajectory (chunks 1, 1, 2, 4...)."""
    k_max = int(np.floor(max(FRACTIONS) * S.n + 1e-9))
    w1 = np.ones(S.n)
    out = np.empty((len(S.yq), S.n))
    for e in range(len(S.yq)):
        w = w1.copy()
        b0 = (_same(S, e) * S.D * S.gq[e][None, :]).sum(1)
        infl = b0.copy()
        order = []
        for j, c in enumerate(_schedule(k_max)):
            if j > 0:
                infl = _boostin_at(S, w, refit_forward(S, w), e)
            infl[w == 0] = -np.inf
            top = np.argsort(-infl, kind="stable")[:c]
            order.extend(top.tolist())
            w[top] = 0.0
        infl[w == 0] = -np.inf
        rest = [i for i in np.argsort(-infl, kind="stable") if w[i] != 0]
        out[e, np.array(order + rest)] = np.arange(S.n, 0, -1, dtype=np.float64)
    return out


def _z(x, mask=None):
    m = np.isfinite(x) if mask is None else mask
    sd = x[m].std()
    return x / (sd if sd > 0 else 1.0)


def _leafsim_at(S, w, e, sgn):
    """LeafSim of query e with leaf sizes counted over the rows of weight > 0."""
    keep = w > 0
    counts = np.bincount(S.flat[keep].ravel(), minlength=int(S.off[-1]))
    w2 = 1.0 / np.maximum(counts, 1) ** 2
    return (_same(S, e) * w2[S.flat]).sum(1) * sgn * keep


def m_consensus3(S):
    """(c) z-scored sum of published BoostIn, LeafSim and LeafInfluence."""
    w = np.ones(S.n)
    li = -refit_adjoint(S, w, refit_forward(S, w), np.arange(len(S.yq))).T
    out = np.empty((len(S.yq), S.n))
    for e in range(len(S.yq)):
        b = (_same(S, e) * S.D * S.gq[e][None, :]).sum(1)
        ls = _leafsim_at(S, w, e, _sign_vector(S, e, None))
        out[e] = _z(b) + _z(ls) + _z(li[e])
    return out


def m_adaptive_boostin_leafsim(S):
    """(b + c) BoostIn+LeafSim re-scored after each chunk at the fixed-structure refit
    without the rows taken (BoostIn on the refit trajectory, LeafSim on the remaining
    leaf sizes)."""
    k_max = int(np.floor(max(FRACTIONS) * S.n + 1e-9))
    out = np.empty((len(S.yq), S.n))
    for e in range(len(S.yq)):
        sgn = _sign_vector(S, e, None)
        w = np.ones(S.n)
        order = []
        for j, c in enumerate(_schedule(k_max)):
            if j == 0:
                b = (_same(S, e) * S.D * S.gq[e][None, :]).sum(1)
            else:
                b = _boostin_at(S, w, refit_forward(S, w), e)
            keep = w > 0
            score = _z(b, keep) + _z(_leafsim_at(S, w, e, sgn), keep)
            score[~keep] = -np.inf
            top = np.argsort(-score, kind="stable")[:c]
            order.extend(top.tolist())
            w[top] = 0.0
        score[w == 0] = -np.inf
        rest = [i for i in np.argsort(-score, kind="stable") if w[i] != 0]
        out[e, np.array(order + rest)] = np.arange(S.n, 0, -1, dtype=np.float64)
    return out


CANDIDATES = {
    "BoostIn+LeafSim": m_boostin_leafsim,
    "PathSim": m_pathsim,
    "Greedy": m_greedy,
    "BoostInW1": m_boostin_w1,
    "BoostInW2": m_boostin_w2,
    "LeafInfAdjoint": m_leafinf_adjoint,
    "Adaptive": m_adaptive,
    "AdaptiveBoostIn": m_adaptive_boostin,
    "Consensus3": m_consensus3,
    "AdaptiveBoostIn+LeafSim": m_adaptive_boostin_leafsim,
}


# --------------------------------------------------------------------- evaluation
def setting_key(ds, seed, lib):
    return f"{ds}__{seed}__{lib}"


def prepare(ds, seed, lib):
    Xtr, ytr, Xte, yte, task = load(ds, CFG["n_rows"], seed)
    model = make_model(task, CFG["n_trees"], lib)
    rng = np.random.default_rng(seed)
    q = rng.choice(len(yte), size=min(CFG["n_queries"], len(yte)), replace=False)
    return Xtr, ytr, Xte, yte, task, model, q


def influence_matrix(name, model_fit, Xtr, ytr, Xq, yq):
    """(n_query, n_train) influence (positive = helpful) and seconds."""
    t0 = time.perf_counter()
    if name in CANDIDATES:
        S = _State(model_fit, Xtr, ytr, Xq, yq)
        M = CANDIDATES[name](S)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = published(name).set_params(estimator=model_fit).fit(Xtr, ytr)
            M = exp.transform(Xq, yq)
    return np.asarray(M, dtype=np.float64), time.perf_counter() - t0


def run_removal(ds, seed, lib, name):
    path = CACHE / "remove" / f"{setting_key(ds, seed, lib)}__{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    Xtr, ytr, Xte, yte, task, model, q = prepare(ds, seed, lib)
    with threadpool_limits(limits=1):
        full = clone(model).fit(Xtr, ytr)
    M, secs = influence_matrix(name, full, Xtr, ytr, Xte[q], yte[q])
    res = ev.single_query_curve(
        model, Xtr, ytr, Xte[q], yte[q], M, fractions=(0.0,) + FRACTIONS, n_jobs=1
    )
    res = res[res["fraction"] > 0][["query", "fraction", "loss", "loss_change"]].copy()
    out = {"table": res, "seconds": secs, "task": task}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def noise_scores_fn(name):
    """Suspicion scores (higher = more suspicious) from a method."""

    def scores(model, X, y_noisy, Xv, yv):
        if name in CANDIDATES_NOISE:
            S = _State(model, X, y_noisy, Xv, yv)
            return CANDIDATES_NOISE[name](S)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = published(name).set_params(estimator=model).fit(X, y_noisy)
            if name in SELF_RANKED:
                return exp.self_influence()
            return -np.asarray(exp.global_influence(Xv, yv))

    return scores


def n_selfout(S):
    """Loss of each training row under the fixed-structure model refit without it
    (every leaf a Newton step over the other rows; no propagation): a leave-self-out
    loss, higher = more suspicious."""
    nl = int(S.off[-1])
    G = np.bincount(S.flat.ravel(), weights=S.g.ravel(), minlength=nl)[S.flat]
    H = np.bincount(S.flat.ravel(), weights=S.h.ravel(), minlength=nl)[S.flat]
    lam = S.lam[S.flat]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(H - S.h + lam > 1e-12, -S.eta * (G - S.g) / (H - S.h + lam), 0.0)
    K = S.ens.n_outputs
    onehot = np.eye(K)[np.arange(S.T) % K]
    F = S.ens.raw_from_leaves(S.L.astype(np.int32)) + (v - S.values[S.flat]) @ onehot
    task = S.task
    if task == "regression":
        return 0.5 * (S.y - F[:, 0]) ** 2
    if K == 1:
        z = F[:, 0]
        return np.logaddexp(0, z) - (S.y == 1) * z
    mx = F.max(1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(F - mx).sum(1))
    return lse - F[np.arange(S.n), S.y.astype(int)]


def n_loss(S):
    """The training row's own loss (reference: the Loss baseline)."""
    F = S.ens.raw_from_leaves(S.L.astype(np.int32))
    K = S.ens.n_outputs
    if S.task == "regression":
        return 0.5 * (S.y - F[:, 0]) ** 2
    if K == 1:
        z = F[:, 0]
        return np.logaddexp(0, z) - (S.y == 1) * z
    mx = F.max(1, keepdims=True)
    return mx[:, 0] + np.log(np.exp(F - mx).sum(1)) - F[np.arange(S.n), S.y.astype(int)]


def n_pathsim(S):
    return -m_pathsim(S).sum(0)


def n_boostin_leafsim(S):
    return -m_boostin_leafsim(S).sum(0)


def _adaptive_global(S, k_max, score_at):
    """Rows by descending harm, re-scored after each chunk at the fixed-structure
    refit without the rows already taken (chunks 1, 1, 2, 4, ...)."""
    w = np.ones(S.n)
    order = []
    harm = None
    for c in _schedule(k_max):
        harm = score_at(w)
        harm[w == 0] = -np.inf
        top = np.argsort(-harm, kind="stable")[:c]
        order.extend(top.tolist())
        w[top] = 0.0
    harm[w == 0] = -np.inf
    rest = [i for i in np.argsort(-harm, kind="stable") if w[i] != 0]
    scores = np.empty(S.n)
    scores[np.array(order + rest)] = np.arange(S.n, 0, -1, dtype=np.float64)
    return scores


def n_adaptive_global(S):
    """Re-linearised global LeafInfluence on the validation rows (harm = -influence)."""
    rows = np.arange(len(S.yq))

    def harm(w):
        fw = refit_forward(S, w)
        return refit_adjoint(S, w, fw, rows).sum(1)  # d loss / d w: removal helps if > 0

    return _adaptive_global(S, int(0.3 * S.n), harm)


def n_adaptive_boostin_global(S):
    def harm(w):
        fw = refit_forward(S, w)
        return -sum(_boostin_at(S, w, fw, e) for e in range(len(S.yq)))

    return _adaptive_global(S, int(0.3 * S.n), harm)


def n_leafinf_global(S):
    """Check: global LeafInfluence by the adjoint (should equal the library's)."""
    w = np.ones(S.n)
    return refit_adjoint(S, w, refit_forward(S, w), np.arange(len(S.yq))).sum(1)


def n_consensus3(S):
    """Global form of Consensus3 on the validation rows: harm = -(z(BoostIn global) +
    z(LeafSim global) + z(LeafInfluence global))."""
    w = np.ones(S.n)
    rows = np.arange(len(S.yq))
    li = -refit_adjoint(S, w, refit_forward(S, w), rows).sum(1)
    b = np.zeros(S.n)
    ls = np.zeros(S.n)
    for e in rows:
        b += (_same(S, e) * S.D * S.gq[e][None, :]).sum(1)
        ls += _leafsim_at(S, w, e, _sign_vector(S, e, None))
    return -(_z(b) + _z(ls) + _z(li))


CANDIDATES_NOISE = {
    "Consensus3": n_consensus3,
    "AdaptiveGlobal": n_adaptive_global,
    "AdaptiveBoostInGlobal": n_adaptive_boostin_global,
    "LeafInfGlobalAdjoint": n_leafinf_global,
    "SelfOut": n_selfout,
    "Loss": n_loss,
    "PathSim": n_pathsim,
    "BoostIn+LeafSim": n_boostin_leafsim,
}


def run_noise(ds, seed, lib, name, fractions=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3)):
    path = CACHE / "noise" / f"{setting_key(ds, seed, lib)}__{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    Xtr, ytr, Xte, yte, task, model, q = prepare(ds, seed, lib)
    Xv, yv, Xh, yh = ev.split_validation(Xte, yte, task=task, random_state=seed)
    fn = noise_scores_fn(name)
    t0 = time.perf_counter()
    res = ev.noise_detection(
        model,
        Xtr,
        ytr,
        Xh,
        yh,
        lambda m, X, yn: fn(m, X, yn, Xv, yv),
        noise_fraction=0.4 if task != "regression" else 0.2,
        fractions=(0.0,) + tuple(fractions),
        validation=(Xv, yv),
        random_state=seed,
        n_jobs=1,
    )
    out = {
        "detection_area": res.attrs["detection_area"],
        "roc_auc": res.attrs["roc_auc"],
        "fraction_found": dict(zip(res["fraction"], res["fraction_found"])),
        "loss": dict(zip(res["fraction"], res["loss"])),
        "seconds": time.perf_counter() - t0,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


# ------------------------------------------------------------------------ summary
def removal_frame(datasets, seeds, lib, methods):
    import pandas as pd

    rows = []
    for ds in datasets:
        for seed in seeds:
            for m in methods:
                path = CACHE / "remove" / f"{setting_key(ds, seed, lib)}__{m}.pkl"
                if not path.exists():
                    continue
                r = pickle.loads(path.read_bytes())
                t = r["table"].assign(dataset=ds, seed=seed, method=m, seconds=r["seconds"])
                rows.append(t)
    return pd.concat(rows, ignore_index=True) if rows else None


def summarize_removal(df, methods, ours):
    from scipy.stats import wilcoxon

    df = df[df["method"].isin(methods)]
    key = ["dataset", "seed", "query", "fraction"]
    wide = df.pivot_table(index=key, columns="method", values="loss").dropna()
    ranks = wide.drop(columns=[c for c in ["Random"] if c in wide], errors="ignore").rank(
        axis=1, ascending=False
    )
    out = {"mean_rank": ranks.mean().sort_values().to_dict(), "n_cases": len(wide)}
    out["mean_rank_by_fraction"] = {
        str(f): g.mean().sort_values().round(3).to_dict()
        for f, g in ranks.groupby(level="fraction")
    }
    out["mean_rank_by_dataset"] = {
        ds: g.mean().sort_values().round(3).to_dict() for ds, g in ranks.groupby(level="dataset")
    }
    tests = {}
    for o in ours:
        if o not in wide:
            continue
        tests[o] = {}
        for m in wide.columns:
            if m == o:
                continue
            d = wide[o] - wide[m]  # higher loss = better for o
            nz = d[d != 0]
            p = wilcoxon(nz, alternative="greater").pvalue if len(nz) > 10 else np.nan
            tests[o][m] = {
                "win_share": float((d > 0).mean()),
                "tie_share": float((d == 0).mean()),
                "mean_diff": float(d.mean()),
                "p_greater": float(p),
                "rank_diff": float(ranks[o].mean() - ranks[m].mean()) if m in ranks else np.nan,
            }
    out["tests"] = tests
    sec = df.groupby(["method", "dataset", "seed"])["seconds"].first().groupby("method").median()
    out["median_seconds"] = sec.to_dict()
    return out


def noise_frame(datasets, seeds, lib, methods):
    import pandas as pd

    rows = []
    for ds in datasets:
        for seed in seeds:
            for m in methods:
                path = CACHE / "noise" / f"{setting_key(ds, seed, lib)}__{m}.pkl"
                if not path.exists():
                    continue
                r = pickle.loads(path.read_bytes())
                rows.append(
                    {
                        "dataset": ds,
                        "seed": seed,
                        "method": m,
                        "detection_area": r["detection_area"],
                        "roc_auc": r["roc_auc"],
                        **{f"found_{k}": v for k, v in r["fraction_found"].items() if k > 0},
                    }
                )
    return pd.DataFrame(rows)


def summarize_noise(df, ours):
    from scipy.stats import wilcoxon

    wide = df.pivot_table(index=["dataset", "seed"], columns="method", values="detection_area")
    ranks = wide.drop(columns=[c for c in ["Random"] if c in wide]).rank(axis=1, ascending=False)
    out = {"mean_detection_area": wide.mean().sort_values(ascending=False).to_dict()}
    out["mean_rank"] = ranks.mean().sort_values().to_dict()
    tests = {}
    for o in ours:
        if o not in wide:
            continue
        tests[o] = {}
        for m in wide.columns:
            if m == o:
                continue
            d = (wide[o] - wide[m]).dropna()
            nz = d[d != 0]
            p = wilcoxon(nz, alternative="greater").pvalue if len(nz) >= 6 else np.nan
            tests[o][m] = {
                "win_share": float((d > 0).mean()),
                "mean_diff": float(d.mean()),
                "p_greater": float(p),
                "n": int(len(d)),
            }
    out["tests"] = tests
    return out


# ------------------------------------------------------------------ results file
PUBLISHED_RANKED = [m for m in PUBLISHED if m != "Random"]
PRIMARY = "Consensus3"
SECONDARY = [
    "BoostIn+LeafSim",
    "PathSim",
    "Greedy",
    "BoostInW1",
    "BoostInW2",
    "Adaptive",
    "AdaptiveBoostIn",
    "AdaptiveBoostIn+LeafSim",
]
NOISE_SECONDARY = [
    "SelfOut",
    "Loss",
    "AdaptiveGlobal",
    "AdaptiveBoostInGlobal",
    "PathSim",
    "BoostIn+LeafSim",
]


def _block(group, seeds, methods, ours):
    out = {}
    df = removal_frame(GROUPS[group], seeds, "lightgbm", methods)
    if df is not None:
        out["removal"] = summarize_removal(df, methods, ours)
    nf = noise_frame(GROUPS[group], seeds, "lightgbm", methods)
    if len(nf):
        nf = nf[nf["method"].isin(methods)]
        # only settings where every method has a result
        full = nf.groupby(["dataset", "seed"])["method"].nunique() == len(set(nf["method"]))
        keep = full[full].index
        nf = nf.set_index(["dataset", "seed"]).loc[keep].reset_index()
        out["noise"] = summarize_noise(nf, ours)
        out["noise"]["n_settings"] = int(len(keep))
    return out


def write_results():
    res = {
        "config": {**CFG, "fractions": FRACTIONS, "library": "lightgbm", "groups": GROUPS},
        "primary": PRIMARY,
        "dev_vs_published": _block("dev", [1, 2], PUBLISHED_RANKED + [PRIMARY], [PRIMARY]),
        "dev_all_candidates": _block(
            "dev", [1, 2], PUBLISHED_RANKED + [PRIMARY] + SECONDARY, [PRIMARY] + SECONDARY
        ),
        "dev_noise_candidates": _block(
            "dev", [1, 2], PUBLISHED_RANKED + [PRIMARY] + NOISE_SECONDARY, [PRIMARY]
        ),
        "heldout_vs_published": _block("heldout", [1], PUBLISHED_RANKED + [PRIMARY], [PRIMARY]),
        "heldout_secondary": _block(
            "heldout",
            [1],
            PUBLISHED_RANKED + [PRIMARY, "Adaptive", "AdaptiveBoostIn", "BoostIn+LeafSim"],
            [PRIMARY, "Adaptive", "AdaptiveBoostIn", "BoostIn+LeafSim"],
        ),
    }
    path = ROOT / "benchmarks" / "results" / "new_method.json"
    path.write_text(json.dumps(res, indent=1, default=float))
    print(f"wrote {path}")


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("run", "noise", "summary", "write"))
    ap.add_argument("--group", default="dev")
    ap.add_argument("--datasets", nargs="*")
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--lib", default="lightgbm")
    ap.add_argument("--methods", nargs="*")
    ap.add_argument("--ours", nargs="*", default=list(CANDIDATES))
    args = ap.parse_args()
    datasets = args.datasets or GROUPS[args.group]
    methods = args.methods or list(PUBLISHED) + list(CANDIDATES)
    if args.what in ("run", "noise"):
        for ds in datasets:
            for seed in args.seeds:
                for m in methods:
                    t0 = time.perf_counter()
                    try:
                        if args.what == "run":
                            run_removal(ds, seed, args.lib, m)
                        else:
                            run_noise(ds, seed, args.lib, m)
                    except Exception as exc:  # report and go on
                        print(f"{ds} {seed} {m}: FAILED {type(exc).__name__}: {exc}", flush=True)
                        continue
                    print(f"{ds} {seed} {m}: {time.perf_counter() - t0:.1f}s", flush=True)
        return
    if args.what == "write":
        write_results()
        return
    out = {}
    df = removal_frame(datasets, args.seeds, args.lib, methods)
    if df is not None:
        out["removal"] = summarize_removal(df, methods, args.ours)
    nf = noise_frame(datasets, args.seeds, args.lib, methods)
    if len(nf):
        out["noise"] = summarize_noise(nf, args.ours)
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()

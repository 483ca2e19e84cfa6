"""The update sets of LeafInfluence: one strategy object per algorithm.

``LeafInfluence(update_set=...)`` picks one of these at ``fit`` and hands its queries
to it:

* :class:`AllPoints` (``-1``): every row follows the removal; queries run the reverse
  (adjoint) sweep, self-influence the forward mode;
* :class:`SinglePoint` (``0``): only the removed row's own leaves move; the
  derivatives are ``(n_train, n_trees)`` and queries are a sparse leaf co-occurrence
  product;
* :class:`TopLeaves` (``k >= 1``): the removed row and the rows of the ``k`` leaves of
  each tree that moved most; the forward mode for every row, its derivatives kept when
  they fit in the memory budget.

Every strategy is built from the fitted ensemble, the training leaves
(:class:`~skinfluence._kernels._leaf_influence.TrainLeaves`), the sample weights, the
training rows' final loss gradients and the multiclass form (``"exact"``: the
cross-class terms of the softmax propagate, with the kernels of
:mod:`~skinfluence._kernels._leaf_influence_cross`; ``"diagonal"``: each raw-score
column propagates alone); ``fit`` takes the derivative terms. The query
methods take ``row_blocks(desc)``, the explainer's iterator over blocks of removed rows
(its block size and progress bar follow the explainer's parameters at call time).

A label edit (``label_edit_state``) is a copy of the fitted strategy fitted again with
the label source (the change of the source term per unit move of each row's label) in
place of the removal's; its removal influence is minus the first-order edit.
"""

import copy

import numba
import numpy as np

from ._kernels import _leaf_influence as _li
from ._kernels import _leaf_influence_cross as _cross
from ._kernels import _leaf_influence_edit as _edit
from ._kernels import _leaf_influence_top as _top
from ._kernels import _leaves

__all__ = [
    "MULTICLASS_FORMS",
    "AllPoints",
    "SinglePoint",
    "TopLeaves",
    "check_multiclass",
    "update_set_for",
]

#: the values of LeafInfluence's ``multiclass`` parameter
MULTICLASS_FORMS = ("exact", "diagonal")


def check_multiclass(multiclass):
    """Raise a ``ValueError`` unless ``multiclass`` is one of :data:`MULTICLASS_FORMS`."""
    if not (isinstance(multiclass, str) and multiclass in MULTICLASS_FORMS):
        raise ValueError(
            "multiclass must be 'exact' (the cross-class terms of the softmax propagate "
            "through later trees) or 'diagonal' (each class column propagates alone, as "
            f"in the paper), got {multiclass!r}"
        )


class _UpdateSet:
    """Shared state and helpers of the update-set strategies.

    Parameters
    ----------
    ensemble : TreeEnsemble
    train : TrainLeaves
    weights : ndarray of shape (n_train,)
    final_gradients : ndarray of shape (n_train, K)
        Loss gradients of the training rows at the final model.
    multiclass : {"exact", "diagonal"}
        The propagation of a softmax model; other objectives ignore it.
    """

    #: whether ``influence_block`` writes into the output slice it is given
    fills_out = False

    def __init__(self, ensemble, train, weights, final_gradients, multiclass="exact"):
        check_multiclass(multiclass)
        self.ensemble = ensemble
        self.train = train
        self.weights = weights
        self.final_gradients = final_gradients
        #: whether the cross-class terms propagate (softmax models with "exact")
        self.cross = multiclass == "exact" and ensemble.objective == "multiclass"
        #: ``(n_trees, n_train)`` softmax probabilities before each tree's round (cross)
        self.proba = None

    def _terms_of(self, coef, source, propagation, sort):
        """The kernels' :class:`DerivativeTerms`: the diagonal terms as given, or
        (cross) the terms of ``_leaf_influence_cross`` (``source`` and the cross-class
        propagation ``w_j p_{j,t} (1 + c vbar (1 - 2 p_{j,t}))`` by tree, ``(T, n)``;
        sets ``proba``). ``sort``: also the leaf-ordered copies the forward mode
        reads."""
        n, order, empty = self.n_train, self.train.order, np.empty(0)
        if not self.cross:
            if not sort:
                return _li.DerivativeTerms(coef, source, propagation, empty, empty)
            return _li.DerivativeTerms(
                coef,
                source,
                propagation,
                _leaves.sort_by_leaf(source, order, n),
                _leaves.sort_by_leaf(propagation, order, n),
            )
        ens = self.ensemble
        self.proba, cross = _cross.cross_terms(
            self.train.leaves,
            ens.leaf_offsets,
            ens.leaf_values,
            np.ascontiguousarray(ens.unshrunk_values, dtype=np.float64),
            ens.bias,
            ens.n_outputs,
            float(ens.multiclass_factor),
            np.ascontiguousarray(self.weights, dtype=np.float64),
        )
        cross_sorted = _leaves.sort_by_leaf(cross.T, order, n) if sort else empty
        return _li.DerivativeTerms(coef, np.ascontiguousarray(source.T), cross, empty, cross_sorted)

    @property
    def n_train(self):
        return len(self.weights)

    def leaf_gradients(self, q, total=False):
        """Per-leaf final query gradients: ``(n_leaves_total, m)`` or summed ``(.., 1)``."""
        ens = self.ensemble
        flat, gq = q["flat"], q["gfin"][:, ens.tree_column]
        if total:
            return np.bincount(flat.ravel(), weights=gq.ravel(), minlength=ens.n_leaves_total)[
                :, None
            ]
        m = len(flat)
        Gq = np.zeros((ens.n_leaves_total, m))
        Gq[flat, np.arange(m)[:, None]] = gq
        return Gq

    def training_leaves(self):
        """The ``(n_train, T)`` training leaf ids."""
        return self.train.leaves

    def label_edit_state(self, source, coef, propagation, row_blocks, fits_cache):
        """This update set fitted again with the label source ``source`` in place of
        the removal's (a label edit: the change of the source per unit move of each
        row's label, without the row's weight); its removal influence is minus the
        first-order label edit (:meth:`label_edit_block`).

        ``coef`` and ``propagation``: the derivative terms of the fit (``None`` for
        the full-hessian update sets, whose terms ``full`` take the source, shaped
        ``(n_train, n_rounds, K)``).
        """
        edited = copy.copy(self)
        edited.train = self.train._replace(leaves=self.training_leaves())
        if getattr(self, "full", None) is not None:  # the K x K terms of _full_hessian
            edited.full = self.full._replace(source=np.ascontiguousarray(source))
        edited.fit(coef, source, propagation, row_blocks, fits_cache)
        return edited

    def label_edit_block(self, q, state, row_blocks):
        """``(m, n_train)`` first-order loss changes of the label edits of
        :meth:`label_edit_state`."""
        return -state.influence_block(q, None, row_blocks)

    def fit(self, coef, source, propagation, row_blocks, fits_cache):  # pragma: no cover
        """Precompute from the derivative terms (see :class:`DerivativeTerms`);
        ``fits_cache()`` tells whether ``n_train x n_leaves_total`` floats fit in the
        memory budget."""
        raise NotImplementedError

    def influence_block(self, q, out, row_blocks):  # pragma: no cover
        """The ``(m, n_train)`` influence of a block of queries."""
        raise NotImplementedError

    def global_influence(self, q, row_blocks):  # pragma: no cover
        """The ``(n_train,)`` influence summed over the queries ``q``."""
        raise NotImplementedError

    def self_influence(self, row_blocks):  # pragma: no cover
        """The ``(n_train,)`` self-influence."""
        raise NotImplementedError


class _ForwardMode(_UpdateSet):
    """Update sets that propagate a removal through the trees row by row."""

    #: the update set of the forward kernel (-1: all rows, k: top-k leaves)
    n_top = -1

    def _terms(self, coef, source, propagation):
        self.terms = self._terms_of(coef, source, propagation, sort=True)

    def forward_blocks(self, row_blocks, desc="forward mode"):
        """``(rows, D, self_dot)`` of each block of removed rows (``forward_block``)."""
        for rows in row_blocks(desc):
            gfin = np.ascontiguousarray(self.final_gradients[rows])
            if self.cross:
                D, self_dot = _cross.forward_block_cross(
                    rows, self.train, self.terms, self.proba, self.n_top, gfin
                )
            else:
                D, self_dot = _li.forward_block(rows, self.train, self.terms, self.n_top, gfin)
            yield rows, D, self_dot

    def self_influence(self, row_blocks):
        out = np.empty(self.n_train)
        for rows, _, self_dot in self.forward_blocks(row_blocks, "self-influence"):
            out[rows] = -self.weights[rows] * self_dot
        return out


class AllPoints(_ForwardMode):
    """``update_set=-1``: the exact derivative; reverse sweep for the queries."""

    def fit(self, coef, source, propagation, row_blocks, fits_cache):
        self._terms(coef, source, propagation)

    def _sweep(self, Gq, terms):
        """``dPsi / d(source scale)`` of every row for the query objectives ``Gq``."""
        Gq, n_chunks = np.ascontiguousarray(Gq), numba.get_num_threads()
        if self.cross:
            return _cross.reverse_sweep_cross(Gq, self.train, terms, self.proba, n_chunks)
        return _li.reverse_sweep(Gq, self.train, terms, n_chunks)

    def _reverse(self, Gq):
        return -self.weights[:, None] * self._sweep(Gq, self.terms)

    def edited_terms(self, source):
        """The derivative terms with another source ``(n_train, T)`` (a label edit:
        the change of the source term per unit move of each row's label)."""
        if self.cross:  # stored by tree
            return self.terms._replace(source=np.ascontiguousarray(source.T))
        order = self.train.order
        return self.terms._replace(
            source=source, source_sorted=_leaves.sort_by_leaf(source, order, self.n_train)
        )

    def label_edit_state(self, source, coef, propagation, row_blocks, fits_cache):
        # the reverse sweep reads the terms of the fit with the source replaced
        edited = copy.copy(self)
        if getattr(self, "full", None) is not None:
            edited.full = self.full._replace(source=np.ascontiguousarray(source))
        else:
            edited.terms = self.edited_terms(source)
        return edited

    def influence_block(self, q, out, row_blocks):
        return np.ascontiguousarray(self._reverse(self.leaf_gradients(q)).T)

    def global_influence(self, q, row_blocks):
        return self._reverse(self.leaf_gradients(q, total=True))[:, 0]


class TopLeaves(_ForwardMode):
    """``update_set=k >= 1``: the forward mode for every row.

    With the per-column kernels the removed rows are propagated ``LANES`` at a time
    (:mod:`~skinfluence._kernels._leaf_influence_top`) and ``fit`` keeps the written
    leaf derivatives of every row as ``slots`` (``(n_train, n_trees, k + 1)`` leaf ids
    and values) and the self-influence when they fit in the memory budget; queries then
    read the slots. The cross-class and full-hessian kernels keep the dense derivatives
    (``leaf_derivatives``, ``(n_train, n_leaves_total)``) when they fit. Otherwise
    every query block recomputes the forward mode.
    """

    def __init__(self, ensemble, train, weights, final_gradients, n_top, multiclass="exact"):
        super().__init__(ensemble, train, weights, final_gradients, multiclass)
        self.n_top = n_top

    @property
    def _lanes(self):
        """Whether the lanes kernel (per-column terms, no cross-class terms) applies."""
        return not self.cross and type(self).forward_blocks is TopLeaves.forward_blocks

    def _slot_blocks(self, row_blocks, desc="forward mode"):
        """``(rows, slot_leaf, slot_value, self_dot)`` of each block of removed rows."""
        for rows in row_blocks(desc):
            gfin = np.ascontiguousarray(self.final_gradients[rows])
            yield (
                rows,
                *_top.top_leaves_forward(
                    rows, self.train, self.terms, self._by_tree, self.n_top, gfin
                ),
            )

    def forward_blocks(self, row_blocks, desc="forward mode"):
        if not self._lanes:
            yield from super().forward_blocks(row_blocks, desc)
            return
        offsets = self.ensemble.leaf_offsets
        for rows, leaf, value, self_dot in self._slot_blocks(row_blocks, desc):
            yield rows, _top.dense_from_slots(leaf, value, offsets), self_dot

    def fit(self, coef, source, propagation, row_blocks, fits_cache):
        if self._lanes:  # the lanes kernel reads the propagation by tree, not by leaf
            self.terms = self._terms_of(coef, source, propagation, sort=False)
            self._by_tree = np.ascontiguousarray(propagation.T)
        else:
            self._terms(coef, source, propagation)
        self.leaf_derivatives = self.self_values = self.slots = None
        # global_influence multiplies the dense derivatives of all rows at once when
        # they fit, else block by block
        self._dense_fits = fits_cache()
        n, n_trees = self.n_train, self.ensemble.n_trees
        S = _top.slot_count(self.n_top, self.ensemble.leaf_offsets)
        self_values = np.empty(n)
        if self._lanes and fits_cache(12 * n_trees * S):
            leaf = np.empty((n, n_trees, S), dtype=np.int32)
            value = np.empty((n, n_trees, S))
            for rows, lb, vb, self_dot in self._slot_blocks(row_blocks):
                leaf[rows], value[rows] = lb, vb
                self_values[rows] = -self.weights[rows] * self_dot
            self.slots, self.self_values = (leaf, value), self_values
            # the queries read the slots only: the terms are not needed any more
            self.terms = self._by_tree = None
        elif not self._lanes and self._dense_fits:
            D = np.empty((n, self.ensemble.n_leaves_total))
            for rows, Db, self_dot in self.forward_blocks(row_blocks):
                D[rows] = Db
                self_values[rows] = -self.weights[rows] * self_dot
            self.leaf_derivatives, self.self_values = D, self_values

    def _derivative_blocks(self, row_blocks):
        """``(rows, D)``: the dense derivatives of all rows at once when they fit,
        else of each block of rows."""
        offsets = self.ensemble.leaf_offsets
        if self.leaf_derivatives is not None:
            yield np.arange(self.n_train), self.leaf_derivatives
        elif self.slots is not None and self._dense_fits:
            yield np.arange(self.n_train), _top.dense_from_slots(*self.slots, offsets)
        elif self.slots is not None:
            leaf, value = self.slots
            for rows in row_blocks("derivatives"):
                yield rows, _top.dense_from_slots(leaf[rows], value[rows], offsets)
        else:
            for rows, D, _ in self.forward_blocks(row_blocks):
                yield rows, D

    def _score_changes(self, q, row_blocks):
        """``(rows, dF)``: the queries' raw-score changes ``(m, K, len(rows))``."""
        K, offsets = self.ensemble.n_outputs, self.ensemble.leaf_offsets
        if self.slots is None and not self._lanes:
            for rows, D in self._derivative_blocks(row_blocks):
                yield rows, _li.gather_leaf_sums(q["flat"], D, K)
            return
        q_local = np.ascontiguousarray(q["flat"] - offsets[:-1], dtype=np.int32)
        if self.slots is not None:
            yield np.arange(self.n_train), _top.slot_sums(q_local, *self.slots, K)
            return
        for rows, leaf, value, _ in self._slot_blocks(row_blocks):
            yield rows, _top.slot_sums(q_local, leaf, value, K)

    def influence_block(self, q, out, row_blocks):
        out = np.empty((len(q["flat"]), self.n_train))
        for rows, dF in self._score_changes(q, row_blocks):
            out[:, rows] = -self.weights[rows] * np.einsum("ekr,ek->er", dF, q["gfin"])
        return out

    def global_influence(self, q, row_blocks):
        Gq = self.leaf_gradients(q, total=True)[:, 0]
        total = np.empty(self.n_train)
        for rows, D in self._derivative_blocks(row_blocks):
            total[rows] = -self.weights[rows] * (D @ Gq)
        return total

    def self_influence(self, row_blocks):
        if self.self_values is not None:
            return self.self_values.copy()
        if not self._lanes:
            return super().self_influence(row_blocks)
        out = np.empty(self.n_train)
        for rows, _, _, self_dot in self._slot_blocks(row_blocks, "self-influence"):
            out[rows] = -self.weights[rows] * self_dot
        return out


class SinglePoint(_UpdateSet):
    """``update_set=0``: only the removed row's own leaves move. Keeps the derivatives
    (``derivatives``, ``(n_train, n_trees)``) in the tiled layout of the queries'
    product, and the self-influence; no leaf-ordered copies."""

    fills_out = True

    def fit(self, coef, source, propagation, row_blocks, fits_cache):
        terms = self._terms_of(coef, source, propagation, sort=False)
        if self.cross:
            D = _cross.single_point_cross(self.train, terms, self.proba)
            self.proba = None  # only the fit reads it
        else:
            D = _li.single_point(self.train, terms)
        self._keep(D, -self.weights[:, None] * D)

    def fit_one_step(self, coef, labels):
        """``fit`` for one Newton step per leaf and per-column propagation, from the
        leaf coefficients ``coef`` (``-eta / beta`` of the replay,
        :class:`~skinfluence._leaf_rule.LeafTerms`) and the encoded ``labels``: one
        pass replays each row's scores and writes the removal ``-w D`` straight into
        the tiled layout, with the self-influence (the rounding of the derivative
        terms and of :meth:`_keep`, bit for bit); ``D`` itself is kept only with
        sample weights."""
        ens, leaves = self.ensemble, self.train.leaves
        keep_d = not bool((self.weights == 1.0).all())
        ptr, local, slot = _li.tile_slots(leaves, ens.leaf_offsets, _leaves.TILE)
        d_tiled, self.self_values, finite, D = _li.single_point_tiled(
            leaves,
            ens.leaf_offsets,
            ens.leaf_values,
            np.ascontiguousarray(ens.bias, dtype=np.float64),
            ens.objective_code,
            ens.kernel_param,
            np.ascontiguousarray(labels, dtype=np.float64),
            np.ascontiguousarray(coef, dtype=np.float64),
            np.ascontiguousarray(ens.unshrunk_values, dtype=np.float64),
            np.ascontiguousarray(self.weights, dtype=np.float64),
            self.final_gradients,
            slot,
            _leaves.TILE,
            keep_d,
        )
        del slot
        self.tiles = (ptr, local, d_tiled, bool(finite))
        self.derivatives = D if keep_d else None
        if not keep_d:  # the tiles hold -D: the leaves by row are not needed
            self.train = self.train._replace(leaves=np.empty((0, 0), dtype=np.int32))

    def _keep(self, D, removal):
        """Keep the tiled removal, the self-influence and the derivatives; with unit
        weights the removal is ``-D`` exactly, so the tiles stand for both and neither
        ``D`` nor the training leaves by row are kept (``train.leaves`` empty)."""
        self.tiles = _leaves.tiled(self.train.leaves, self.ensemble.leaf_offsets, removal)
        tree_column = self.ensemble.tree_column
        self.self_values = (self.final_gradients[:, tree_column] * removal).sum(axis=1)
        self.derivatives = D
        if bool((self.weights == 1.0).all()):
            self.derivatives = None
            self.train = self.train._replace(leaves=np.empty((0, 0), dtype=np.int32))

    def training_leaves(self):
        if self.train.leaves.size or not self.n_train:
            return self.train.leaves
        ptr, local, _, _ = self.tiles  # unit weights: the leaves are kept tiled only
        offsets = self.ensemble.leaf_offsets
        return _edit.leaves_from_tiles(ptr, local, offsets, self.n_train, _leaves.TILE)

    def dense_derivatives(self):
        """The derivatives ``(n_train, n_trees)`` (from the tiles when not kept)."""
        if self.derivatives is not None:
            return self.derivatives
        ptr, local, d_tiled, _ = self.tiles
        offsets = self.ensemble.leaf_offsets
        return _li.untiled_negative(ptr, local, d_tiled, offsets, self.n_train, _leaves.TILE)

    def influence_block(self, q, out, row_blocks):
        ens = self.ensemble
        if out is None:
            out = np.empty((len(q["flat"]), self.n_train))
        _leaves.tiled_product(
            (q["flat"] - ens.leaf_offsets[:-1]).astype(np.int32),
            np.ascontiguousarray(q["gfin"][:, ens.tree_column]),
            ens.leaf_offsets,
            *self.tiles,
            self.n_train,
            _leaves.TILE,
            out,
        )
        return out

    def global_influence(self, q, row_blocks):
        Gq = self.leaf_gradients(q, total=True)[:, 0]
        offsets = self.ensemble.leaf_offsets
        if self.derivatives is None:  # unit weights: the tiles hold -D
            ptr, local, d_tiled, _ = self.tiles
            total = _li.tiled_gather_sum(
                ptr, local, d_tiled, offsets, Gq, self.n_train, _leaves.TILE
            )
            return -self.weights * total
        return -self.weights * _leaves.leaf_gather_sum(
            self.train.leaves, offsets, Gq, self.derivatives
        )

    def self_influence(self, row_blocks):
        return self.self_values.copy()


def update_set_for(update_set, ensemble, train, weights, final_gradients, multiclass="exact"):
    """The strategy of ``update_set`` (-1, 0 or k >= 1) and the multiclass form
    (``"exact"`` or ``"diagonal"``), not yet fitted."""
    args = (ensemble, train, weights, final_gradients)
    if update_set == -1:
        return AllPoints(*args, multiclass=multiclass)
    if update_set == 0:
        return SinglePoint(*args, multiclass=multiclass)
    return TopLeaves(*args, update_set, multiclass=multiclass)

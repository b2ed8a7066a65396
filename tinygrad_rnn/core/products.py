"""products.py — a gradient kept as a sum of matrix products until it is needed. Read after ops.py.

The gradient of a weight W used by T matmuls (one per time step) is

    dL/dW = sum_t  L_t^T R_t          (L_t: the step's input, R_t: its output's gradient; n_t rows each)
          = [L_1; ...; L_T]^T [R_1; ...; R_T]

The left side is T products with n_t (the batch) as the inner dimension, which
BLAS runs far below its speed when n_t is small (50 products of (512, 32) by
(32, 512) take 13.4 ms here; the stacked (512, 1600) by (1600, 512) one takes
3.2 ms), plus T additions of the whole W-sized sum. The right side is what a
hand-written BPTT does (cuDNN, too, computes an RNN's weight gradients in a pass
of its own, cudnnRNNBackwardWeights, after the data gradients of all steps).

So in a plain backward pass MatMul's VJP returns dL/dW as a `ProductSum` of one
term: a value that knows how to add itself. The backward walk adds gradients
without looking at their type (`previous + new`, or `+=` into a sum the pass
made), so the terms that arrive for one tensor join one ProductSum, and the sum
is computed, as one product over the stacked rows, only when the gradient is
consumed (`np.asarray`: by the node that made the tensor, a hook, or as a
leaf's result). The pending rows are bounded: past `ROWS_PER_FLUSH` stacked
rows they are multiplied out into a dense partial sum, so memory stays
O(k p + limit). Values are the same up to float rounding (the additions happen
in another order); under create_graph nothing is deferred.

Measured (benchmarks/bench_rnn.py, float32, one shared 2-core run, before the
engine split): without it, the (32, 50, 256, 512) training step's ratio to
hand-written BPTT went from 0.29-0.32 to 0.53-0.55 (per-cell) and from
0.59-0.65 to 1.22-1.80 (hoisted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROWS_PER_FLUSH = 2048  # enough inner dimension for BLAS to run near full speed; bounds the factors kept


class ProductSum:
    """sum_i left_i^T @ right_i (+ a dense part), kept as its factors; `np.asarray` computes it.

    `a + b` makes a new sum and leaves both alone; `a += b` adds into `a`.
    """

    __slots__ = ("_owns_dense", "dense", "dtype", "lefts", "rights", "rows", "shape")
    __array_priority__ = 1000  # `ndarray + ProductSum` and `ndarray += ProductSum` call __radd__

    def __init__(self, left: np.ndarray, right: np.ndarray) -> None:
        self.lefts = [left]
        self.rights = [right]
        self.rows = left.shape[0]
        self.shape = (left.shape[1], right.shape[1])
        # np.result_type costs ~0.4 us, and this runs once per matmul in a plain pass: skip it when the dtypes agree
        self.dtype = left.dtype if left.dtype == right.dtype else np.result_type(left, right)
        self.dense: np.ndarray | None = None  # the part already multiplied out (or added as an array)
        self._owns_dense = False  # True when `dense` is a buffer no one else sees, so += may write into it

    def __iadd__(self, other: Any) -> ProductSum:
        """Add another ProductSum (its terms join these) or an array of the same shape, in place."""
        if type(other) is ProductSum:
            self.lefts += other.lefts
            self.rights += other.rights
            self.rows += other.rows
            if other.dense is not None:
                self._add_dense(other.dense)
            if self.rows > ROWS_PER_FLUSH:
                self._add_product()
        else:
            self._add_dense(np.asarray(other))
        return self

    def __add__(self, other: Any) -> ProductSum:
        total = ProductSum.__new__(ProductSum)
        total.lefts, total.rights, total.rows = list(self.lefts), list(self.rights), self.rows
        total.shape, total.dtype, total.dense = self.shape, self.dtype, self.dense
        total._owns_dense = self._owns_dense = False  # `dense` is now shared: the next write copies it
        total += other
        return total

    __radd__ = __add__

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.lefts:
            self._add_product()
        assert self.dense is not None
        self._owns_dense = False  # handed out: a later += must not write into it
        return self.dense if dtype is None else self.dense.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        return np.asarray(self).astype(dtype)

    def _add_product(self) -> None:
        lefts, rights = self.lefts, self.rights
        self.lefts, self.rights, self.rows = [], [], 0
        if len(lefts) == 1:
            product = np.dot(lefts[0].T, rights[0])
        else:
            product = np.dot(np.concatenate(lefts).T, np.concatenate(rights))
        if self.dense is None and product.dtype == self.dtype:
            self.dense, self._owns_dense = product, True  # a product just computed: ours to add into
        else:
            self._add_dense(product)

    def _add_dense(self, array: np.ndarray) -> None:
        if self.dense is None:
            self.dense = np.array(array, dtype=self.dtype)  # an array from elsewhere may be shared: copy it
        elif self._owns_dense:
            np.add(self.dense, array, out=self.dense)
            return
        else:
            self.dense = (self.dense + array).astype(self.dtype, copy=False)
        self._owns_dense = True

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
term, the engine's accumulation merges the terms that arrive for one tensor,
and the sum is computed, as one product over the stacked rows, only when the
gradient is consumed (by the node that made the tensor, a hook, or as a leaf's
result). The pending rows are bounded: past `ROWS_PER_FLUSH` stacked rows they
are multiplied out into a dense partial sum, so memory stays O(k p + limit).
Values are the same up to float rounding (the additions happen in another
order); under create_graph nothing is deferred.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROWS_PER_FLUSH = 2048  # enough inner dimension for BLAS to run near full speed; bounds the factors kept


class ProductSum:
    """sum_i left_i^T @ right_i, kept as its factors; `value()` computes it."""

    __slots__ = ("dense", "dtype", "lefts", "rights", "rows", "shape")

    def __init__(self, left: np.ndarray, right: np.ndarray) -> None:
        self.lefts = [left]
        self.rights = [right]
        self.rows = left.shape[0]
        self.shape = (left.shape[1], right.shape[1])
        # np.result_type costs ~0.4 us, and this runs once per matmul in a plain pass: skip it when the dtypes agree
        self.dtype = left.dtype if left.dtype == right.dtype else np.result_type(left, right)
        self.dense: np.ndarray | None = None  # the part already multiplied out (or added as an array)

    def add(self, other: Any) -> None:
        """Add another ProductSum (its terms join these) or an array of the same shape."""
        if type(other) is ProductSum:
            self.lefts += other.lefts
            self.rights += other.rights
            self.rows += other.rows
            if other.dense is not None:
                self._add_dense(other.dense, ours=True)  # `other` is dropped after this
            if self.rows > ROWS_PER_FLUSH:
                self._add_dense(self._product(), ours=True)
        else:
            self._add_dense(other, ours=False)

    def value(self) -> np.ndarray:
        """The sum as an array this object owns (so the engine may add into it in place)."""
        if self.lefts:
            self._add_dense(self._product(), ours=True)
        assert self.dense is not None
        return self.dense

    def _product(self) -> np.ndarray:
        lefts, rights = self.lefts, self.rights
        self.lefts, self.rights, self.rows = [], [], 0
        if len(lefts) == 1:
            return np.dot(lefts[0].T, rights[0])
        return np.dot(np.concatenate(lefts).T, np.concatenate(rights))

    def _add_dense(self, array: np.ndarray, ours: bool) -> None:
        if self.dense is None:
            # A product we just computed is ours to add into; an array from elsewhere may be shared: copy it.
            self.dense = array if ours and array.dtype == self.dtype else np.array(array, dtype=self.dtype)
        else:
            np.add(self.dense, array, out=self.dense)

"""The PyTorch-style modules: containers, activations, Dropout, Embedding, the loss modules and their functions,
and forward hooks. Values are compared with numpy written here; gradients with float64 central differences."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.core.errors import ArgumentError, DTypeError, IndexingError, ShapeError
from tinygrad_rnn.core.tensor import Tensor
from tinygrad_rnn.nn import functional as F


def grad_of(t: Tensor) -> np.ndarray:
    g: Any = t.grad
    return np.asarray(g.data if isinstance(g, Tensor) else g)


def check_gradient(fn: Callable[[Tensor], Tensor], x: np.ndarray, eps: float = 1e-6) -> None:
    """d fn(x).sum() / dx from backward() against central differences, every element, float64."""
    t = Tensor(x, requires_grad=True)
    fn(t).sum().backward()
    numeric = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (fn(Tensor(up)).sum().item() - fn(Tensor(down)).sum().item()) / (2 * eps)
    np.testing.assert_allclose(grad_of(t), numeric, rtol=1e-6, atol=1e-8)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -a))  # 1 / (1 + exp(-a)) without overflow


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- containers and hooks


def test_sequential_composes_names_and_slices() -> None:
    first, second = nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=1)
    model = nn.Sequential(first, nn.Tanh(), second)
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(model(x).numpy(), second(first(x).tanh()).numpy(), rtol=1e-15)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model) == 3 and model[0] is first and model[-1] is second
    head = model[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [first, model[1]]
    named = nn.Sequential(OrderedDict([("encoder", first), ("act", nn.ReLU())]))
    assert [n for n, _ in named.named_parameters()] == ["encoder.weight", "encoder.bias"]
    assert "(encoder): Linear" in repr(named)
    model.append(nn.Identity())
    assert len(model) == 4
    with pytest.raises(ArgumentError, match="Sequential: '0' must be a Module, got function"):
        nn.Sequential(lambda x: x)


def test_module_dict_names_lookup_and_refusals() -> None:
    heads = nn.ModuleDict({"mean": nn.Linear(2, 1, rng=0), "scale": nn.Linear(2, 1, rng=1)})
    assert heads.keys() == ["mean", "scale"] and "mean" in heads and len(heads) == 2
    assert [n for n, _ in heads.named_parameters()] == ["mean.weight", "mean.bias", "scale.weight", "scale.bias"]
    assert heads["scale"] is heads.values()[1]
    with pytest.raises(KeyError, match="has no module 'shift'"):
        heads["shift"]
    with pytest.raises(ArgumentError, match="'forward' cannot name a submodule"):
        heads["forward"] = nn.ReLU()


def test_forward_hooks_see_the_call_can_replace_the_output_and_can_be_removed() -> None:
    layer = nn.Linear(2, 2, rng=0)
    seen: list[Any] = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append((m, args, out)))
    x = np.ones((1, 2))
    out = layer(x)
    assert seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] is out
    doubling = layer.register_forward_hook(lambda m, args, out: out * 2.0)
    np.testing.assert_allclose(layer(x).numpy(), 2 * out.numpy())
    doubling.remove()
    handle.remove()
    handle.remove()  # twice is harmless
    np.testing.assert_allclose(layer(x).numpy(), out.numpy())
    assert len(seen) == 2


# ---------------------------------------------------------------- activations and Dropout


@pytest.mark.parametrize(
    ("module", "reference"),
    [
        (nn.ReLU(), lambda a: np.maximum(a, 0.0)),
        (nn.Tanh(), np.tanh),
        (nn.Sigmoid(), sigmoid),
        (nn.Softmax(dim=1), lambda a: np.exp(log_softmax(a, axis=1))),
        (nn.LogSoftmax(dim=0), lambda a: log_softmax(a, axis=0)),
        (nn.Identity(), lambda a: a),
    ],
)
def test_activation_modules_match_numpy_and_differentiate(module: nn.Module, reference: Any) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(module(Tensor(x)).numpy(), reference(x), rtol=1e-12, atol=1e-15)
    weights = np.random.default_rng(1).standard_normal((3, 4))
    check_gradient(lambda t: module(t) * weights, x)


def test_dropout_mask_is_seeded_scaled_and_its_gradient_is_the_mask() -> None:
    x = np.random.default_rng(0).standard_normal((50, 40))
    drop = nn.Dropout(0.3, rng=7)
    t = Tensor(x, requires_grad=True)
    y = drop(t)
    mask = np.random.default_rng(7).random(x.shape) >= 0.3  # the layer's generator, drawn afresh
    np.testing.assert_allclose(y.numpy(), np.where(mask, x / 0.7, 0.0), rtol=1e-15)
    assert 0.6 < mask.mean() < 0.8  # about 1 - p kept
    y.sum().backward()
    np.testing.assert_allclose(grad_of(t), np.where(mask, 1 / 0.7, 0.0), rtol=1e-15)
    assert not np.array_equal(drop(t).numpy(), y.numpy())  # the next call draws a new mask
    drop.eval()
    assert drop(t) is t  # the identity in eval mode
    model = nn.Sequential(nn.Linear(40, 2, rng=0), nn.Dropout(0.5)).eval()
    assert not model[1].training and model.train()[1].training


def test_dropout_edges_and_errors() -> None:
    x = Tensor(np.ones((2, 3)))
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.9, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0.0)
    with pytest.raises(ArgumentError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ArgumentError, match="inplace=True is not supported"):
        nn.Dropout(0.5, inplace=True)


# ---------------------------------------------------------------- Embedding


def test_embedding_looks_up_rows_and_scatter_adds_their_gradients() -> None:
    emb = nn.Embedding(6, 3, rng=0)
    index = np.array([[1, 4, 1], [0, 1, 5]])  # row 1 three times, rows 2 and 3 never
    out = emb(index)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[index])
    upstream = np.random.default_rng(1).standard_normal((2, 3, 3))
    (out * upstream).sum().backward()
    expected = np.zeros((6, 3))
    np.add.at(expected, index, upstream)  # repeated indices add up
    np.testing.assert_allclose(grad_of(emb.weight), expected, rtol=1e-15)
    assert not grad_of(emb.weight)[[2, 3]].any()
    assert abs(nn.Embedding(1000, 10, rng=0).weight.numpy().std() - 1.0) < 0.05  # N(0, 1), as PyTorch


def test_embedding_padding_row_is_zero_and_gets_no_gradient() -> None:
    emb = nn.Embedding(4, 2, padding_idx=-1, rng=0)
    assert emb.padding_idx == 3 and not emb.weight.numpy()[3].any()
    out = emb(np.array([3, 0, 3]))
    np.testing.assert_array_equal(out.numpy()[[0, 2]], 0.0)
    (out * 2.0).sum().backward()
    np.testing.assert_array_equal(grad_of(emb.weight), [[2.0, 2.0], [0, 0], [0, 0], [0.0, 0.0]])
    assert repr(emb) == "Embedding(4, 2, padding_idx=3)"


def test_embedding_errors_are_clear() -> None:
    emb = nn.Embedding(4, 2, rng=0)
    with pytest.raises(IndexingError, match=r"index 4 at position \(1,\) is out of range .* 0\.\.3"):
        emb(np.array([0, 4]))
    with pytest.raises(DTypeError, match="input must hold integer indices, got dtype float64"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ArgumentError, match="Embedding: max_norm is not supported"):
        nn.Embedding(4, 2, max_norm=1.0)
    with pytest.raises(ArgumentError, match="Embedding: sparse is not supported"):
        nn.Embedding(4, 2, sparse=True)
    assert nn.Embedding(4, 2, norm_type=2, sparse=False, device="cpu").weight.shape == (4, 2)  # PyTorch's defaults
    with pytest.raises(ArgumentError, match="Linear: device is not supported"):
        nn.Linear(2, 3, device="cuda")
    with pytest.raises(ArgumentError, match="Linear: unexpected keyword argument 'in_size'"):
        nn.Linear(2, 3, in_size=2)


# ---------------------------------------------------------------- losses


def test_loss_modules_equal_their_functions_for_every_reduction() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    labels, binary = rng.integers(0, 3, 4), (rng.random((4, 3)) > 0.5).astype(float)
    for reduction in ("mean", "sum", "none"):
        pairs = [
            (nn.MSELoss(reduction=reduction)(Tensor(x), y), F.mse_loss(Tensor(x), y, reduction=reduction)),
            (nn.L1Loss(reduction=reduction)(Tensor(x), y), F.l1_loss(Tensor(x), y, reduction=reduction)),
            (nn.CrossEntropyLoss(reduction=reduction)(Tensor(x), labels),
             F.cross_entropy(Tensor(x), labels, None, reduction)),
            (nn.NLLLoss(reduction=reduction)(Tensor(x), labels), F.nll_loss(Tensor(x), labels, reduction=reduction)),
            (nn.BCEWithLogitsLoss(reduction=reduction)(Tensor(x), binary),
             F.binary_cross_entropy_with_logits(Tensor(x), binary, reduction=reduction)),
        ]  # fmt: skip
        for module_value, function_value in pairs:
            np.testing.assert_array_equal(module_value.numpy(), function_value.numpy())
    np.testing.assert_allclose(F.l1_loss(Tensor(x), y).item(), np.abs(x - y).mean(), rtol=1e-15)
    with pytest.raises(ArgumentError, match="MSELoss: size_average is not supported; use reduction="):
        nn.MSELoss(size_average=True)
    with pytest.raises(ArgumentError, match="CrossEntropyLoss: reduction must be one of"):
        nn.CrossEntropyLoss(reduction="avg")


def test_bce_with_logits_matches_the_stable_formula_even_at_extreme_and_zero_logits() -> None:
    x = np.array([[-800.0, -3.0, 0.0], [0.0, 2.5, 800.0]])
    y = np.array([[0.0, 1.0, 1.0], [0.0, 0.3, 1.0]])
    pos_weight, weight = np.array([1.0, 2.0, 0.5]), np.array([[1.0], [3.0]])
    log_sig, log_one_minus = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    expected = -(pos_weight * y * log_sig + (1 - y) * log_one_minus) * weight
    got = F.binary_cross_entropy_with_logits(Tensor(x), y, weight, "none", pos_weight)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-300)
    t = Tensor(x, requires_grad=True)
    F.binary_cross_entropy_with_logits(t, y, reduction="sum").backward()
    np.testing.assert_allclose(grad_of(t), sigmoid(x) - y, rtol=1e-12, atol=1e-300)  # right at x = 0 too
    check_gradient(lambda a: F.binary_cross_entropy_with_logits(a, y[:, :2], None, "none", pos_weight[:2]), x[:, :2])


def test_nll_loss_is_cross_entropy_of_log_probabilities() -> None:
    z = np.random.default_rng(2).standard_normal((5, 4))
    t = np.array([0, 3, 3, 1, 2])
    np.testing.assert_allclose(
        F.nll_loss(Tensor(z).log_softmax(axis=-1), t).item(), F.cross_entropy(Tensor(z), t).item(), rtol=1e-15
    )
    np.testing.assert_allclose(F.nll_loss(Tensor(z), t, reduction="none").numpy(), -z[np.arange(5), t])
    with pytest.raises(DTypeError, match="nll_loss: target must hold class indices"):
        F.nll_loss(Tensor(z), np.full((5, 4), 0.25))


@settings(max_examples=20)
@given(
    classes=st.integers(2, 4),
    rows=st.integers(1, 5),
    smoothing=st.sampled_from([0.0, 0.1]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_cross_entropy_weight_ignore_index_and_smoothing_follow_pytorchs_formulas(
    classes: int, rows: int, smoothing: float, weighted: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, classes))
    t = rng.integers(0, classes, rows)
    t[rng.random(rows) < 0.3] = -100  # PyTorch's default ignore_index
    if (t == -100).all():
        t[0] = 0
    w = rng.uniform(0.5, 2.0, classes) if weighted else np.ones(classes)
    log_p = log_softmax(z)
    kept = t != -100
    safe = np.where(kept, t, 0)
    per_row = -(1 - smoothing) * w[safe] * log_p[np.arange(rows), safe] - smoothing / classes * (w * log_p).sum(-1)
    expected = (per_row * kept).sum() / (w[safe] * kept).sum()  # PyTorch's weighted mean
    weight = w if weighted else None

    def loss(a: Tensor) -> Tensor:
        return F.cross_entropy(a, t, weight=weight, label_smoothing=smoothing)

    np.testing.assert_allclose(loss(Tensor(z)).item(), expected, rtol=1e-12)
    check_gradient(loss, z)


def test_cross_entropy_class_axis_follows_the_target_pytorchs_layout_or_classes_last() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 4, 3))  # PyTorch: (N, C=4, d=3); a target (2, 3) means classes on axis 1
    t = rng.integers(0, 4, (2, 3))
    pytorch = F.cross_entropy(Tensor(z), t, reduction="none")
    expected = -np.take_along_axis(log_softmax(z, axis=1), t[:, None, :], axis=1)[:, 0]
    np.testing.assert_allclose(pytorch.numpy(), expected, rtol=1e-12)
    sequence = rng.standard_normal((5, 2, 4))  # (T, B, C): a (5, 2) target means classes last
    s = rng.integers(0, 4, (5, 2))
    np.testing.assert_allclose(
        F.cross_entropy(Tensor(sequence), s, reduction="none").numpy(),
        -np.take_along_axis(log_softmax(sequence), s[..., None], axis=-1)[..., 0],
        rtol=1e-12,
    )
    check_gradient(lambda a: F.cross_entropy(a, t, reduction="none") * np.arange(6.0).reshape(2, 3), z)
    with pytest.raises(ArgumentError, match=r"fits logits of shape \(2, 3, 3\) with classes on the last axis and"):
        F.cross_entropy(Tensor(np.zeros((2, 3, 3))), np.zeros((2, 3), dtype=np.int64))  # B == C: ambiguous
    with pytest.raises(ArgumentError, match="class probabilities of the same shape: say which axis"):
        F.cross_entropy(Tensor(z), np.full(z.shape, 0.25))
    probabilities = np.full(z.shape, 0.25)
    np.testing.assert_allclose(
        F.cross_entropy(Tensor(z), probabilities, dim=1, reduction="none").numpy(),
        -(0.25 * log_softmax(z, axis=1)).sum(axis=1),
        rtol=1e-12,
    )
    with pytest.raises(ShapeError, match=r"\(2, 4\) \(classes last\) or \(2, 3\) \(classes on axis 1"):
        F.cross_entropy(Tensor(z), np.zeros((4, 2), dtype=np.int64))


# ---------------------------------------------------------------- a PyTorch user's first training loop


def test_a_pytorch_style_classifier_trains() -> None:
    """Spelled as in PyTorch: Sequential, Embedding, nn losses, zero_grad / backward / step."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 8, (64, 5))
    labels = (tokens.sum(axis=1) > 17).astype(np.int64)  # a function of the tokens, learnable
    model = nn.Sequential(nn.Embedding(8, 6, rng=0), nn.Identity())
    head = nn.Sequential(nn.Linear(30, 16, rng=1), nn.ReLU(), nn.Dropout(0.1, rng=2), nn.Linear(16, 2, rng=3))
    loss_fn = nn.CrossEntropyLoss()
    params = model.parameters() + head.parameters()
    optimizer = tg.optim.Adam(params, lr=0.02)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = loss_fn(head(model(tokens).reshape(64, 30)), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    head.eval()
    accuracy = (head(model(tokens).reshape(64, 30)).numpy().argmax(axis=1) == labels).mean()
    assert losses[-1] < 0.5 * losses[0] and accuracy > 0.9, (losses[0], losses[-1], accuracy)

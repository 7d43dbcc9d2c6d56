"""fastloss's losses as JAX functions on the CPU (extra ``fastloss[jax]``).

``softmax_cross_entropy_with_integer_labels(logits, labels)`` and
``multiclass_hinge_loss(scores, labels)`` have optax's names and semantics: per-example
losses of shape ``labels.shape`` for ``logits`` of shape ``labels.shape + (C,)``. The
fused kernel runs on the host through ``jax.pure_callback``; a ``jax.custom_vjp`` keeps
the gradient the kernel computed in the same pass, so ``jax.grad`` scales it by the
cotangent instead of differentiating the callback. They work under ``jax.jit``,
``jax.grad`` and ``jax.vmap`` (first derivatives only; labels are not differentiated).

Differences from optax: a label outside [0, C) raises (inside ``jit``: a runtime error
from the callback) where optax returns an unspecified value; on an exact tie for the
hinge's max, the gradient goes to the lowest class (fastloss's rule) where JAX's max
shares it among the tied classes.
"""

from __future__ import annotations

from typing import Any

from ._extras import translate

try:
    import jax
    import jax.numpy as jnp
except ModuleNotFoundError as e:  # pragma: no cover - exercised when jax is absent
    raise translate(e, "jax", "fastloss.jax") from None

import numpy as np

from .losses import multiclass_hinge, softmax_cross_entropy

__all__ = ["softmax_cross_entropy_with_integer_labels", "multiclass_hinge_loss"]


def _host(fn, **options):
    """The host function of a callback: per-row losses and d loss_i / d s_i of any batch
    shape, in the scores' dtype."""

    def run(scores, labels):
        s = np.asarray(scores)
        C = s.shape[-1]
        S = s.reshape(-1, C)
        y = np.asarray(labels).reshape(-1)
        loss, grad = fn(S, y, reduction="none", grad=True, **options)
        return loss.reshape(s.shape[:-1]).astype(s.dtype), grad.reshape(s.shape).astype(s.dtype)

    return run


def _make(name, host):
    def fused(scores, labels):
        scores = jnp.asarray(scores)
        if not jnp.issubdtype(scores.dtype, jnp.floating):
            scores = scores.astype(jnp.result_type(float))
        labels = jnp.asarray(labels)
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise TypeError(f"labels must hold integer class indices; got dtype {labels.dtype}")
        if scores.shape[:-1] != labels.shape or scores.ndim < 1:
            raise ValueError(
                f"{name}: scores of shape {scores.shape} need labels of shape "
                f"{scores.shape[:-1]}; got {labels.shape}"
            )
        out = (jax.ShapeDtypeStruct(labels.shape, scores.dtype),
               jax.ShapeDtypeStruct(scores.shape, scores.dtype))
        return jax.pure_callback(host, out, scores, labels, vmap_method="broadcast_all")

    @jax.custom_vjp
    def loss(scores, labels):
        return fused(scores, labels)[0]

    def fwd(scores, labels):
        value, grad = fused(scores, labels)
        return value, grad

    def bwd(grad, cot):
        return (grad * cot[..., None], None)

    loss.defvjp(fwd, bwd)
    return loss


_softmax_ce = _make("softmax_cross_entropy_with_integer_labels", _host(softmax_cross_entropy))
_hinge = _make("multiclass_hinge_loss", _host(multiclass_hinge, variant="crammer_singer"))


def softmax_cross_entropy_with_integer_labels(logits: Any, labels: Any) -> Any:
    """optax's ``softmax_cross_entropy_with_integer_labels``: -log softmax(logits)[label]
    per example (logits (..., C), labels (...) integers in [0, C))."""
    return _softmax_ce(logits, labels)


def multiclass_hinge_loss(scores: Any, labels: Any) -> Any:
    """optax's ``multiclass_hinge_loss``: max_j (s_j + 1 - [j == label]) - s_label per
    example, i.e. fastloss's Crammer-Singer hinge with margin 1."""
    return _hinge(scores, labels)

"""fastloss.jax against optax under jax.jit and jax.grad. CI installs jax, jaxlib and
optax and sets FASTLOSS_REQUIRE_TORCH=1 (missing packages fail instead of skipping)."""

import os

import numpy as np
import pytest

if os.environ.get("FASTLOSS_REQUIRE_TORCH") == "1":
    import jax
    import optax
else:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

import fastloss.jax as flj  # noqa: E402

PAIRS = [
    (flj.softmax_cross_entropy_with_integer_labels, optax.losses.softmax_cross_entropy_with_integer_labels),
    (flj.multiclass_hinge_loss, optax.losses.multiclass_hinge_loss),
]


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("ours,theirs", PAIRS)
@pytest.mark.parametrize("shape", [(37, 10), (5, 3, 40)])  # lanes, long rows, a batch shape
def test_equals_optax_under_jit_and_grad(ours, theirs, shape):
    rng = np.random.default_rng(0)
    s = jnp.asarray(rng.normal(size=shape).astype(np.float32) * 2)
    y = jnp.asarray(rng.integers(0, shape[-1], shape[:-1]))
    got = jax.jit(ours)(s, y)
    assert got.shape == shape[:-1] and got.dtype == jnp.float32
    close(got, theirs(s, y))
    close(ours(s, y), theirs(s, y))

    def total(fn):
        return lambda a, b: (fn(a, b) * jnp.arange(1.0, 1.0 + b.size).reshape(b.shape)).sum()

    g1 = jax.jit(jax.grad(total(ours)))(s, y)
    g2 = jax.grad(total(theirs))(s, y)
    close(g1, g2)
    v1, g1 = jax.value_and_grad(total(ours))(s, y)
    close(v1, total(theirs)(s, y))
    close(g1, g2)


def test_vmap_and_errors():
    rng = np.random.default_rng(1)
    s = jnp.asarray(rng.normal(size=(4, 6, 5)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 5, (4, 6)))
    close(jax.vmap(flj.multiclass_hinge_loss)(s, y), optax.losses.multiclass_hinge_loss(s, y))
    with pytest.raises(TypeError, match="labels must hold integer class indices"):
        flj.softmax_cross_entropy_with_integer_labels(s, y.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"need labels of shape \(4, 6\)"):
        flj.multiclass_hinge_loss(s, y[0])

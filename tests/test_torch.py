"""fastloss.torch against torch.nn.functional: every option, gradcheck, torch.compile
without a graph break, and a training run. CI installs torch and sets
FASTLOSS_REQUIRE_TORCH=1, which turns a missing torch into a failure instead of a skip."""

import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("FASTLOSS_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import fastloss.torch as flt  # noqa: E402

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def close(a, b, dt):
    torch.testing.assert_close(a, b, rtol=TOL[dt], atol=TOL[dt], equal_nan=True)


def data(N, C, dt, seed=0, ignore=None, extra=()):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn((N, C) + tuple(extra), generator=g, dtype=torch.float64) * 2).to(dt)
    y = torch.randint(0, C, (N,) + tuple(extra), generator=g)
    if ignore is not None:
        y[torch.rand(y.shape, generator=g) < 0.3] = ignore
    w = (torch.rand(C, generator=g, dtype=torch.float64) + 0.5).to(dt)
    return x, y, w


def both(fn_ours, fn_torch, x, *args, **kw):
    """(loss, input gradient) of each, the gradient of sum(loss) through autograd."""
    out = []
    for fn in (fn_ours, fn_torch):
        xi = x.clone().requires_grad_()
        loss = fn(xi, *args, **kw)
        loss.sum().backward()
        out.append((loss.detach(), xi.grad))
    return out


@pytest.mark.parametrize("dt", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [10, 40])  # the short-row lanes and the long rows
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("ignore", [-100, 3])
def test_cross_entropy_class_indices(dt, C, reduction, weighted, eps, ignore):
    x, y, w = data(37, C, dt, ignore=ignore)
    kw = dict(weight=w if weighted else None, ignore_index=ignore, reduction=reduction,
              label_smoothing=eps)
    (l1, g1), (l2, g2) = both(flt.cross_entropy, F.cross_entropy, x, y, **kw)
    assert l1.dtype == dt and l1.shape == l2.shape
    close(l1, l2, dt)
    close(g1, g2, dt)


@pytest.mark.parametrize("dt", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.25])
def test_cross_entropy_probabilities(dt, reduction, weighted, eps):
    x, _, w = data(23, 7, dt)
    q = torch.softmax(torch.randn(23, 7, dtype=dt), dim=1)
    kw = dict(weight=w if weighted else None, reduction=reduction, label_smoothing=eps)
    (l1, g1), (l2, g2) = both(flt.cross_entropy, F.cross_entropy, x, q, **kw)
    close(l1, l2, dt)
    close(g1, g2, dt)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_shapes(reduction):
    """Unbatched (C,) input and (N, C, d) input, as PyTorch takes them."""
    dt = torch.float64
    x, y, w = data(5, 4, dt, extra=(3,), ignore=-100)
    (l1, g1), (l2, g2) = both(flt.cross_entropy, F.cross_entropy, x, y, weight=w,
                              reduction=reduction)
    assert l1.shape == l2.shape
    close(l1, l2, dt)
    close(g1, g2, dt)
    x1 = torch.randn(6, dtype=dt)
    (l1, g1), (l2, g2) = both(flt.cross_entropy, F.cross_entropy, x1, torch.tensor(2),
                              reduction=reduction)
    assert l1.shape == l2.shape == ()
    close(l1, l2, dt)
    close(g1, g2, dt)


def test_cross_entropy_all_ignored_and_modules():
    x, y, w = data(4, 3, torch.float64)
    y[:] = -100
    assert torch.isnan(flt.cross_entropy(x, y)) and torch.isnan(F.cross_entropy(x, y))
    x, y, w = data(11, 5, torch.float64, ignore=1)
    ours = flt.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    close(ours(x, y), theirs(x, y), torch.float64)
    assert isinstance(ours, torch.nn.CrossEntropyLoss)
    ours = flt.MultiMarginLoss(p=2, margin=0.5, weight=w, reduction="sum")
    theirs = torch.nn.MultiMarginLoss(p=2, margin=0.5, weight=w, reduction="sum")
    y[y == 1] = 0
    close(ours(x, y), theirs(x, y), torch.float64)


@pytest.mark.parametrize("dt", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [10, 40])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("p,margin", [(1, 1.0), (2, 1.0), (1, 0.3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss(dt, C, reduction, p, margin, weighted):
    x, y, w = data(29, C, dt, seed=3)
    x = x * 0.3  # (margins on both sides of 0)
    kw = dict(p=p, margin=margin, weight=w if weighted else None, reduction=reduction)
    (l1, g1), (l2, g2) = both(flt.multi_margin_loss, F.multi_margin_loss, x, y, **kw)
    assert l1.dtype == dt and l1.shape == l2.shape
    close(l1, l2, dt)
    close(g1, g2, dt)
    x1, y1 = x[0], y[0]  # unbatched
    (l1, g1), (l2, g2) = both(flt.multi_margin_loss, F.multi_margin_loss, x1, y1, **kw)
    close(l1, l2, dt)
    close(g1, g2, dt)


def test_gradcheck_float64():
    x, y, w = data(6, 5, torch.float64, ignore=-100)
    x.requires_grad_()
    for red in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda s: flt.cross_entropy(s, y, weight=w, reduction=red, label_smoothing=0.1), (x,))
        assert torch.autograd.gradcheck(
            lambda s: flt.multi_margin_loss(s, y.clamp(min=0), p=2, weight=w, reduction=red),
            (x,))
    q = torch.softmax(torch.randn(6, 5, dtype=torch.float64), 1).requires_grad_()
    assert torch.autograd.gradcheck(  # probability targets: both arguments
        lambda s, t: flt.cross_entropy(s, t, weight=w, label_smoothing=0.2), (x, q))


def test_backward_scales_the_fused_gradient_and_shares_memory():
    x, y, _ = data(8, 4, torch.float32)
    assert np.shares_memory(flt._scores_np(x), x.numpy())  # contiguous float32: no copy
    xi = x.clone().requires_grad_()
    (flt.cross_entropy(xi, y) * 3.0).backward()
    xt = x.clone().requires_grad_()
    (F.cross_entropy(xt, y) * 3.0).backward()
    close(xi.grad, xt.grad, torch.float32)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        xi = x.clone().double().requires_grad_()
        (g,) = torch.autograd.grad(flt.cross_entropy(xi, y), xi, create_graph=True)
        g.sum().backward()


def test_conversions_and_errors():
    x, y, _ = data(8, 4, torch.float32)
    h = x.to(torch.bfloat16)
    out = flt.cross_entropy(h, y)
    assert out.dtype == torch.bfloat16
    # computed in float32 and rounded once (bfloat16's default tolerance: 1.6e-2)
    torch.testing.assert_close(out, F.cross_entropy(h.float(), y).to(torch.bfloat16))
    xt = x.t().contiguous().t()  # not contiguous: converted once
    close(flt.cross_entropy(xt, y.int()), F.cross_entropy(x, y), torch.float32)
    with pytest.raises(ValueError, match="runs on the CPU: input is on meta"):
        flt.cross_entropy(torch.empty(3, 4, device="meta"), y[:3])
    with pytest.raises(ValueError, match=r"y\[1\] = 9 is not a valid class label"):
        flt.cross_entropy(x[:2], torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        flt.cross_entropy(x, y, reduction="avg")
    with pytest.raises(ValueError, match=r"target has shape \(3,\)"):
        flt.multi_margin_loss(x, y[:3])
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        flt.multi_margin_loss(x, y, p=3)
    with pytest.raises(TypeError, match="floating-point"):
        flt.cross_entropy(y.view(2, 4), y[:2])


def test_compile_without_graph_break():
    torch._dynamo.reset()
    model = torch.nn.Linear(4, 3).double()
    x, y, w = data(16, 4, torch.float64, ignore=-100)
    y = y.clamp(max=2)

    def step(inp, tgt):
        return flt.cross_entropy(model(inp), tgt, weight=w[:3], label_smoothing=0.1) + \
            flt.multi_margin_loss(model(inp), tgt.clamp(min=0))

    ex = torch._dynamo.explain(step)(x, y)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    out = compiled(x, y)
    out.backward()
    g_compiled = model.weight.grad.clone()
    model.weight.grad = None
    ref = step(x, y)
    ref.backward()
    close(out.detach(), ref.detach(), torch.float64)
    close(g_compiled, model.weight.grad, torch.float64)


@pytest.mark.parametrize("loss", ["cross_entropy", "multi_margin_loss"])
def test_training_run_matches_torch(loss):
    """100 SGD steps of a linear model: the weights equal torch's to 1e-10 (float64)."""
    g = torch.Generator().manual_seed(5)
    X = torch.randn(64, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (64,), generator=g)
    y[::7] = -100 if loss == "cross_entropy" else y[::7]
    w0 = torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.1
    weights = []
    for fn in (getattr(flt, loss), getattr(F, loss)):
        lin = torch.nn.Linear(6, 4).double()
        with torch.no_grad():
            lin.weight.copy_(w0)
            lin.bias.zero_()
        opt = torch.optim.SGD(lin.parameters(), lr=0.5, momentum=0.9)
        for _ in range(100):
            opt.zero_grad()
            fn(lin(X), y).backward()
            opt.step()
        weights.append(torch.cat([lin.weight.detach().ravel(), lin.bias.detach()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-10, atol=1e-10)


def test_import_fastloss_does_not_import_torch():
    code = "import sys, fastloss; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))

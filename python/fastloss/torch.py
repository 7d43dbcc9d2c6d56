"""fastloss's losses as PyTorch autograd operations on CPU tensors (extra ``fastloss[torch]``).

``cross_entropy`` and ``multi_margin_loss`` have the signatures and the semantics of
``torch.nn.functional``'s; ``CrossEntropyLoss`` and ``MultiMarginLoss`` are the modules.
Each is one ``torch.library`` custom operation (``fastloss::cross_entropy``,
``fastloss::multi_margin_loss``) whose forward runs the fused kernel: the loss and its
gradient in one pass over the scores. The backward only scales that gradient by
``grad_output`` (no second pass over the scores), so ``loss.backward()`` costs a multiply.
The operations have fake (meta) implementations, so ``torch.compile`` traces them without a
graph break; eager calls run the same forward and backward as a plain
``torch.autograd.Function`` (without the custom operation's dispatch cost).

Tensors: CPU only (a CUDA tensor is a ValueError). Contiguous float32/float64 scores and
int64 labels are read in place (shared, not copied); other layouts and floating dtypes are
converted once (float16/bfloat16 compute in float32 and return their own dtype). First
derivatives only: a double backward (``create_graph=True``) raises.
"""

from __future__ import annotations

from typing import Any, Optional

from ._extras import translate

try:
    import torch
except ModuleNotFoundError as e:  # pragma: no cover - exercised when torch is absent
    raise translate(e, "torch", "fastloss.torch") from None

import numpy as np
from torch import Tensor

from . import _core

__all__ = ["cross_entropy", "multi_margin_loss", "CrossEntropyLoss", "MultiMarginLoss"]

_REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}
_NP_DTYPES: dict[Any, np.dtype[Any]] = {torch.float32: np.dtype(np.float32),
                                       torch.float64: np.dtype(np.float64)}
_HINGE_WW, _SOFTMAX = 0, 2


def _reduction(reduction: Any) -> int:
    code = _REDUCTIONS.get(reduction) if isinstance(reduction, str) else None
    if code is None:
        raise ValueError(f"reduction must be one of 'mean', 'sum', 'none'; got {reduction!r}")
    return code


def _cpu(t: Tensor, name: str) -> None:
    if t.device.type != "cpu":
        raise ValueError(
            f"fastloss.torch runs on the CPU: {name} is on {t.device}; move it with .cpu()"
        )


def _compute_dtype(dt: torch.dtype) -> torch.dtype:
    return torch.float64 if dt == torch.float64 else torch.float32


def _scores_np(x: Tensor) -> np.ndarray:
    """x (N, C) as a NumPy view of its data (contiguous float32/float64: no copy)."""
    return x.detach().contiguous().numpy()


def _class_weight_np(weight: Optional[Tensor], C: int) -> Optional[np.ndarray]:
    if weight is None:
        return None
    return weight.detach().to(torch.float64).contiguous().numpy()


def _outputs(
    x: Tensor, reduction: int, need_grad: bool
) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """(per-row loss tensor or None, gradient tensor or None) of x's dtype, for the kernel.
    The gradient comes from fastloss's output pool (a large block is reused, not faulted
    in afresh), shared with the tensor."""
    L = torch.empty(x.shape[0], dtype=x.dtype) if reduction == 0 else None
    G = None
    if need_grad:
        G = torch.from_numpy(_core.empty(x.shape[0], x.shape[1], _NP_DTYPES[x.dtype]))
    return L, G


def _result(x: Tensor, loss: float, L: Optional[Tensor], G: Optional[Tensor],
            need_grad: bool) -> tuple[Tensor, Tensor]:
    out = L if L is not None else torch.tensor(loss, dtype=x.dtype)
    return out, (G if need_grad and G is not None else x.new_empty(0))


def _result_meta(x: Tensor, reduction: int, need_grad: bool) -> tuple[Tensor, Tensor]:
    out = x.new_empty((x.shape[0],) if reduction == 0 else ())
    return out, (torch.empty_like(x, memory_format=torch.contiguous_format)
                 if need_grad else x.new_empty(0))


# ---- the operations: (N, C) scores of float32/float64 in, (loss, d loss / d scores) out ----


def _cross_entropy_impl(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    ignore_index: int,
    reduction: int,
    label_smoothing: float,
    need_grad: bool,
) -> tuple[Tensor, Tensor]:
    S = _scores_np(input)
    soft = target.is_floating_point()
    y = None if soft else target.detach().contiguous().numpy()
    Q = target.detach().contiguous().numpy() if soft else None
    L, G = _outputs(input, reduction, need_grad)
    loss = _core.score_loss(
        S, y, Q, None, _class_weight_np(weight, S.shape[1]), _SOFTMAX, 1.0, False,
        float(label_smoothing), reduction, None if G is None else G.numpy(),
        None if L is None else L.numpy(), 0, 0.0, None if soft else ignore_index,
    )
    return _result(input, loss, L, G, need_grad)


_cross_entropy_op = torch.library.custom_op(
    "fastloss::cross_entropy", _cross_entropy_impl, mutates_args=())


@_cross_entropy_op.register_fake
def _(input, target, weight, ignore_index, reduction, label_smoothing, need_grad):
    return _result_meta(input, reduction, need_grad)


def _multi_margin_impl(
    input: Tensor,
    target: Tensor,
    p: int,
    margin: float,
    weight: Optional[Tensor],
    reduction: int,
    need_grad: bool,
) -> tuple[Tensor, Tensor]:
    S = _scores_np(input)
    N, C = S.shape
    L, G = _outputs(input, reduction, need_grad)
    # PyTorch's loss is the Weston-Watkins hinge divided by C, and its "mean" is the
    # (class-)weighted sum divided by N: the kernel's sum, every gradient row scaled by
    # 1 / (N C) (or 1 / C)
    scale = 1.0 / (N * C) if reduction == 2 else 1.0 / C
    total = _core.score_loss(
        S, target.detach().contiguous().numpy(), None, None, _class_weight_np(weight, C),
        _HINGE_WW, float(margin), p == 2, 0.0, min(reduction, 1),
        None if G is None else G.numpy(), None if L is None else L.numpy(), 0, scale, None,
    )
    if L is not None:
        L.div_(C)
    return _result(input, total * scale, L, G, need_grad)


_multi_margin_op = torch.library.custom_op(
    "fastloss::multi_margin_loss", _multi_margin_impl, mutates_args=())


@_multi_margin_op.register_fake
def _(input, target, p, margin, weight, reduction, need_grad):
    return _result_meta(input, reduction, need_grad)


def _scale_grad(ctx: Any, grad_out: Tensor) -> Tensor:
    if torch.is_grad_enabled():  # (backward with create_graph=True)
        raise RuntimeError(
            "fastloss.torch losses have first derivatives only (a double backward, "
            "create_graph=True, needs torch.nn.functional's losses)"
        )
    (G,) = ctx.saved_tensors[:1]
    if ctx.reduction == 0:
        return G * grad_out.unsqueeze(1)
    if not torch.compiler.is_compiling() and grad_out.item() == 1.0:
        # loss.backward(): the fused gradient as it is (autograd takes it over without a
        # copy once this node's saved tensors are released; with retain_graph it copies)
        return G
    return G * grad_out


def _no_zero_grads(ctx, output):
    # the gradient output is not differentiated: no (N, C) zeros for its cotangent
    ctx.set_materialize_grads(False)
    ctx.mark_non_differentiable(output[1])


def _ce_setup(ctx, inputs, output):
    _no_zero_grads(ctx, output)
    input, target, weight, _, reduction, eps, _ = inputs
    ctx.reduction = reduction
    ctx.eps = eps
    soft_grad = target.is_floating_point() and target.requires_grad
    ctx.save_for_backward(output[1], input if soft_grad else None,
                          weight if soft_grad else None)


def _ce_backward(ctx, grad_out, _grad_g):
    if grad_out is None:  # (no cotangent for the loss: no gradient)
        return None, None, None, None, None, None, None
    grad_input = _scale_grad(ctx, grad_out)
    grad_target = None
    if ctx.needs_input_grad[1]:  # probability targets: d loss / d q = -(1 - eps) w log p
        _, input, weight = ctx.saved_tensors
        logp = torch.log_softmax(input.detach(), dim=1)
        if weight is not None:
            logp = logp * weight.to(logp.dtype)
        rows = grad_out.unsqueeze(1) if ctx.reduction == 0 else grad_out
        if ctx.reduction == 2:
            rows = rows / input.shape[0]
        grad_target = -(1.0 - ctx.eps) * logp * rows
    return grad_input, grad_target, None, None, None, None, None


def _mm_setup(ctx, inputs, output):
    _no_zero_grads(ctx, output)
    ctx.reduction = inputs[5]
    ctx.save_for_backward(output[1])


def _mm_backward(ctx, grad_out, _grad_g):
    grad_input = None if grad_out is None else _scale_grad(ctx, grad_out)
    return grad_input, None, None, None, None, None, None


torch.library.register_autograd(
    "fastloss::cross_entropy", _ce_backward, setup_context=_ce_setup
)
torch.library.register_autograd(
    "fastloss::multi_margin_loss", _mm_backward, setup_context=_mm_setup
)


def _eager(impl, setup, backward):
    """The same forward, context and backward as a plain autograd.Function: what eager
    calls run (the custom operation's dispatch costs about 0.3 ms a call, 50 times the
    kernel's time on a 200 x 10 minibatch); torch.compile traces the custom operation."""

    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            # (ctx in forward, not a setup_context method: apply would then bind the
            # arguments through inspect.signature, 0.1 ms a call)
            output = impl(*args)
            setup(ctx, args, output)
            return output

        @staticmethod
        def backward(ctx, *grads):
            return backward(ctx, *grads)

    return Op.apply


_cross_entropy_eager = _eager(_cross_entropy_impl, _ce_setup, _ce_backward)
_multi_margin_eager = _eager(_multi_margin_impl, _mm_setup, _mm_backward)


# ---- the functions: PyTorch's argument rules, shapes and dtypes around the operations ----


def _as_rows(input: Tensor, name: str = "input") -> tuple[Tensor, bool, tuple[int, ...]]:
    """input as (M, C) rows of a float32/float64 dtype, and how to shape per-row results
    back: (unbatched, the batch shape other than C)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(input).__name__}")
    _cpu(input, name)
    if not input.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got {input.dtype}")
    if input.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the classes)")
    x = input.to(_compute_dtype(input.dtype))
    if x.dim() == 1:
        return x.unsqueeze(0), True, ()
    if x.dim() == 2:
        return x, False, (x.shape[0],)
    lead = (x.shape[0],) + tuple(x.shape[2:])
    return x.movedim(1, -1).reshape(-1, x.shape[1]), False, lead


def _weight(weight: Optional[Tensor], C: int) -> Optional[Tensor]:
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be a torch.Tensor or None; got {type(weight).__name__}")
    _cpu(weight, "weight")
    if weight.shape != (C,):
        raise ValueError(
            f"weight must have shape ({C},) (one weight per class); got {tuple(weight.shape)}"
        )
    return weight


def _need_grad(*ts: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)


def _labels(target: Tensor, input: Tensor, lead: tuple[int, ...], unbatched: bool) -> Tensor:
    want = () if unbatched else lead
    if tuple(target.shape) != tuple(want):
        raise ValueError(
            f"target has shape {tuple(target.shape)} but input has shape "
            f"{tuple(input.shape)}: expected target of shape {tuple(want)}"
        )
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target must hold integer class indices; got {target.dtype}")
    return target.reshape(-1).to(torch.int64)


def _shape_back(loss: Tensor, reduction: int, unbatched: bool,
                lead: tuple[int, ...]) -> Tensor:
    if reduction != 0:
        return loss
    return loss.reshape(()) if unbatched else loss.reshape(lead)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    size_average: Optional[bool] = None,
    ignore_index: int = -100,
    reduce: Optional[bool] = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """``torch.nn.functional.cross_entropy`` on fastloss's fused kernel (CPU tensors).

    ``input``: (N, C) scores (also (C,) and (N, C, d1, ...), as in PyTorch); ``target``:
    class indices (N,) or class probabilities of input's shape. ``weight`` (C,),
    ``ignore_index`` (class-index targets only), ``reduction`` and ``label_smoothing`` as
    in PyTorch: "mean" divides by the sum of weight[target] over the rows not ignored (by
    the number of rows for probability targets). ``size_average``/``reduce`` are PyTorch's
    deprecated spellings of ``reduction``.
    """
    if size_average is not None or reduce is not None:
        reduction = torch.nn._reduction.legacy_get_string(size_average, reduce)
    red = _reduction(reduction)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be in [0.0, 1.0]; got {label_smoothing!r}")
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index must be an int; got {type(ignore_index).__name__}")
    x, unbatched, lead = _as_rows(input)
    C = x.shape[1]
    weight = _weight(weight, C)
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor; got {type(target).__name__}")
    _cpu(target, "target")
    if target.is_floating_point():  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(
                f"probability target has shape {tuple(target.shape)} but input has shape "
                f"{tuple(input.shape)}: they must match"
            )
        q, _, _ = _as_rows(target.to(input.dtype), "target")
        q = q.to(x.dtype)
    else:
        q = _labels(target, input, lead, unbatched)
    need = _need_grad(input) or (q.is_floating_point() and _need_grad(target))
    op = _cross_entropy_op if torch.compiler.is_compiling() else _cross_entropy_eager
    loss, _ = op(x, q, weight, ignore_index, red, eps, need)
    return _shape_back(loss, red, unbatched, lead).to(input.dtype)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Optional[Tensor] = None,
    size_average: Optional[bool] = None,
    reduce: Optional[bool] = None,
    reduction: str = "mean",
) -> Tensor:
    """``torch.nn.functional.multi_margin_loss`` on fastloss's fused kernel (CPU tensors).

    loss_i = sum_{j != y_i} weight[y_i] * max(0, margin - x[y_i] + x[j])**p / C, p in {1, 2};
    "mean" averages over the N rows (not over the weights), as PyTorch does. ``input`` is
    (N, C) or (C,); ``target`` (N,) or ().
    """
    if size_average is not None or reduce is not None:
        reduction = torch.nn._reduction.legacy_get_string(size_average, reduce)
    red = _reduction(reduction)
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"only p == 1 and p == 2 are supported; got p={p!r}")
    margin = float(margin)
    if input.dim() > 2:
        raise ValueError(f"input must be (N, C) or (C,); got shape {tuple(input.shape)}")
    x, unbatched, lead = _as_rows(input)
    weight = _weight(weight, x.shape[1])
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor; got {type(target).__name__}")
    _cpu(target, "target")
    y = _labels(target, input, lead, unbatched)
    op = _multi_margin_op if torch.compiler.is_compiling() else _multi_margin_eager
    loss, _ = op(x, y, int(p), margin, weight, red, _need_grad(input))
    return _shape_back(loss, red, unbatched, lead).to(input.dtype)


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` (same arguments and state) computed by fastloss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class MultiMarginLoss(torch.nn.MultiMarginLoss):
    """``torch.nn.MultiMarginLoss`` (same arguments and state) computed by fastloss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                 reduction=self.reduction)

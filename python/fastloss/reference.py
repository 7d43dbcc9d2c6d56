"""Plain NumPy implementations of every formula of the fastloss API.

The oracle of the tests and the baseline of the benchmarks: written the way the NumPy
code of CS231n is written (a naive version with loops and a vectorized one), computing
in the dtype of the scores. This module never imports the compiled ``fastloss._core``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "multiclass_hinge",
    "multiclass_hinge_naive",
    "softmax_cross_entropy",
    "softmax_cross_entropy_naive",
    "softmax",
    "log_softmax",
    "svm_loss",
    "softmax_loss",
]


def _float(x):
    a = np.asarray(x)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _reduce(L, dS, w, denom, reduction):
    """Apply the per-sample weights w (or None) and the reduction to per-row losses L and
    per-row gradients dS (unweighted); denom is the mean's denominator."""
    dt = L.dtype
    if w is not None:
        w = w.astype(dt)
        L = w * L
        dS = dS * w[:, None] if dS is not None else None
    if reduction == "none":
        return L, dS
    if reduction == "sum":
        return L.sum(dtype=dt), dS
    if reduction == "mean":
        if L.shape[0] == 0:
            raise ValueError("mean of an empty batch")
        d = dt.type(denom)
        return L.sum(dtype=dt) / d, (dS / d if dS is not None else None)
    raise ValueError(f"unknown reduction {reduction!r}")


def _ignored(y, ignore_index):
    """(labels with the ignored ones replaced by 0, the mask of ignored rows or None)."""
    y = np.asarray(y).astype(np.intp)
    if ignore_index is None:
        return y, None
    ign = y == ignore_index
    return np.where(ign, 0, y), ign


def _drop_ignored(L, d, w, ign):
    """Ignored rows: loss 0, gradient row 0, weight 0 (left out of the mean's denominator).
    (After the reduction their gradient rows are set to 0 again: the mean's 0 / 0.)"""
    if ign is None:
        return L, d, w
    L = np.where(ign, L.dtype.type(0), L)
    if d is not None:
        d = np.where(ign[:, None], d.dtype.type(0), d)
    w = np.ones(L.shape[0]) if w is None else np.asarray(w, np.float64)
    return L, d, np.where(ign, 0.0, w)


def _hinge_weights(N, y, sample_weight, class_weight, ign=None):
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
    if class_weight is not None:
        cwy = np.asarray(class_weight, dtype=np.float64)[y]
        w = cwy if w is None else w * cwy
    if ign is not None:
        w = np.where(ign, 0.0, 1.0 if w is None else w)
    denom = float(N) if w is None else float(w.sum())
    return w, denom


def multiclass_hinge(
    scores,
    y,
    *,
    margin=1.0,
    squared=False,
    variant="weston_watkins",
    sample_weight=None,
    class_weight=None,
    reduction="mean",
    grad=True,
    ignore_index=None,
):
    """Vectorized multiclass hinge loss; see fastloss.multiclass_hinge. A label equal to
    ``ignore_index`` contributes nothing (loss 0, gradient row 0, weight 0 in the mean)."""
    s = _float(scores)
    dt = s.dtype
    y, ign = _ignored(y, ignore_index)
    N, C = s.shape
    rows = np.arange(N)
    mg = dt.type(margin)
    if variant == "weston_watkins":
        correct = s[rows, y][:, None]
        m = s - correct + mg
        m[rows, y] = 0
        h = np.maximum(dt.type(0), m)
        L = (h * h if squared else h).sum(axis=1)
        # a term counts only where its margin is > 0 (where(), not (m > 0) * 2m: 0 * -inf)
        d = np.where(m > 0, 2 * m, dt.type(0)) if squared else (m > 0).astype(dt)
        d[rows, y] = 0
        d[rows, y] = -d.sum(axis=1)
    elif variant == "crammer_singer":
        L = np.zeros(N, dt)
        d = np.zeros((N, C), dt)
        if C >= 2 and N > 0:
            onehot = np.zeros((N, C), bool)
            onehot[rows, y] = True
            others = s[~onehot].reshape(N, C - 1)
            jj = others.argmax(axis=1)
            j = jj + (jj >= y)
            m = s[rows, j] - s[rows, y] + mg
            h = np.maximum(dt.type(0), m)
            L = h * h if squared else h
            dm = np.where(m > 0, 2 * m, dt.type(0)) if squared else (m > 0).astype(dt)
            np.add.at(d, (rows, j), dm)
            np.add.at(d, (rows, y), -dm)
    else:
        raise ValueError(f"unknown variant {variant!r}")
    w, denom = _hinge_weights(N, y, sample_weight, class_weight, ign)
    L, d, w = _drop_ignored(L, d, w, ign)
    loss, dS = _reduce(L, d if grad else None, w, denom, reduction)
    if ign is not None and dS is not None:
        dS[ign] = 0
    return (loss, dS) if grad else loss


def multiclass_hinge_naive(scores, y, *, margin=1.0, squared=False, variant="weston_watkins"):
    """Loops over rows and classes (as CS231n's naive version); mean over N, no weights."""
    s = _float(scores)
    N, C = s.shape
    loss = 0.0
    dS = np.zeros_like(s)
    for i in range(N):
        yi = int(y[i])
        if variant == "weston_watkins":
            for j in range(C):
                if j == yi:
                    continue
                m = s[i, j] - s[i, yi] + margin
                if m > 0:
                    loss += m * m if squared else m
                    g = 2 * m if squared else 1.0
                    dS[i, j] += g
                    dS[i, yi] -= g
        else:
            best = None
            for j in range(C):
                if j != yi and (best is None or s[i, j] > s[i, best]):
                    best = j
            if best is None:
                continue
            m = s[i, best] - s[i, yi] + margin
            if m > 0:
                loss += m * m if squared else m
                g = 2 * m if squared else 1.0
                dS[i, best] += g
                dS[i, yi] -= g
    return loss / N, dS / N


def softmax(scores, axis=-1):
    s = _float(scores)
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(scores, axis=-1):
    s = _float(scores)
    d = s - s.max(axis=axis, keepdims=True)
    return d - np.log(np.exp(d).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(
    scores,
    y,
    *,
    label_smoothing=0.0,
    sample_weight=None,
    class_weight=None,
    reduction="mean",
    grad=True,
    ignore_index=None,
):
    """Vectorized softmax cross-entropy (hard labels or soft targets), PyTorch's rules for
    class weights, label smoothing and ``ignore_index`` (hard labels only: an ignored row
    has loss 0, gradient row 0 and is left out of the mean's denominator); see
    fastloss.softmax_cross_entropy."""
    s = _float(scores)
    dt = s.dtype
    N, C = s.shape
    eps = float(label_smoothing)
    d = s - s.max(axis=1, keepdims=True)
    e = np.exp(d)
    se = e.sum(axis=1, keepdims=True)
    logp = d - np.log(se)
    p = e / se
    cw = None if class_weight is None else np.asarray(class_weight, dtype=dt)
    yarr = np.asarray(y)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    ign = None
    if yarr.ndim == 2:  # soft targets
        q = yarr.astype(dt)
        a = (1 - eps) * q + dt.type(eps / C) if eps > 0 else q
        if cw is not None:
            a = a * cw
        L = -(a * logp).sum(axis=1)
        denom = float(N) if sw is None else float(sw.sum())
    else:
        yi, ign = _ignored(yarr, ignore_index)
        rows = np.arange(N)
        cwy = np.ones(N, dt) if cw is None else cw[yi]
        a = np.zeros((N, C), dt)
        a[rows, yi] = (1 - eps) * cwy
        L = (1 - eps) * cwy * -logp[rows, yi] if eps < 1 else np.zeros(N, dt)
        if eps > 0:
            cwv = np.ones(C, dt) if cw is None else cw
            a = a + dt.type(eps / C) * cwv
            L = L - ((dt.type(eps / C) * cwv) * logp).sum(axis=1)  # (a_c first, as API.md)
        wy = cwy.astype(np.float64) if sw is None else sw * cwy
        denom = float(wy.sum() if ign is None else np.where(ign, 0.0, wy).sum())
    dS = p * a.sum(axis=1, keepdims=True) - a if grad else None
    L, dS, sw = _drop_ignored(L.astype(dt), dS, sw, ign)
    loss, dS = _reduce(L, dS, sw, denom, reduction)
    if ign is not None and dS is not None:
        dS[ign] = 0
    return (loss, dS) if grad else loss


def softmax_cross_entropy_naive(scores, y):
    """Loops over rows and classes (CS231n's softmax_loss_naive at the score level)."""
    s = _float(scores)
    N, C = s.shape
    loss = 0.0
    dS = np.zeros_like(s)
    for i in range(N):
        m = max(s[i])
        exps = [np.exp(s[i, j] - m) for j in range(C)]
        total = sum(exps)
        loss += -np.log(exps[int(y[i])] / total)
        for j in range(C):
            dS[i, j] = exps[j] / total - (1.0 if j == int(y[i]) else 0.0)
    return loss / N, dS / N


def svm_loss(x, y):
    """CS231n layers.svm_loss, as written in the assignment."""
    N = x.shape[0]
    correct_class_scores = x[np.arange(N), y]
    margins = np.maximum(0, x - correct_class_scores[:, np.newaxis] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def softmax_loss(x, y):
    """CS231n layers.softmax_loss, as written in the assignment."""
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


# ---------------------------------------------------------------------------------------
# Optimization: the SGD update written out from PyTorch's documented algorithm, the CS231n
# optim.py rules, and the best in-place NumPy expression (the benchmark baseline).

__all__ += ["sgd_update", "sgd_cs231n", "sgd_momentum_cs231n", "sgd_momentum_inplace"]


def sgd_update(
    p, g, b, *, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False
):
    """One step of torch.optim.SGD as its documentation writes it; b is the momentum
    buffer, None before the first step. Returns (new p, new b) as new arrays, computed in
    p's dtype."""
    p = np.asarray(p)
    dt = p.dtype
    g = np.asarray(g).astype(dt)
    d = -g if maximize else g
    if weight_decay != 0:
        d = d + dt.type(weight_decay) * p
    if momentum != 0:
        mu = dt.type(momentum)
        if b is None:
            b = d.copy()
        else:
            b = mu * np.asarray(b) + dt.type(1 - dampening) * d
        d = d + mu * b if nesterov else b
    return p - dt.type(lr) * d, b


def sgd_cs231n(w, dw, config=None):
    """CS231n optim.sgd, as written in the assignment (w is updated in place)."""
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config


def sgd_momentum_cs231n(w, dw, config=None):
    """CS231n optim.sgd_momentum, as written in the assignment."""
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    return next_w, config


def sgd_momentum_inplace(p, g, b, lr, momentum, tmp=None):
    """The fastest plain NumPy momentum step (after the first): in place, no temporary
    when a scratch array ``tmp`` like p is given."""
    b *= momentum
    b += g
    if tmp is None:
        p -= lr * b
    else:
        np.multiply(b, lr, out=tmp)
        p -= tmp


# ---- model level: linear classifiers --------------------------------------------------


def linear_loss(
    W,
    X,
    y,
    *,
    loss="softmax",
    reg=0.0,
    penalty="l2",
    l1_ratio=0.5,
    b=None,
    sample_weight=None,
    class_weight=None,
    indices=None,
    margin=1.0,
    squared=False,
    variant="weston_watkins",
    label_smoothing=0.0,
    reduction="mean",
    grad=True,
):
    """loss(X[indices] @ W + b, y[indices]) + reg * R(W) and its gradients, in NumPy: the
    scores are materialised, the score-level reference gives dS, then dW = Xb.T @ dS."""
    W = _float(W)
    X = _float(X)
    y = np.asarray(y)
    if indices is not None:
        idx = np.asarray(indices)
        X = X[idx]
        y = y[idx]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[idx]
    scores = X @ W
    if b is not None:
        scores = scores + np.asarray(b, dtype=scores.dtype)
    kw = dict(sample_weight=sample_weight, class_weight=class_weight, reduction=reduction)
    if loss == "softmax":
        data, dS = softmax_cross_entropy(scores, y, label_smoothing=label_smoothing, **kw)
    else:
        data, dS = multiclass_hinge(scores, y, margin=margin, squared=squared,
                                    variant=variant, **kw)
    if penalty == "l2":
        R, dR = np.sum(W * W), 2 * W
    elif penalty == "l1":
        R, dR = np.sum(np.abs(W)), np.sign(W)
    else:
        R = l1_ratio * np.sum(np.abs(W)) + (1 - l1_ratio) * np.sum(W * W)
        dR = l1_ratio * np.sign(W) + 2 * (1 - l1_ratio) * W
    total = data + reg * R if reg else data  # reg = 0: no penalty (not 0 * inf = NaN)
    if not grad:
        return total
    dW = X.T @ dS + reg * dR if reg else X.T @ dS
    if b is not None:
        return total, dW, dS.sum(axis=0)
    return total, dW


def svm_loss_naive(W, X, y, reg):
    """CS231n linear_svm.svm_loss_naive, as written in the assignment (loops)."""
    dW = np.zeros(W.shape)
    num_classes = W.shape[1]
    num_train = X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def svm_loss_vectorized(W, X, y, reg):
    """CS231n linear_svm.svm_loss_vectorized, as written in the assignment."""
    num_train = X.shape[0]
    scores = X.dot(W)
    correct = scores[np.arange(num_train), y][:, None]
    margins = np.maximum(0, scores - correct + 1)
    margins[np.arange(num_train), y] = 0
    loss = margins.sum() / num_train + reg * np.sum(W * W)
    mask = (margins > 0).astype(X.dtype)
    mask[np.arange(num_train), y] = -mask.sum(axis=1)
    dW = X.T.dot(mask) / num_train + 2 * reg * W
    return loss, dW


def softmax_loss_naive(W, X, y, reg):
    """CS231n softmax.softmax_loss_naive, as written in the assignment (loops)."""
    loss = 0.0
    dW = np.zeros_like(W)
    num_train = X.shape[0]
    num_classes = W.shape[1]
    for i in range(num_train):
        scores = X[i].dot(W)
        scores = scores - np.max(scores)
        p = np.exp(scores) / np.sum(np.exp(scores))
        loss += -np.log(p[y[i]])
        for j in range(num_classes):
            dW[:, j] += (p[j] - (j == y[i])) * X[i]
    loss = loss / num_train + reg * np.sum(W * W)
    dW = dW / num_train + 2 * reg * W
    return loss, dW


def softmax_loss_vectorized(W, X, y, reg):
    """CS231n softmax.softmax_loss_vectorized, as written in the assignment."""
    num_train = X.shape[0]
    scores = X.dot(W)
    scores = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(num_train), y]).sum() / num_train + reg * np.sum(W * W)
    p[np.arange(num_train), y] -= 1
    dW = X.T.dot(p) / num_train + 2 * reg * W
    return loss, dW


# ---------------------------------------------------------------------------------------
# Bag of visual words (Coates & Ng 2011), as fastloss.features.BagOfWords computes it.

__all__ += [
    "bow_patches",
    "bow_normalize",
    "bow_whiten",
    "bow_distances",
    "bow_encode",
    "bow_pool",
    "bag_of_words",
]


def bow_patches(images, patch_size, stride=1, dtype=np.float64):
    """Every patch of (N, H, W) or (N, H, W, C) images, (N, h, w, patch_dim) of dtype: the
    values of a patch in (row, column, channel) order, h = (H - patch_size) // stride + 1."""
    x = np.asarray(images, dtype=dtype)
    if x.ndim == 3:
        x = x[..., None]
    win = np.lib.stride_tricks.sliding_window_view(x, (patch_size, patch_size), axis=(1, 2))
    win = win[:, ::stride, ::stride]  # (N, h, w, C, p, p)
    n, h, w = win.shape[:3]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n, h, w, -1)


def bow_normalize(patches, contrast_eps):
    """Each patch (last axis) minus its mean, over sqrt(its variance (ddof 0) + eps)."""
    m = patches.mean(axis=-1, keepdims=True)
    var = ((patches - m) ** 2).mean(axis=-1, keepdims=True)
    return (patches - m) / np.sqrt(var + contrast_eps)


def bow_whiten(patches, mean, whitening):
    """(patches - mean) @ whitening (no whitening when it is None)."""
    c = patches - mean
    return c if whitening is None else c @ whitening


def bow_distances(z, codebook):
    """Euclidean distances (..., K) of whitened patches (..., D) to the codewords (K, D):
    ``sqrt(|z|^2 - 2 z.c + |c|^2)`` (negative rounding residue clipped to 0)."""
    d2 = (z * z).sum(axis=-1, keepdims=True) - 2.0 * (z @ codebook.T) + (codebook**2).sum(axis=1)
    return np.sqrt(np.maximum(d2, 0.0))


def bow_encode(dist, encoding="triangle"):
    """"triangle": max(0, mean_k d - d_k); "hard": one-hot of the nearest (lowest index)."""
    if encoding == "triangle":
        return np.maximum(0.0, dist.mean(axis=-1, keepdims=True) - dist)
    if encoding == "hard":
        k = dist.shape[-1]
        return (np.argmin(dist, axis=-1)[..., None] == np.arange(k)).astype(dist.dtype)
    raise ValueError(f"encoding must be 'triangle' or 'hard'; got {encoding!r}")


def bow_pool(codes, pooling="quadrants"):
    """(N, h, w, K) codes summed over the image ("sum": (N, K)) or over its quadrants, rows
    [0, h // 2), [h // 2, h) by columns [0, w // 2), [w // 2, w), in the order top-left,
    top-right, bottom-left, bottom-right ("quadrants": (N, 4 K))."""
    if pooling == "sum":
        return codes.sum(axis=(1, 2))
    if pooling != "quadrants":
        raise ValueError(f"pooling must be 'quadrants' or 'sum'; got {pooling!r}")
    h, w = codes.shape[1:3]
    a, b = h // 2, w // 2
    parts = [codes[:, :a, :b], codes[:, :a, b:], codes[:, a:, :b], codes[:, a:, b:]]
    return np.concatenate([q.sum(axis=(1, 2)) for q in parts], axis=1)


def bag_of_words(images, codebook, mean, whitening, *, patch_size, stride=1,
                 encoding="triangle", pooling="quadrants", contrast_eps=10.0, chunk=None,
                 dtype=np.float64):
    """Bag-of-visual-words features of images, (N, 4 K) or (N, K): the composition
    patches -> normalize -> whiten -> distances -> encode -> pool, computed in dtype,
    ``chunk`` images at a time (None: all at once)."""
    n = len(images)
    chunk = n if chunk is None else max(1, int(chunk))
    codebook, mean = np.asarray(codebook, dtype), np.asarray(mean, dtype)
    whitening = None if whitening is None else np.asarray(whitening, dtype)
    out = []
    for i in range(0, max(n, 1), chunk):
        p = bow_patches(images[i : i + chunk], patch_size, stride, dtype)
        p = bow_normalize(p, np.dtype(dtype).type(contrast_eps))
        rows = p.reshape(-1, p.shape[-1])  # (2-D products: one BLAS call each)
        dist = bow_distances(bow_whiten(rows, mean, whitening), codebook)
        codes = bow_encode(dist, encoding).reshape(p.shape[:3] + (len(codebook),))
        out.append(bow_pool(codes, pooling))
    return np.concatenate(out, axis=0)

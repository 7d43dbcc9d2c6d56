"""The command line: python -m fastloss (also installed as fastloss).

    fastloss train      train LinearSVM and Softmax on a data set (digits by default)
    fastloss bench      every kernel against the NumPy reference (and PyTorch), medians
    fastloss gradcheck  every kernel's analytic gradient against centred differences
    fastloss config     the build configuration (show_config)
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

MODELS = {"softmax": "Softmax", "svm": "LinearSVM"}


# ---------------------------------------------------------------------------------------
# train


def _load(spec, features, seed):
    """(Xtr, ytr, Xval, yval, Xte, yte, image_shape or None, description)."""
    from sklearn.model_selection import train_test_split

    from . import datasets

    images = None
    split = None
    if spec == "digits":
        X, y, images = datasets.load_digits()
        desc = "digits (scikit-learn, 8x8 images, 10 classes)"
    elif spec.startswith("cifar10:"):
        Xtr, ytr, Xte, yte = datasets.load_cifar10(spec[len("cifar10:"):])
        desc = f"CIFAR-10 from {spec[len('cifar10:'):]}"
        split = (Xtr, ytr, Xte, yte)
    elif spec.endswith(".npz"):
        d = datasets.load_npz(spec)
        desc = f"{spec}"
        if "X" in d:
            X, y = d["X"], d["y"]
            if X.ndim >= 3:
                images = X
        else:
            split = (d["X_train"], d["y_train"], d["X_test"], d["y_test"])
            if "X_val" in d:  # (a validation set of its own: used as given)
                split += (d["X_val"], d["y_val"])
    else:
        p = Path(spec)
        if p.is_dir():
            hint = f"; for the CIFAR-10 batches in a folder use --data cifar10:{spec}"
        elif not p.exists():
            hint = f"; {spec!r} does not exist"
        else:
            hint = f"; {spec!r} is not a .npz file"
        raise SystemExit(f"fastloss train: --data must be digits, cifar10:DIR or FILE.npz"
                         f"{hint}")

    def split_rows(yy, size, full, parts, frac):
        """train_test_split of the rows of yy, stratified. Too few rows: a message naming
        the rows (of `full`, the labels the user gave) and rows per class it needs; frac is
        the share of `full` the smallest part gets."""
        try:
            return train_test_split(np.arange(len(yy)), test_size=size, stratify=yy,
                                    random_state=seed)
        except ValueError:
            k = len(np.unique(full))
            raise ValueError(
                f"{spec}: {len(full)} rows in {k} classes are too few for the stratified "
                f"split into {parts}: every part needs at least one row of every class, "
                f"which takes at least {math.ceil(k / frac)} rows and {3 if 'test' in parts else 2}"
                " or more per class -- add rows, or give X_train, y_train, X_val, y_val, "
                "X_test, y_test"
            ) from None

    if split is None:
        tvt = "train, validation (15% of the rest) and test (25%)"
        i_trval, i_te = split_rows(y, 0.25, y, tvt, 0.75 * 0.15)
        i_tr, i_val = (i_trval[j] for j in split_rows(y[i_trval], 0.15, y, tvt, 0.75 * 0.15))
        imgs = images if images is not None else X
        parts = [(imgs[i], y[i]) for i in (i_tr, i_val, i_te)]
    elif len(split) == 6:
        Xtr, ytr, Xte, yte, Xva, yva = split
        parts = [(Xtr, ytr), (Xva, yva), (Xte, yte)]
    else:
        Xtr, ytr, Xte, yte = split
        n_val = min(1000, max(1, len(ytr) // 10))
        i_tr, i_val = split_rows(ytr, n_val, ytr, "train, validation (10% of X_train)", 0.1)
        parts = [(Xtr[i_tr], ytr[i_tr]), (Xtr[i_val], ytr[i_val]), (Xte, yte)]
    seen = set(np.unique(parts[0][1]).tolist())
    for what, (_, yy) in zip(("validation", "test"), parts[1:]):
        unseen = sorted(set(np.unique(yy).tolist()) - seen)
        if unseen:
            warnings.warn(
                f"{spec}: {what} labels {unseen[:10]}{' ...' if len(unseen) > 10 else ''} "
                f"never occur in the training rows: their {what} rows are always "
                "misclassified", stacklevel=2)
    image_shape = parts[0][0].shape[1:] if parts[0][0].ndim >= 3 else None
    # The bag of words' codebook is fitted on the training split only.
    bow = _fit_bow(parts[0][0], seed) if "bow" in features.split("+") else None
    out = []
    for imgs, yy in parts:
        out += [_features(imgs, features, bow), yy]
    if features != "raw":
        image_shape = None
    return (*out, image_shape, desc)


def _fit_bow(imgs, seed):
    """A BagOfWords fitted on the training images: 100 words of 3x3 patches for grayscale
    images, 200 words of 6x6 patches (Coates & Ng's) for colour ones."""
    from . import features as F

    if imgs.ndim not in (3, 4):
        raise SystemExit("fastloss train: --features with bow needs image data")
    size = (100, 3) if imgs.ndim == 3 else (200, 6)
    return F.BagOfWords(n_words=size[0], patch_size=size[1], random_state=seed).fit(imgs)


def _features(imgs, features, bow=None):
    from . import features as F

    if features == "raw":
        return imgs.reshape(len(imgs), -1).astype(np.float32)
    blocks = [] if bow is None else [bow.transform(imgs).astype(np.float32)]
    if "hog+hist" not in features:
        return blocks[0]
    if imgs.ndim == 4:  # colour: the CS231n pipeline, HOG + 10-bin hue histogram
        hh = F.extract_features(
            imgs, [F.hog_feature, functools.partial(F.color_histogram_hsv, nbin=10)]
        ).astype(np.float32)
    elif imgs.ndim == 3:  # grayscale: HOG with cells that fit small images, and the pixels
        h = imgs.shape[1]
        ppc = (8, 8) if h >= 24 else (2, 2)
        hog = F.hog_batch(imgs.astype(np.float64), pixels_per_cell=ppc, cells_per_block=(2, 2))
        hh = np.hstack([hog, imgs.reshape(len(imgs), -1)]).astype(np.float32)
    else:
        raise SystemExit(f"fastloss train: --features {features} needs image data")
    return np.hstack([hh] + blocks)


def _accuracy(model, X, y):
    return float(np.mean(model.predict(X) == y))


def _make(name, args, D, **over):
    from . import classifiers

    cls = getattr(classifiers, MODELS[name])
    params = cls().get_params()
    # Default steps are tuned on the 64 standardized features of digits; with more
    # features a row's squared norm grows like D, so the default step shrinks with it.
    params["learning_rate"] *= min(1.0, 64.0 / D)
    for k, a in (("learning_rate", "lr"), ("reg", "reg"), ("num_iters", "iters"),
                 ("batch_size", "batch_size"), ("momentum", "momentum")):
        if getattr(args, a) is not None:
            params[k] = getattr(args, a)
    solver = getattr(args, "solver", "sgd")
    if solver == "lbfgs":  # (L-BFGS needs a smooth loss: LinearSVM takes the squared hinge)
        params.update(solver="lbfgs", **({"squared": True} if name == "svm" else {}))
        if getattr(args, "max_iter", None) is not None:
            params["max_iter"] = args.max_iter
    params.update(random_state=args.seed, **over)
    return cls(**params)


def _search(name, args, Xtr, ytr, Xval, yval):
    """A small lr x reg grid around the model's defaults: prints the validation table and
    returns the best (lr, reg)."""
    base = _make(name, args, Xtr.shape[1])
    if base.solver == "lbfgs":
        return None, _search_reg(name, args, base, Xtr, ytr, Xval, yval)
    lrs = [base.learning_rate * f for f in (0.1, 0.3, 1.0, 3.0)]
    regs = [base.reg * f for f in (0.1, 1.0, 10.0, 100.0)]
    print(f"\n{MODELS[name]}: validation accuracy, learning rate x regularization "
          f"({base.num_iters} iterations each)")
    print("  lr \\ reg " + "".join(f"{r:>10.0e}" for r in regs))
    best = (-1.0, None, None)
    for lr in lrs:
        row = []
        for reg in regs:
            m = _make(name, args, Xtr.shape[1], learning_rate=lr, reg=reg).fit(Xtr, ytr)
            acc = _accuracy(m, Xval, yval)
            row.append(acc)
            if acc > best[0]:
                best = (acc, lr, reg)
        print(f"  {lr:>8.0e} " + "".join(f"{a:>10.3f}" for a in row))
    print(f"  best: lr={best[1]:.0e} reg={best[2]:.0e} (validation {best[0]:.3f})")
    return best[1], best[2]


def _log_ticks(ax, values):
    """A log y axis whose ticks are labelled in plain numbers (1, 2, 3, 5 per decade when
    the data span at most two decades, 1, 2, 5 up to three, else every decade); a linear axis when the data span
    less than a factor of 3, where a log axis would show no labelled tick at all."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0 or v.max() < 3 * v.min():
        ax.set_ylabel("loss")
        return
    ax.set_yscale("log")
    ax.set_ylabel("loss (log scale)")
    decades = np.log10(v.max() / v.min())
    subs = (1.0, 2.0, 3.0, 5.0) if decades <= 2 else (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _search_reg(name, args, base, Xtr, ytr, Xval, yval):
    """L-BFGS has no step size: a grid over reg alone (1e-3 to 1e2 times the default);
    prints the validation accuracies and returns the best reg."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    regs = [base.reg * f for f in (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)]
    print(f"\n{MODELS[name]} (L-BFGS, at most {base.max_iter} iterations): validation "
          "accuracy by regularization")
    print("  reg      " + "".join(f"{r:>10.0e}" for r in regs))
    accs = []
    for reg in regs:
        with warnings.catch_warnings():  # (a weak reg may need more iterations: the grid
            warnings.simplefilter("ignore", ConvergenceWarning)  # compares what it got)
            m = _make(name, args, Xtr.shape[1], reg=reg).fit(Xtr, ytr)
        accs.append(_accuracy(m, Xval, yval))
    print("  accuracy " + "".join(f"{a:>10.3f}" for a in accs))
    i = int(np.argmax(accs))
    print(f"  best: reg={regs[i]:.0e} (validation {accs[i]:.3f})")
    return regs[i]


def _plot_losses(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for ax, (name, m) in zip(axes[0], results):
        h = np.asarray(m.loss_history_)
        if m.solver == "lbfgs":  # (one full-batch objective per iteration: no smoothing)
            ax.plot(np.arange(1, len(h) + 1), h, lw=1.5, label="objective (full batch)")
            ax.set_title(f"{MODELS[name]} training loss (L-BFGS)")
            ax.set_xlabel("iteration")
            ax.set_ylabel("loss (log scale)")
            ax.set_yscale("log")
            ax.legend()
            continue
        ax.plot(h, lw=0.6, alpha=0.5, label="minibatch loss")
        k = max(1, len(h) // 50)
        if len(h) >= k:
            sm = np.convolve(h, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(k - 1, len(h)), sm, lw=1.5, label=f"mean of {k}")
        ax.set_title(f"{MODELS[name]} training loss")
        ax.set_xlabel("iteration")
        _log_ticks(ax, h)
        ax.grid(which="major", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_templates(model, name, image_shape, class_names, path):
    """One image per class: the weights of the standardized pixels, rescaled to 0..255
    over all classes, as the lecture shows them (bright: evidence for the class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W = np.asarray(model.coef_, np.float64)
    C = W.shape[0]
    w_min, w_max = W.min(), W.max()
    imgs = 255.0 * (W - w_min) / max(w_max - w_min, 1e-12)
    fig, axes = plt.subplots(1, C, figsize=(1.3 * C, 2.4))
    axes = np.atleast_1d(axes)
    shown = None
    for c, ax in enumerate(axes):
        im = imgs[c].reshape(image_shape)
        if im.ndim == 3:
            ax.imshow(im.astype(np.uint8))
        else:
            shown = ax.imshow(im, cmap="gray", vmin=0, vmax=255)
        ax.set_title(str(class_names[c]), fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{MODELS[name]}: learned weights, one template per class", fontsize=10)
    fig.tight_layout(rect=(0, 0.25, 1, 1))
    caption = ("bright: a large positive weight (the pixel raises the class's score); "
               "dark: a negative one (it lowers it)")
    if shown is not None:  # grayscale: a colour bar in the weights' own units
        cax = fig.add_axes((0.3, 0.19, 0.4, 0.035))
        cb = fig.colorbar(shown, cax=cax, orientation="horizontal")
        ticks = [0.0, 127.5, 255.0]
        cb.set_ticks(ticks, labels=[f"{w_min + t / 255 * (w_max - w_min):.2g}" for t in ticks])
        cb.ax.tick_params(labelsize=7)
        fig.text(0.295, 0.205, "weight", ha="right", va="center", fontsize=7)
    else:
        caption = "each colour channel rescaled over all classes; " + caption
    fig.text(0.5, 0.015, caption, ha="center", fontsize=7.5)
    fig.savefig(path, dpi=100)
    plt.close(fig)


CIFAR_NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cmd_train(args):
    t_start = time.perf_counter()
    from ._extras import available, require

    require("sklearn", "fastloss train")
    plots = available("matplotlib")
    if not plots:  # said before training, not found after it
        print('fastloss train: matplotlib is not installed, so no pictures will be written '
              '(pip install "fastloss[plot]")', file=sys.stderr, flush=True)
    Xtr, ytr, Xval, yval, Xte, yte, image_shape, desc = _load(args.data, args.features,
                                                              args.seed)
    mean = Xtr.mean(axis=0, dtype=np.float64)
    std = Xtr.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    Xtr, Xval, Xte = ((X - mean.astype(X.dtype)) / std.astype(X.dtype) for X in (Xtr, Xval, Xte))
    print(f"data: {desc}; features: {args.features}, {Xtr.shape[1]} per sample")
    print(f"split (stratified, seed {args.seed}): train {len(ytr)}, validation {len(yval)}, "
          f"test {len(yte)}; standardized with the training set's mean and deviation")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = ["softmax", "svm"] if args.model == "both" else [args.model]
    results = []
    rows = []
    for name in names:
        over = {}
        if args.search:
            lr, reg = _search(name, args, Xtr, ytr, Xval, yval)
            over = dict(reg=reg) if lr is None else dict(learning_rate=lr, reg=reg)
        m = _make(name, args, Xtr.shape[1], verbose=not args.quiet, **over)
        t0 = time.perf_counter()
        m.fit(Xtr, ytr)
        dt = time.perf_counter() - t0
        accs = [_accuracy(m, X, y) for X, y in ((Xtr, ytr), (Xval, yval), (Xte, yte))]
        rows.append((MODELS[name], *accs, dt, m))
        results.append((name, m))
        if m.solver == "lbfgs":
            how = (f"{m.n_iter_} L-BFGS iterations, reg={m.reg:g}"
                   + (", squared hinge" if name == "svm" else ""))
        else:
            how = (f"{m.num_iters} iterations, lr={m.learning_rate:g}, reg={m.reg:g}, "
                   f"batch {m.batch_size}, momentum {m.momentum:g}")
        print(f"{MODELS[name]:>9}: train {accs[0]:.3f}  validation {accs[1]:.3f}  "
              f"test {accs[2]:.3f}  ({dt:.2f} s, {how})", flush=True)
    if not plots:
        print(f"total time {time.perf_counter() - t_start:.1f} s (no pictures: matplotlib "
              "is not installed)")
        return 0
    files = [out / "loss_curves.png"]
    _plot_losses(results, files[0])
    if image_shape is not None:
        classes = results[0][1].classes_
        class_names = ([CIFAR_NAMES[int(c)] for c in classes]
                       if args.data.startswith("cifar10:") else classes)
        for name, m in results:
            f = out / f"templates_{name}.png"
            _plot_templates(m, name, image_shape, class_names, f)
            files.append(f)
    print("wrote " + ", ".join(str(f) for f in files))
    print(f"total time {time.perf_counter() - t_start:.1f} s")
    return 0


# ---------------------------------------------------------------------------------------
# bench


def _median_time(fn, repeat, min_time=0.0):
    fn()  # warm up
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < repeat or (time.perf_counter() < t_end and len(times) < 50 * repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt(t):
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.2f} s"


def cmd_bench(args):
    import fastloss as fl
    from fastloss import reference as ref

    try:
        import torch
        import torch.nn.functional as tf
    except ImportError:
        torch = None
    quick = args.quick
    rep = 3 if quick else 11
    rng = np.random.default_rng(0)
    rows = []

    def add(op, shape, fast, numpy_fn, torch_fn=None, repeat=rep, min_time=0.0):
        tf_ = _median_time(fast, repeat, min_time)
        tn = _median_time(numpy_fn, repeat, min_time) if numpy_fn else None
        tt = _median_time(torch_fn, repeat, min_time) if torch_fn else None
        rows.append((op, shape, tf_, tn, tt))
        _print_row(rows[-1])

    info = fl.build_info()
    print(f"fastloss {info['version']} ({info['isa_active']}, {info['max_threads']} threads), "
          f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else
                                       ", torch not installed")
          + (" -- quick" if quick else ""))
    print(f"{'operation':<36}{'shape':<24}{'fastloss':>12}{'NumPy':>12}{'ratio':>8}"
          f"{'PyTorch':>12}{'ratio':>8}")

    for N in (1_000_000, 200):
        s = rng.standard_normal((N, 10), dtype=np.float32)
        y = rng.integers(0, 10, N)
        mt = 50 * rep if N == 200 else rep
        ts, ty = (torch.from_numpy(s), torch.from_numpy(y)) if torch else (None, None)
        add("softmax_cross_entropy fwd+bwd", f"{N:,}x10 float32",
            functools.partial(fl.softmax_cross_entropy, s, y),
            functools.partial(ref.softmax_cross_entropy, s, y),
            functools.partial(_autograd, tf.cross_entropy, ts, ty) if torch else None, repeat=mt)
        add("multiclass_hinge fwd+bwd", f"{N:,}x10 float32",
            functools.partial(fl.multiclass_hinge, s, y),
            functools.partial(ref.multiclass_hinge, s, y),
            functools.partial(_autograd, tf.multi_margin_loss, ts, ty) if torch else None, repeat=mt)

    if torch:  # through autograd: fastloss.torch's operation (PyTorch's col: F's loss)
        import fastloss.torch as flt

        for N in (1_000_000, 200):
            s = rng.standard_normal((N, 10), dtype=np.float32)
            y = rng.integers(0, 10, N)
            ts, ty = torch.from_numpy(s), torch.from_numpy(y)
            mt = 50 * rep if N == 200 else rep
            for name in ("cross_entropy", "multi_margin_loss"):
                add(f"fastloss.torch.{name} autograd", f"{N:,}x10 float32",
                    functools.partial(_autograd, getattr(flt, name), ts, ty), None,
                    functools.partial(_autograd, getattr(tf, name), ts, ty), repeat=mt)

    N = 5_000 if quick else 49_000
    X = rng.standard_normal((N, 3073), dtype=np.float32)
    W = 1e-3 * rng.standard_normal((3073, 10), dtype=np.float32)
    y = rng.integers(0, 10, N)
    for loss in ("softmax", "hinge"):
        add(f"linear_loss {loss} (reg 2.5e4)", f"{N:,}x3073 float32",
            lambda loss=loss: fl.linear_loss(W, X, y, loss=loss, reg=2.5e4),
            lambda loss=loss: ref.linear_loss(W, X, y, loss=loss, reg=2.5e4))
    idx = rng.integers(0, N, 200)
    add("linear_loss softmax, 200 indices", f"of {N:,}x3073 float32",
        lambda: fl.linear_loss(W, X, y, reg=2.5e4, indices=idx),
        lambda: ref.linear_loss(W, X, y, reg=2.5e4, indices=idx), repeat=20 * rep)

    n = 10_000_000
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    pn, bn, tmp = p.copy(), g.copy(), p.copy()
    opt = fl.SGD(p, lr=1e-3, momentum=0.9)
    opt.step([g])
    lr32, mu32 = np.float32(1e-3), np.float32(0.9)
    topt = None
    if torch:
        tp = torch.from_numpy(p.copy()).requires_grad_()
        tp.grad = torch.from_numpy(g.copy())
        topt = torch.optim.SGD([tp], lr=1e-3, momentum=0.9, foreach=True)
        topt.step()
    add("SGD step, momentum 0.9", "10,000,000 float32", lambda: opt.step([g]),
        lambda: ref.sgd_momentum_inplace(pn, g, bn, lr32, mu32, tmp),
        topt.step if topt else None)

    n_img = 200 if quick else 2000
    imgs = rng.integers(0, 256, (n_img, 32, 32)).astype(np.float64)
    try:
        from skimage.feature import hog as sk_hog
    except ImportError:
        sk_hog = None
    t_fast = _median_time(lambda: fl.features.hog_batch(imgs), rep)
    t_sk = _median_time(lambda: [sk_hog(im) for im in imgs], rep) if sk_hog else None
    rows.append(("hog_batch (NumPy col: scikit-image)", f"{n_img}x32x32 float64", t_fast,
                 t_sk, None))
    _print_row(rows[-1])
    print("medians; ratio = the other's time / fastloss's time (> 1: fastloss is faster); "
          "NumPy = fastloss.reference")
    if args.json or args.plot:
        from . import _benchreport

        env = _benchreport.environment(torch.__version__ if torch else None, quick)
        if args.json:
            _benchreport.write_json(rows, env, args.json)
            print(f"wrote {args.json}")
        if args.plot:
            _benchreport.plot(rows, env, args.plot)
            print(f"wrote {args.plot}")
    return 0


def _autograd(fn, s, y):
    s = s.detach().requires_grad_()
    fn(s, y).backward()


def _print_row(r):
    op, shape, tf_, tn, tt = r
    line = f"{op:<36}{shape:<24}{_fmt(tf_):>12}"
    line += f"{_fmt(tn):>12}{tn / tf_:>7.1f}x" if tn else f"{'-':>12}{'':>8}"
    line += f"{_fmt(tt):>12}{tt / tf_:>7.1f}x" if tt else f"{'-':>12}"
    print(line, flush=True)


# ---------------------------------------------------------------------------------------
# gradcheck


def _floored_error(fn, x, args, kw, k, seed, h, smooth):
    """The largest of |a - n| / max(|a| + |n|, 1e-6 max|a|) over k random entries of x
    (a: fn's analytic gradient; n: the five-point difference with step h for a smooth loss,
    error O(h^4) and rounding about 1e-16 |loss| / h, else the centred one, exact for a
    piecewise linear loss unless x +- h crosses a kink). The floor keeps an entry that is
    nearly 0 from reporting the difference's rounding error as a relative error; a wrong
    gradient is wrong on its large entries too."""
    from fastloss.gradcheck import _centred

    xc = np.array(x, dtype=np.float64)
    a = np.asarray(fn(xc, *args, **kw)[1], np.float64)
    floor = 1e-6 * float(np.abs(a).max()) if a.size else 0.0
    rng = np.random.default_rng(seed)

    def f(z):
        return float(fn(z, *args, **kw)[0])

    worst = 0.0
    for flat in rng.choice(xc.size, size=min(k, xc.size), replace=False):
        ix = np.unravel_index(int(flat), xc.shape)
        if smooth:
            old = xc[ix]
            vals = []
            for t in (2, 1, -1, -2):
                xc[ix] = old + t * h
                vals.append(f(xc))
            xc[ix] = old
            n = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
        else:
            n = _centred(f, xc, ix, h)
        an = float(a[ix])
        worst = max(worst, abs(an - n) / max(abs(an) + abs(n), floor, 1e-300))
    return worst


def cmd_gradcheck(args):
    import fastloss as fl

    rng = np.random.default_rng(args.seed)
    # Small, well-scaled problems: with a mean over many rows or very unequal scores some
    # gradient entries are tiny and the centred difference's rounding error (about
    # 1e-16 * |loss| / h) dominates their relative error, whatever the kernel does.
    N, C, D = 8, 5, 6
    s = rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    q = rng.random((N, C))
    q /= q.sum(axis=1, keepdims=True)
    sw = rng.random(N) + 0.5
    cw = rng.random(C) + 0.5
    X = rng.standard_normal((N, D))
    W = 0.1 * rng.standard_normal((D, C))
    b = 0.1 * rng.standard_normal(C)
    k = 30
    checks = [
        ("multiclass_hinge", "weston_watkins", fl.multiclass_hinge, s, (y,), {}),
        ("multiclass_hinge", "crammer_singer", fl.multiclass_hinge, s, (y,),
         dict(variant="crammer_singer")),
        ("multiclass_hinge", "squared, margin 2, weights", fl.multiclass_hinge, s, (y,),
         dict(squared=True, margin=2.0, sample_weight=sw, class_weight=cw)),
        ("multiclass_hinge", "reduction=sum", fl.multiclass_hinge, s, (y,),
         dict(reduction="sum")),
        ("softmax_cross_entropy", "", fl.softmax_cross_entropy, s, (y,), {}),
        ("softmax_cross_entropy", "label_smoothing 0.1, weights", fl.softmax_cross_entropy,
         s, (y,), dict(label_smoothing=0.1, sample_weight=sw, class_weight=cw)),
        ("softmax_cross_entropy", "soft targets", fl.softmax_cross_entropy, s, (q,), {}),
        ("svm_loss", "CS231n layers", fl.svm_loss, s, (y,), {}),
        ("softmax_loss", "CS231n layers", fl.softmax_loss, s, (y,), {}),
    ]
    for loss in ("softmax", "hinge"):
        for pen in ("l2", "l1", "elasticnet"):
            checks.append(("linear_loss dW", f"{loss}, {pen}, reg 0.1, bias",
                           functools.partial(fl.linear_loss, loss=loss), W, (X, y),
                           dict(penalty=pen, reg=0.1, b=b)))
        checks.append(("linear_loss dW", f"{loss}, 5-row batch, weights",
                       functools.partial(fl.linear_loss, loss=loss), W, (X, y),
                       dict(reg=0.1, indices=rng.integers(0, N, 5), sample_weight=sw)))
    checks.append(("svm_loss_vectorized", "CS231n, reg 0.1", fl.svm_loss_vectorized, W,
                   (X, y, 0.1), {}))
    checks.append(("softmax_loss_vectorized", "CS231n, reg 0.1", fl.softmax_loss_vectorized,
                   W, (X, y, 0.1), {}))
    for loss in ("softmax", "hinge"):
        bb = b.copy()
        _, _, db = fl.linear_loss(W, X, y, loss=loss, reg=0.1, b=bb)
        checks.append(("linear_loss db", f"{loss}, bias",
                       lambda z, loss=loss, db=db: (fl.linear_loss(W, X, y, loss=loss, reg=0.1,
                                                                   b=z)[0], db),
                       bb, (), {}))
    # Smooth losses (softmax without an l1 term): the five-point difference, h = 1e-3,
    # must agree within 1e-7. Losses with kinks (the hinge, l1): the centred difference
    # (h = 1e-5; 1e-4 for the piecewise quadratic squared hinge), exact unless x +- h
    # crosses a kink, where CS231n's rule allows up to 1e-4 ("kink" in the last column).
    print(f"analytic vs numerical gradients, float64, {k} random entries each; relative "
          f"error |a-n| / max(|a|+|n|, 1e-6 max|a|)")
    print(f"{'kernel':<26}{'options':<36}{'shape':<10}{'max rel. error':>15}  limit")
    failed = 0
    worst = 0.0
    for name, opt, fn, x, a, kw in checks:
        kinked = "hinge" in opt or "svm" in name or "l1" in opt or "elasticnet" in opt or \
            (name == "multiclass_hinge")
        h = (1e-4 if "squared" in opt else 1e-5) if kinked else 1e-3
        err = _floored_error(fn, x, a, kw, k, args.seed, h, not kinked)
        worst = max(worst, err)
        limit = 1e-7 if not kinked or err < 1e-7 else 1e-4
        failed += not err < limit
        note = "1e-7" if limit == 1e-7 else "1e-4 (kink)"
        print(f"{name:<26}{opt:<36}{str(x.shape):<10}{err:>15.2e}  {note}"
              + ("" if err < limit else "  FAILED"))
    print(f"largest relative error {worst:.2e}: " + (
        "every check within its limit" if not failed else f"{failed} check(s) FAILED"))
    return 0 if not failed else 1


# ---------------------------------------------------------------------------------------


def _parser():
    from . import __version__

    p = argparse.ArgumentParser(
        prog="fastloss", description="Fast multiclass SVM and softmax losses: train linear "
        "classifiers, benchmark and check the kernels, show the build.",
        epilog="Run 'fastloss COMMAND --help' for a command's options.")
    p.add_argument("--version", action="version", version=f"fastloss {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train linear classifiers on a data set",
                       description="Split (stratified train/validation/test), standardize, "
                       "train LinearSVM and/or Softmax by minibatch SGD or L-BFGS, print "
                       "accuracies and times, write the loss curves and the learned templates.")
    t.add_argument("--data", default="digits",
                   help="digits (default), cifar10:DIR (the CIFAR-10 python batches) or "
                   "FILE.npz (X, y or X_train, y_train, X_test, y_test)")
    t.add_argument("--model", choices=["softmax", "svm", "both"], default="both",
                   help="which classifier to train (default: both)")
    t.add_argument("--features", choices=["raw", "hog+hist", "bow", "hog+hist+bow"],
                   default="raw", help="raw pixels (default), HOG plus a hue histogram, "
                   "the bag of visual words, or all three")
    t.add_argument("--lr", type=float, help="learning rate (default: the model's, scaled "
                   "by 64 / number of features when there are more than 64)")
    t.add_argument("--reg", type=float, help="L2 regularization strength")
    t.add_argument("--iters", type=int, help="SGD iterations")
    t.add_argument("--batch-size", type=int, dest="batch_size", help="rows per minibatch")
    t.add_argument("--momentum", type=float, help="SGD momentum (PyTorch's rule)")
    t.add_argument("--solver", choices=["sgd", "lbfgs"], default="sgd",
                   help="sgd (minibatch SGD, default) or lbfgs (full-batch L-BFGS; LinearSVM "
                   "then uses the squared hinge)")
    t.add_argument("--max-iter", type=int, dest="max_iter",
                   help="L-BFGS iterations at most (default 100)")
    t.add_argument("--search", action="store_true",
                   help="pick lr and reg (sgd), or reg (lbfgs), on a small grid by "
                   "validation accuracy")
    t.add_argument("--out", default="fastloss-out", help="folder for the pictures "
                   "(default ./fastloss-out)")
    t.add_argument("--seed", type=int, default=0, help="seed of the split and the fits")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    b = sub.add_parser("bench", help="benchmark every kernel against NumPy (and PyTorch)",
                       description="Time every kernel (losses, linear_loss, SGD, HOG) "
                       "against the plain NumPy reference and, when installed, PyTorch; "
                       "print medians and ratios.")
    b.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    b.add_argument("--plot", metavar="FILE.png", help="also draw the ratios as a bar chart")
    b.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    g = sub.add_parser("gradcheck", help="check every kernel's analytic gradient",
                       description="Compare every kernel's analytic gradient with centred "
                       "(or five-point) differences at random entries, in float64; exit "
                       "non-zero when a check fails.")
    g.add_argument("--seed", type=int, default=0, help="seed of the entries checked")
    sub.add_parser("config", help="print the build configuration",
                   description="Print the version, compiler, flags, SIMD level and "
                   "threads, as fastloss.show_config().")
    p.commands = sub.choices
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # a command's unknown option: that command's usage, not the top level's
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "config":
        from . import show_config

        show_config()
        return 0
    cmd = {"train": cmd_train, "bench": cmd_bench, "gradcheck": cmd_gradcheck}[args.command]
    from ._extras import MissingExtraError

    try:
        return cmd(args)
    except MissingExtraError as e:  # an optional package the command needs: one line
        raise SystemExit(f"fastloss {args.command}: {e}") from None
    except (ValueError, TypeError, OSError) as e:  # bad arguments or data: a message, no
        # traceback (sklearn's InvalidParameterError is a ValueError)
        raise SystemExit(f"fastloss {args.command}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())

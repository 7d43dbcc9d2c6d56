"""The command line, run in-process: train (digits, npz, CIFAR batches), bench --quick,
gradcheck, config."""

import importlib.util
import pickle
import re
import struct

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
from fastloss import cli  # noqa: E402


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _acc(out, model):
    m = re.search(rf"{model}: train ([\d.]+)\s+validation ([\d.]+)\s+test ([\d.]+)", out)
    assert m, out
    return [float(g) for g in m.groups()]


def test_train_default_accuracy(tmp_path, capsys):
    assert cli.main(["train", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert _acc(out, "Softmax")[2] >= 0.96
    assert _acc(out, "LinearSVM")[2] >= 0.95
    assert _png_size(tmp_path / "loss_curves.png") == (1000, 360)
    for name in ("softmax", "svm"):
        w, h = _png_size(tmp_path / f"templates_{name}.png")
        assert w == 1300 and h == 240


def test_train_one_model_search_features(tmp_path, capsys):
    args = ["train", "--model", "svm", "--iters", "30", "--out", str(tmp_path), "--quiet"]
    assert cli.main(args + ["--search"]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "best: lr=" in out
    assert "Softmax" not in out and (tmp_path / "templates_svm.png").exists()
    assert cli.main(args + ["--features", "hog+hist", "--model", "softmax"]) == 0
    out = capsys.readouterr().out
    assert _acc(out, "Softmax")[2] > 0.5


def test_train_npz_and_cifar(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert cli.main(["train", "--data", str(tmp_path / "d.npz"), "--iters", "50",
                     "--out", str(tmp_path / "o1"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert _acc(out, "Softmax")[2] > 0.8
    assert not (tmp_path / "o1" / "templates_softmax.png").exists()

    folder = tmp_path / "cifar"
    folder.mkdir()
    for name, n in [(f"data_batch_{i}", 40) for i in range(1, 6)] + [("test_batch", 40)]:
        imgs = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": imgs, b"labels": list(np.arange(n) % 10)}, f)
    assert cli.main(["train", "--data", f"cifar10:{folder}", "--iters", "5",
                     "--out", str(tmp_path / "o2"), "--quiet"]) == 0
    w, h = _png_size(tmp_path / "o2" / "templates_softmax.png")
    assert (w, h) == (1300, 240)
    out = capsys.readouterr().out
    assert "CIFAR-10" in out


def test_bench_quick_plot_and_json(tmp_path, capsys):
    import json

    png, js = tmp_path / "b.png", tmp_path / "b.json"
    assert cli.main(["bench", "--quick", "--plot", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    ops = ("softmax_cross_entropy", "multiclass_hinge", "linear_loss", "SGD step", "hog_batch")
    for op in ops:
        assert op in out
    assert f"wrote {js}" in out and f"wrote {png}" in out
    w, h = _png_size(png)
    assert w == 900 and h > 400
    doc = json.loads(js.read_text())
    env = doc["environment"]
    assert env["quick"] is True and env["threads"] >= 1 and env["machine"]
    assert env["simd_level"] in ("baseline", "avx2", "avx512")
    # with PyTorch installed, 4 more rows: fastloss.torch's operations through autograd,
    # against torch.nn.functional's (no NumPy column)
    autograd = [r for r in doc["results"] if r["operation"].startswith("fastloss.torch.")]
    rows = [r for r in doc["results"] if r not in autograd]
    assert len(rows) == 9
    assert len(autograd) == (4 if importlib.util.find_spec("torch") else 0)
    for r, op in zip(rows[:4], ops[:2] * 2):
        assert r["operation"].startswith(op)
    for r in rows:
        assert r["fastloss_s"] > 0 and r["numpy_s"] > 0
        assert r["ratio_numpy"] == pytest.approx(r["numpy_s"] / r["fastloss_s"])
        assert (r["torch_s"] is None) == (r["ratio_torch"] is None)
    for r in autograd:
        assert r["fastloss_s"] > 0 and r["torch_s"] > 0 and r["numpy_s"] is None
        assert r["ratio_torch"] == pytest.approx(r["torch_s"] / r["fastloss_s"])


def test_loss_curve_ticks_are_labelled_where_the_curve_is():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (narrow, wide) = plt.subplots(1, 2)
    cli._log_ticks(narrow, [0.31, 0.22, 0.25, 0.2])  # a factor < 3: a linear axis
    assert narrow.get_yscale() == "linear"
    # the SVM's curve: 9 at the start, then 0.2-0.3
    h = np.r_[9.0, 3.0, np.random.default_rng(0).uniform(0.2, 0.3, 500)]
    wide.plot(h)
    cli._log_ticks(wide, h)
    fig.canvas.draw()
    assert wide.get_yscale() == "log"
    lo, hi = wide.get_ylim()
    labels = [t.get_text() for t in wide.get_yticklabels()
              if lo <= t.get_position()[1] <= hi and t.get_text()]
    assert {"0.2", "0.3", "0.5", "1", "2", "3", "5"} <= set(labels), labels
    plt.close(fig)


def test_help_version_and_unknown_options(capsys):
    for argv in ([], ["train"], ["bench"], ["gradcheck"], ["config"]):
        with pytest.raises(SystemExit) as e:
            cli.main([*argv, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        usage, description = out.split("\n\n")[:2]
        assert usage.startswith("usage: fastloss" + "".join(f" {a}" for a in argv))
        assert len(description.split()) >= 8, out  # a sentence, not just the options
        assert "``" not in out and ":func:" not in out
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    import fastloss

    assert capsys.readouterr().out == f"fastloss {fastloss.__version__}\n"
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fastloss train ") and "unrecognized arguments: --bogus" in err


def test_gradcheck(capsys):
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    errs = [float(x) for x in re.findall(r"(\d\.\d\de[-+]\d\d)\s+1e-[47]", out)]
    assert len(errs) >= 20 and max(errs) < 1e-7  # (seed 0: no entry near a kink)
    assert "FAILED" not in out


def test_gradcheck_seeds_with_tiny_entries_and_kinks(capsys):
    # seed 7: a squared-hinge entry of 3e-4 beside a loss of ~10 (2.7e-7 at h = 1e-5, a
    # false alarm); seed 29: a hinge kink within h of the bias's point (allowed, marked)
    for seed in ("7", "29", "45"):
        assert cli.main(["gradcheck", "--seed", seed]) == 0
    out = capsys.readouterr().out
    assert "(kink)" in out and "FAILED" not in out


def test_config(capsys):
    assert cli.main(["config"]) == 0
    assert "fastloss" in capsys.readouterr().out


def test_train_npz_with_its_own_validation_set(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(550, 6))
    y = np.arange(550) % 3
    X[np.arange(550), y] += 3.0
    np.savez(tmp_path / "s.npz", X_train=X[:300], y_train=y[:300], X_val=X[300:450],
             y_val=y[300:450], X_test=X[450:], y_test=y[450:])
    assert cli.main(["train", "--data", str(tmp_path / "s.npz"), "--iters", "20",
                     "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "train 300, validation 150, test 100" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--iters", "-5"], "num_iters must be an int >= 0"),
    (["--lr", "-1"], "learning_rate must be a finite number"),
    (["--batch-size", "0"], "batch_size must be an int >= 1"),
    (["--data", "missing.npz"], "missing.npz"),
    (["--data", "cifar10:no-such-dir"], "no-such-dir"),
    (["--lr", "1e6", "--reg", "10"], "SGD diverged"),
    (["--solver", "lbfgs", "--max-iter", "-1"], "max_iter must be an int >= 0"),
])
def test_train_bad_arguments_exit_with_a_message(tmp_path, argv, message):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--out", str(tmp_path), "--quiet", *argv])
    assert str(e.value).startswith("fastloss train: ") and message in str(e.value)


def test_train_lbfgs_and_its_reg_search(tmp_path, capsys):
    assert cli.main(["train", "--solver", "lbfgs", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert _acc(out, "Softmax")[2] >= 0.96 and _acc(out, "LinearSVM")[2] >= 0.95
    assert "L-BFGS iterations" in out and "squared hinge" in out
    assert (tmp_path / "loss_curves.png").exists()
    argv = ["train", "--solver", "lbfgs", "--model", "softmax", "--search", "--out",
            str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "validation accuracy by regularization" in out and "best: reg=" in out
    assert "lr" not in out.split("best: reg=")[1].splitlines()[0]


def test_train_bag_of_words_on_digits(tmp_path, capsys):
    """BagOfWords(n_words=100, patch_size=3), fitted on the training split, with the linear
    models: at least 0.985 test accuracy on the CLI's digits split."""
    assert cli.main(["train", "--features", "bow", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "features: bow, 400 per sample" in out
    assert _acc(out, "Softmax")[2] >= 0.985
    assert _acc(out, "LinearSVM")[2] >= 0.985
    args = ["train", "--features", "hog+hist+bow", "--model", "softmax", "--out",
            str(tmp_path), "--quiet"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "features: hog+hist+bow, 788 per sample" in out  # 324 HOG + 64 pixels + 400
    assert _acc(out, "Softmax")[2] >= 0.985

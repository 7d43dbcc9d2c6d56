"""Missing optional packages: every entry point that needs one says so in one line that
names the extra to install (the package hidden from import in a child process)."""

import os
import subprocess
import sys
import textwrap

import pytest

HIDE = "import sys\nfor _m in {mods!r}:\n    sys.modules[_m] = None  # import raises ModuleNotFoundError\n"


def _run(code, hide, *args, cwd=None):
    src = HIDE.format(mods=list(hide)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", src, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, check=False)


def _one_line(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("stmt", [
    "from fastloss import Softmax",
    "from fastloss import LinearSVM",
    "import fastloss.classifiers",
    "import fastloss; fastloss.Softmax",
    "from fastloss.datasets import load_digits; load_digits()",
])
def test_missing_sklearn_names_the_extra(stmt):
    r = _run(f"""
        try:
            {stmt}
        except ModuleNotFoundError as e:
            assert e.name == "sklearn", e.name
            print(e)
        else:
            raise SystemExit("no error")
        """, ["sklearn"])
    assert r.returncode == 0, r.stderr
    line = _one_line(r.stdout)
    assert 'pip install "fastloss[sklearn]"' in line and "scikit-learn" in line, line


@pytest.mark.parametrize("module, package, extra", [
    ("torch", "PyTorch", "torch"),
    ("jax", "JAX", "jax"),
])
def test_missing_torch_or_jax_names_the_extra(module, package, extra):
    r = _run(f"""
        try:
            import fastloss.{module}
        except ModuleNotFoundError as e:
            assert e.name == {module!r}, e.name
            print(e)
        else:
            raise SystemExit("no error")
        """, [module])
    assert r.returncode == 0, r.stderr
    line = _one_line(r.stdout)
    assert f'pip install "fastloss[{extra}]"' in line and package in line, line


def test_import_fastloss_needs_only_numpy():
    r = _run("""
        import fastloss, numpy as np
        loss, d = fastloss.softmax_cross_entropy(np.zeros((2, 3)), [0, 1])
        print(round(float(loss), 6))
        """, ["sklearn", "scipy", "matplotlib", "tqdm", "skimage", "torch", "jax", "dask"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1.098612"


def test_cli_train_without_sklearn_is_one_line_exit_1(tmp_path):
    r = _run("from fastloss.cli import main; sys.exit(main(sys.argv[1:]))", ["sklearn"],
             "train", "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = _one_line(r.stderr)
    assert line.startswith("fastloss train: ") and 'pip install "fastloss[sklearn]"' in line
    assert "Traceback" not in r.stderr


def test_cli_train_without_matplotlib_says_so_first_and_finishes(tmp_path):
    out = tmp_path / "out"
    r = _run("from fastloss.cli import main; sys.exit(main(sys.argv[1:]))", ["matplotlib"],
             "train", "--model", "softmax", "--iters", "50", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    line = _one_line(r.stderr)
    assert 'pip install "fastloss[plot]"' in line, line
    assert r.stdout.index("Softmax:") > 0 and "no pictures" in r.stdout
    assert not list(out.glob("*.png"))


def test_progress_without_tqdm_prints_lines():
    pytest.importorskip("sklearn")
    r = _run("""
        import numpy as np
        from fastloss import Softmax
        X = np.random.default_rng(0).standard_normal((60, 4)); y = np.arange(60) % 3
        Softmax(num_iters=20, verbose=True, random_state=0).fit(X, y)
        """, ["tqdm"])
    assert r.returncode == 0, r.stderr
    assert "iteration 20 / 20" in r.stdout


def test_unrelated_import_errors_are_not_rewritten():
    from fastloss._extras import MissingExtraError, translate

    e = ModuleNotFoundError("No module named 'sklearn_extra'", name="sklearn_extra")
    assert translate(e, "sklearn", "x") is e
    inner = ModuleNotFoundError("No module named 'sklearn.foo'", name="sklearn.foo")
    assert isinstance(translate(inner, "sklearn", "x"), MissingExtraError)


def test_cli_version():
    import fastloss

    r = subprocess.run([sys.executable, "-m", "fastloss", "--version"], capture_output=True,
                       text=True, timeout=120, check=False,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"fastloss {fastloss.__version__}"

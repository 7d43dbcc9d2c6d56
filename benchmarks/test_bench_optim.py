"""SGD with momentum on 10,000,000 float32 parameters (one step after the first):
fastloss's fused pass vs the best NumPy in-place expressions vs torch.optim.SGD
(foreach and fused) when torch is installed.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest
benchmarks/test_bench_optim.py``
(``benchmarks/compare_optim.py`` prints the same comparison as one table.)
"""

import numpy as np
import pytest

from fastloss import SGD, reference

N = 10_000_000
LR, MU = 1e-3, 0.9
GROUP = "sgd-momentum-10M-float32"
ROUNDS = dict(rounds=20, warmup_rounds=2, iterations=1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(N, dtype=np.float32)
    g = rng.standard_normal(N, dtype=np.float32)
    return p, g


@pytest.mark.benchmark(group=GROUP)
def test_fastloss_sgd(benchmark, data):
    p, g = data[0].copy(), data[1]
    opt = SGD(p, lr=LR, momentum=MU)
    opt.step([g])  # the first step makes the buffer
    benchmark.pedantic(opt.step, args=([g],), **ROUNDS)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("scratch", [False, True], ids=["temporary", "scratch"])
def test_numpy_inplace(benchmark, data, scratch):
    p, g = data[0].copy(), data[1]
    b = g.copy()
    tmp = np.empty_like(p) if scratch else None
    lr, mu = np.float32(LR), np.float32(MU)
    benchmark.pedantic(reference.sgd_momentum_inplace, args=(p, g, b, lr, mu, tmp), **ROUNDS)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_torch_sgd(benchmark, data, impl):
    torch = pytest.importorskip("torch")
    p = torch.from_numpy(data[0].copy()).requires_grad_()
    p.grad = torch.from_numpy(data[1].copy())
    opt = torch.optim.SGD([p], lr=LR, momentum=MU, **{impl: True})
    opt.step()
    benchmark.pedantic(opt.step, **ROUNDS)

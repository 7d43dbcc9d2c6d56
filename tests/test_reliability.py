"""Failures the process must survive: allocation and thread-creation failures inside the
threaded kernels (under an address-space limit), fork() while another thread is in a
kernel or holds the optimizer's lock, interpreter exit while a daemon thread is inside a
kernel. Each case runs in its own Python process, with a timeout: a crash or a hang
fails the test instead of taking the suite down.

Memory limits are relative: the child measures its own address space after it has
imported NumPy and fastloss and built its inputs, and allows a fixed amount more, so the
cases behave the same on any machine (whatever the sizes of the libraries).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS, fork, /proc")
# Under AddressSanitizer (.ci/sanitize.sh) the process has reserved terabytes of shadow
# memory and ASan's allocator aborts instead of failing an allocation: an address-space
# limit cannot be tested there (the suite's other runs test it).
address_limit = pytest.mark.skipif(bool(os.environ.get("FASTLOSS_SANITIZED")),
                                   reason="an address-space limit under AddressSanitizer")

PRELUDE = """
import ctypes, os, resource, sys, threading, time
import numpy as np
import fastloss as fl
import fastloss.features as F

MB = 2**20

def vm_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

_hard = resource.getrlimit(resource.RLIMIT_AS)[1]

def limit(extra_bytes):
    # the address space in use now plus extra_bytes (soft limit only: lift() restores it)
    lim = vm_bytes() + int(extra_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (lim, _hard))

def lift():
    resource.setrlimit(resource.RLIMIT_AS, (_hard, _hard))

class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

_libc = ctypes.CDLL(None)
_libc.mallinfo2.restype = _MallInfo2

def malloc_in_use():
    # bytes malloc has handed out and not had back (heap chunks + mmap'd blocks): what a
    # leak would raise, unlike the address space, which malloc keeps for later at will
    m = _libc.mallinfo2()
    return m.uordblks + m.hblkhd

def expect_memory_error(call, what):
    try:
        call()
    except MemoryError:
        print("MemoryError", what, flush=True)
        return
    raise SystemExit(f"{what}: no MemoryError")
"""


def run_child(body, timeout=240, env=None):
    """Runs PRELUDE + body in a fresh interpreter; returns the CompletedProcess."""
    e = dict(os.environ)
    e.update(env or {})
    try:
        return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
                              capture_output=True, text=True, timeout=timeout, env=e)
    except subprocess.TimeoutExpired as t:
        pytest.fail(f"the child hung (no exit within {timeout} s); output so far:\n"
                    f"{t.stdout}\n{t.stderr}")


def assert_ok(r, marker="DONE"):
    assert r.returncode == 0 and marker in r.stdout, (
        f"exit status {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-3000:]}")


# ---- 1. allocation failures inside threaded kernels -------------------------------------

# glibc's malloc, left to itself, reserves a 64 MB arena of address space at a worker
# thread's first malloc, and after a large block is freed raises its mmap threshold and
# serves the next large blocks from its heap: the same limit would then fail at different
# points from run to run. One arena and a fixed threshold (blocks of 128 KiB or more are
# their own mappings) make the limit bite at the kernels' scratch allocations each time.
PLAIN_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}

# (setup, call, extra bytes allowed beyond the address space in use after the setup): the
# inputs are broadcast views (no memory), the outputs fit in the extra bytes, the
# per-thread scratch of the call (hundreds of MB a thread) does not.
ALLOC_CASES = {
    "softmax_cross_entropy": (
        "S = np.broadcast_to(np.zeros(2**27, np.float32), (4, 2**27)); y = np.zeros(4, np.int64)",
        "fl.softmax_cross_entropy(S, y, grad=False, reduction='sum', n_threads=2)",
        "64 * MB",
    ),
    "multiclass_hinge": (
        "S = np.broadcast_to(np.zeros(2**27, np.float32), (4, 2**27)); y = np.zeros(4, np.int64)",
        "fl.multiclass_hinge(S, y, grad=False, reduction='sum', n_threads=2)",
        "64 * MB",
    ),
    "log_softmax": (
        "S = np.broadcast_to(np.zeros(2**25, np.float32), (2, 2**25))",
        "fl.log_softmax(S, n_threads=2)",
        "S.size * 4 + 64 * MB",  # (the output fits)
    ),
    "linear_loss_fused": (
        "W = np.zeros((1, 2**19)); X = np.ones((256, 1)); y = np.zeros(256, np.int64)",
        "fl.linear_loss(W, X, y, method='fused', n_threads=2)",
        "160 * MB",
    ),
    "linear_loss_dX": (
        "W = np.zeros((1, 2**19)); X = np.ones((256, 1)); y = np.zeros(256, np.int64)",
        "fl.linear_loss(W, X, y, return_dX=True, n_threads=2)",
        "160 * MB",
    ),
    "hog_batch": (
        "I = np.broadcast_to(np.zeros((4096, 4096), np.uint8), (2, 4096, 4096))",
        "F.hog_batch(I, pixels_per_cell=(32, 32), cells_per_block=(1, 1), n_threads=2)",
        "64 * MB",
    ),
    "extract_features_hog": (
        "I = np.broadcast_to(np.zeros((4096, 4096, 3), np.uint8), (2, 4096, 4096, 3))",
        "F.extract_features(I, [F.hog_feature], n_threads=2)",
        "64 * MB",
    ),
    "extract_features_hue": (
        "I = np.broadcast_to(np.zeros((2, 2**24, 3), np.uint8), (2, 2, 2**24, 3))",
        "F.extract_features(I, [F.color_histogram_hsv], n_threads=2)",
        "64 * MB",
    ),
}


@address_limit
@pytest.mark.parametrize("case", sorted(ALLOC_CASES))
def test_allocation_failure_in_threads_is_memory_error(case):
    setup, call, extra = ALLOC_CASES[case]
    r = run_child(f"""
        # the thread team exists before the limit: the failure is the kernel's allocation
        fl.softmax_cross_entropy(np.zeros((100_000, 10)), np.zeros(100_000, np.int64),
                                 n_threads=2)
        {setup}
        before = malloc_in_use()
        limit({extra})
        expect_memory_error(lambda: {call}, {case!r})
        expect_memory_error(lambda: {call}, {case!r} + " again")
        kept = malloc_in_use() - before
        lift()
        # nothing of the failed calls is still allocated: not their outputs, not the
        # scratch the threads keep between calls (every scratch block here is >= 4 MB)
        assert kept < 1 * MB, ("memory still allocated after the failure", kept)
        # still working, and right
        s = np.random.default_rng(0).normal(size=(50_000, 10))
        yy = np.arange(50_000) % 10
        a = fl.softmax_cross_entropy(s, yy, n_threads=2)
        b = fl.softmax_cross_entropy(s, yy, n_threads=1)
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
        print("DONE")
    """, env=PLAIN_MALLOC)
    assert_ok(r)
    assert r.stdout.count("MemoryError") == 2


# ---- 2. threads that cannot be created --------------------------------------------------

THREAD_CALLS = [
    "fl.softmax_cross_entropy(S, y, grad=False, n_threads={nt})",
    "fl.softmax(S, n_threads={nt})",
    "fl.linear_loss(W, X, yx, n_threads={nt})[1]",
    "F.hog_batch(I, n_threads={nt})",
    "(fl.sgd_step(p, g, lr=0.5, n_threads={nt}), p)[1]",
]


@address_limit
@pytest.mark.parametrize("stacks", [0.5, 3.5])
def test_thread_creation_failure_gives_fewer_threads(stacks):
    """No thread team has started when the address space is limited to what is in use
    plus `stacks` thread stacks: the calls run on the threads that can be created (none,
    or a few), with the bits of one thread."""
    calls = ", ".join(f"lambda: {c.format(nt=nt)}" for c in THREAD_CALLS for nt in (64, 2))
    refs = ", ".join(f"lambda: {c.format(nt=1)}" for c in THREAD_CALLS for nt in (64, 2))
    r = run_child(f"""
        rng = np.random.default_rng(0)
        S = rng.normal(size=(40_000, 10)); y = rng.integers(0, 10, 40_000)
        X = rng.normal(size=(4000, 64)); W = rng.normal(size=(64, 10)); yx = y[:4000]
        I = rng.random((64, 64, 64))
        p0 = rng.normal(size=200_000); g = rng.normal(size=200_000)
        import hashlib
        p = p0.copy()
        def results(calls):  # (digests: no copies of the results held under the limit)
            out = []
            for c in calls:
                p[:] = p0
                out.append(hashlib.sha256(np.ascontiguousarray(c()).tobytes()).hexdigest())
            return out
        calls = [{calls}]
        refs = [{refs}]
        results(refs)  # (warm up the Python side on one thread: imports, caches)
        import gc; gc.collect()
        limit({stacks} * 8 * MB + 12 * MB)  # (the outputs and their copies: < 12 MB)
        got = results(calls)
        lift()
        want = results(refs)
        assert got == want, [k for k in range(len(got)) if got[k] != want[k]]
        print("DONE")
    """, env={"OMP_STACKSIZE": "8M", "OMP_NUM_THREADS": "64"})
    assert_ok(r)


@address_limit
@pytest.mark.parametrize("stacks", [2.5, 3.5, 5.5, 7.5])
def test_teams_that_shrink_and_grow_under_an_address_limit(stacks):
    """A smaller team lets libgomp's other threads exit (an exiting thread holds its stack
    for a while, glibc caches a few stacks and unmaps the rest): the next larger team
    creates threads again, and must not find the room gone (libgomp would end the
    process). Two busy processes widen the window."""
    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    try:
        r = run_child(f"""
            S = np.random.default_rng(0).normal(size=(40_000, 10)); y = np.zeros(40_000, np.int64)
            want = fl.softmax_cross_entropy(S, y, grad=False, n_threads=1)
            limit({stacks} * 8 * MB + 12 * MB)
            for k in range(300):
                for nt in (64, 2, 3):
                    got = fl.softmax_cross_entropy(S, y, grad=False, n_threads=nt)
                    assert got == want, (k, nt, got, want)
            print("DONE")
        """, env={"OMP_STACKSIZE": "8M", "OMP_NUM_THREADS": "64"})
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert_ok(r)


# ---- 3. fork while another thread is in the optimizer (or a loss call) ------------------


def test_fork_while_another_thread_updates():
    r = run_child("""
        p = np.zeros(2_000_000); g = np.ones(2_000_000)
        S = np.zeros((200_000, 10)); y = np.zeros(200_000, np.int64)
        stop = False
        def steps():
            while not stop:
                fl.sgd_step(p, g, lr=1e-3)
        def losses():  # (1.6 MB... 16 MB gradients: the output pool's lock)
            while not stop:
                fl.softmax_cross_entropy(S, y)
        for f in (steps, losses):
            threading.Thread(target=f, daemon=True).start()
        time.sleep(0.3)
        for k in range(3):
            pid = os.fork()
            if pid == 0:
                q = np.zeros(10)
                fl.sgd_step(q, np.ones(10), lr=0.1)
                ok = np.array_equal(q, np.full(10, -0.1))
                ok &= fl.softmax_cross_entropy(np.zeros((300_000, 4)), np.zeros(300_000, np.int64))[1].shape == (300_000, 4)
                os._exit(0 if ok else 3)
            t0 = time.time()
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.time() - t0 > 60:
                    os.kill(pid, 9)
                    raise SystemExit(f"child {k} hung")
                time.sleep(0.01)
            assert os.waitstatus_to_exitcode(status) == 0, status
            time.sleep(0.05)
        stop = True
        print("DONE")
    """, timeout=300)
    assert_ok(r)


# ---- 4. interpreter exit while a daemon thread is inside a kernel -----------------------

EXIT_CALLS = {
    "softmax_cross_entropy": "fl.softmax_cross_entropy(S, y)",
    "softmax_cross_entropy_1_thread": "fl.softmax_cross_entropy(S, y, n_threads=1)",
    "linear_loss": "fl.linear_loss(W, X, yx)",
    "linear_loss_dX": "fl.linear_loss(W, X, yx, return_dX=True, n_threads=1)",
    "sgd_step": "fl.sgd_step(p, g, lr=1e-3)",
    "softmax": "fl.softmax(S)",
    "hog_batch": "F.hog_batch(I)",
}


@pytest.mark.parametrize("case", sorted(EXIT_CALLS))
def test_exit_while_a_daemon_thread_is_in_a_kernel(case):
    r = run_child(f"""
        rng = np.random.default_rng(0)
        S = rng.normal(size=(200_000, 10)); y = rng.integers(0, 10, 200_000)
        X = rng.normal(size=(20_000, 300)); W = rng.normal(size=(300, 10)); yx = y[:20_000]
        p = np.zeros(4_000_000); g = np.ones(4_000_000)
        I = rng.random((64, 128, 128))
        started = threading.Event()
        def work():
            started.set()
            while True:
                {EXIT_CALLS[case]}
        for _ in range(2):
            threading.Thread(target=work, daemon=True).start()
        started.wait()
        time.sleep(0.2)
        print("DONE", flush=True)
    """)
    assert_ok(r)
    assert "terminate" not in r.stderr


# A thread that has left a kernel and waits for the GIL when finalization begins: CPython
# (before 3.14) ends it with pthread_exit, whose unwinding would pass through the binding's
# C++ frames (AddressSanitizer reports it as a stack-buffer-overflow) unless fastloss's
# atexit callback has let the waiting threads through first. The child's own atexit
# callback runs before fastloss's and holds the GIL until such a thread waits; a
# pthread_exit wrapper, preloaded, names every thread that ends through fastloss's module.
# In the finalization that follows, the main thread calls a kernel from a destructor: it
# returns (the finalizing thread never waits at the gate).
PTHREAD_EXIT_WRAPPER = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <string.h>
#include <unistd.h>
void pthread_exit(void *r) {
  void (*real)(void *) = (void (*)(void *))dlsym(RTLD_NEXT, "pthread_exit");
  void *frames[64];
  int n = backtrace(frames, 64);
  for (int i = 0; i < n; ++i) {
    Dl_info info;
    if (dladdr(frames[i], &info) && info.dli_fname && strstr(info.dli_fname, "fastloss/_core")) {
      static const char m[] = "\nPTHREAD_EXIT THROUGH FASTLOSS\n";
      write(2, m, sizeof m - 1);
      break;
    }
  }
  real(r);
  __builtin_unreachable();
}
"""


def test_exit_while_a_thread_waits_for_the_gil(tmp_path):
    # (without a C compiler the wrapper is left out: the exit status, the sanitizers' own
    # reports and the kernel in finalization are still checked)
    preload = os.environ.get("LD_PRELOAD", "")
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is not None:
        src = tmp_path / "pthread_exit_wrapper.c"
        src.write_text(PTHREAD_EXIT_WRAPPER)
        lib = tmp_path / "pthread_exit_wrapper.so"
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"],
                       check=True, capture_output=True)
        preload = ":".join(p for p in (preload, str(lib)) if p)
    r = run_child("""
        import atexit, gc
        from fastloss import _core
        S = np.random.default_rng(0).normal(size=(20_000, 10)); y = np.zeros(20_000, np.int64)
        def work():
            while True:
                fl.softmax_cross_entropy(S, y)
        class InFinalization:
            def __del__(self, sleep=time.sleep, write=os.write, f=fl.softmax_cross_entropy,
                        s=S[:4].copy(), y=y[:4].copy()):
                loss = f(s, y, grad=False)
                write(1, f"KERNEL IN FINALIZATION {loss:.6f}\\n".encode())
                sleep(0.3)  # (the GIL free: a thread still waiting for it would now end)
        # (in a reference cycle, with the collector off: finalization's collection, after
        # it has begun and before the modules are torn down, destroys it)
        gc.disable()
        obj = InFinalization()
        obj.cycle = obj
        del obj
        for _ in range(2):
            threading.Thread(target=work, daemon=True).start()
        time.sleep(0.2)
        atexit.register(_core._hold_gil_until_a_thread_waits, 60.0)
        print("DONE", flush=True)
    """, env={"LD_PRELOAD": preload}, timeout=120)
    assert_ok(r)
    assert "no thread left a kernel" not in r.stderr, r.stderr
    assert "PTHREAD_EXIT THROUGH FASTLOSS" not in r.stderr, r.stderr[-3000:]
    assert "KERNEL IN FINALIZATION" in r.stdout, (r.stdout, r.stderr[-3000:])
    s = np.random.default_rng(0).normal(size=(20_000, 10))[:4]
    expected = np.mean([math.log(math.fsum(math.exp(v) for v in row)) - row[0] for row in s])
    loss = float(r.stdout.split("KERNEL IN FINALIZATION")[1].split()[0])
    assert abs(loss - expected) < 2e-6


# ---- 6. the large-C / dX path: the same bits for every OpenMP and BLAS thread count -----


def test_large_class_count_bits_do_not_depend_on_any_thread_count():
    body = """
        import hashlib
        rng = np.random.default_rng(0)
        X = rng.normal(size=(2000, 500)).astype(np.float32)
        W = (0.01 * rng.normal(size=(500, 300))).astype(np.float32)
        y = rng.integers(0, 300, 2000)
        b = rng.normal(size=300).astype(np.float32)
        def digest(nt):
            h = hashlib.sha256()
            for kw in ({}, {"method": "chunked"}, {"return_dX": True, "b": b},
                       {"loss": "hinge", "return_dX": True, "reg": 0.1}):
                for part in fl.linear_loss(W, X, y, n_threads=nt, **kw):
                    h.update(np.ascontiguousarray(part).tobytes())
            return h.hexdigest()
        one = digest(1)
        assert digest(2) == one and digest(3) == one
        print("DIGEST", one, flush=True)
        print("DONE")
    """
    digests = set()
    for env in ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
                {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
                {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}):
        r = run_child(body, env=env)
        assert_ok(r)
        digests.add(r.stdout.split("DIGEST ")[1].split()[0])
    assert len(digests) == 1, digests

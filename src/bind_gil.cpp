// Taking the GIL back after a kernel, and interpreter exit.
//
// CPython before 3.14 ends a thread that waits for the GIL when finalization begins with
// pthread_exit. A daemon thread that has left a kernel and waits for the GIL while the main
// thread, holding it, runs the last atexit callbacks is then unwound through the binding's
// C++ frames: pybind11's dispatcher has to rethrow the forced unwinding, and the frames'
// destructors drop references without the GIL while the main thread tears the interpreter
// down (the process can end in a segmentation fault; AddressSanitizer reports the rethrow
// as a stack-buffer-overflow, its stack unpoisoning not knowing about forced unwinding).
//
// So no thread waits for the GIL on leaving a kernel once exit is near. atexit runs its
// callbacks before finalization begins; the gate's callback closes the gate, then lets
// the threads that are already waiting for the GIL through (it releases the GIL until they
// have it). A thread that leaves a kernel with the gate closed waits without the GIL: once
// finalization has begun, until the process exits (as CPython 3.14 makes such threads
// wait); if it has not begun within kReopenAfter (atexit's callbacks were run by hand, or
// a later callback takes that long), the thread opens the gate again and takes the GIL as
// before. The thread that closed the gate, the one that finalizes, never waits at it.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "bind_common.hpp"

namespace fastloss_bind {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReopenAfter = std::chrono::seconds(2);

std::atomic<bool> g_closed{false};
std::atomic<int> g_taking{0};  // threads between the gate and holding the GIL
std::atomic<bool> g_has_closer{false};
std::atomic<pthread_t> g_closer{};

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

[[noreturn]] void wait_for_the_exit() {
  for (;;) pause();  // (the process is exiting: this thread ends with it)
}

// Waits, without the GIL, while the gate is closed.
void wait_at_the_gate() {
  const auto t0 = Clock::now();
  while (g_closed.load()) {
    if (finalizing()) wait_for_the_exit();
    if (Clock::now() - t0 > kReopenAfter) {
      g_closed.store(false);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The atexit callback (the GIL held).
void close_the_gate() {
  g_closer.store(pthread_self());
  g_has_closer.store(true);
  g_closed.store(true);
  if (g_taking.load() == 0) return;
  PyThreadState* state = PyEval_SaveThread();
  const auto t0 = Clock::now();
  while (g_taking.load() > 0 && Clock::now() - t0 < kReopenAfter)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  PyEval_RestoreThread(state);
}

}  // namespace

void restore_gil(PyThreadState* state) {
  // The thread that closed the gate is the one that finalizes: CPython never ends it in
  // PyEval_RestoreThread, and a kernel it calls from a later callback or a destructor must
  // return.
  if (g_has_closer.load() && pthread_equal(g_closer.load(), pthread_self())) {
    PyEval_RestoreThread(state);
    return;
  }
  // Any other thread (sequentially consistent): either it sees the gate closed, or the
  // closing callback sees it counted and waits until it holds the GIL.
  for (;;) {
    if (finalizing()) wait_for_the_exit();
    g_taking.fetch_add(1);
    if (!g_closed.load()) break;
    g_taking.fetch_sub(1);
    wait_at_the_gate();
  }
  PyEval_RestoreThread(state);
  g_taking.fetch_sub(1);
}

void install_exit_gate(py::module_& m) {
  // a child of fork() has only the forking thread: nobody is at the gate
  pthread_atfork(nullptr, nullptr, [] {
    g_taking.store(0);
    g_closed.store(false);
    g_has_closer.store(false);
  });
  py::module_::import("atexit").attr("register")(py::cpp_function(&close_the_gate));
  // For the tests: holds the GIL until another thread has left a kernel and waits for it;
  // RuntimeError if none does within timeout_s.
  m.def("_hold_gil_until_a_thread_waits", [](double timeout_s) {
    const auto t0 = Clock::now();
    while (g_taking.load() == 0)
      if (std::chrono::duration<double>(Clock::now() - t0).count() > timeout_s)
        throw std::runtime_error("no thread left a kernel to wait for the GIL");
  });
}

}  // namespace fastloss_bind

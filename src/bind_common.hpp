// Small helpers shared by the bindings: checked access to the raw data of NumPy arrays
// that the Python layer has already normalised. No math.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fastloss/types.hpp"

namespace fastloss_bind {

namespace py = pybind11;

inline bool is_native(const py::dtype& dt) {
  const char bo = dt.byteorder();
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return bo == '=' || bo == '|' || bo == '>';
#else
  return bo == '=' || bo == '|' || bo == '<';
#endif
}

// 4 for native float32, 8 for native float64, 0 otherwise.
inline int float_code(const py::dtype& dt) {
  if (dt.kind() != 'f' || !is_native(dt)) return 0;
  const auto sz = dt.itemsize();
  return (sz == 4 || sz == 8) ? int(sz) : 0;
}

inline int float_code(const py::array& a) { return float_code(a.dtype()); }

inline bool is_int64(const py::dtype& dt) {
  return dt.kind() == 'i' && dt.itemsize() == 8 && is_native(dt);
}

inline bool is_int64(const py::array& a) { return is_int64(a.dtype()); }

// A label outside [0, C) found by a kernel: the ValueError every binding raises for it.
[[noreturn]] inline void raise_label_error(const fastloss::LabelError& e, int64_t C) {
  throw py::value_error("y[" + std::to_string(e.row) + "] = " + std::to_string(e.value) +
                        " is not a valid class label: labels must be in [0, " +
                        std::to_string(C) + ")");
}

[[noreturn]] inline void fail_type(const char* name, const char* what) {
  throw py::type_error(std::string(name) + " must be " + what);
}

// The data of `a` starts on a boundary of T (the Python layer copies misaligned views;
// reading them through a T* would be undefined behaviour). An empty array is never read.
template <class T>
void check_aligned(const py::array& a, const char* name) {
  if (a.size() != 0 && reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + " is not aligned");
}

// A 2-D array of T with unit column stride; returns its row stride in elements.
template <class T>
int64_t row_stride(const py::array& a, const char* name) {
  if (a.ndim() != 2) throw py::value_error(std::string(name) + " must be 2-D");
  check_aligned<T>(a, name);
  if (a.shape(0) == 0 || a.shape(1) == 0) return int64_t(a.shape(1));  // nothing to walk
  if (a.shape(1) > 1 && a.strides(1) != py::ssize_t(sizeof(T)))
    throw py::value_error(std::string(name) + " must have unit column stride");
  if (a.strides(0) % py::ssize_t(sizeof(T)) != 0)
    throw py::value_error(std::string(name) + " has a misaligned row stride");
  return int64_t(a.strides(0) / py::ssize_t(sizeof(T)));
}

// A C-contiguous 1-D array of `n` elements, or None.
template <class T>
const T* optional_vector(const py::object& o, int64_t n, const char* name, bool need_int64) {
  if (o.is_none()) return nullptr;
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (need_int64 ? !is_int64(a) : float_code(a) != int(sizeof(T)))
    fail_type(name, need_int64 ? "an int64 array" : "a float array");
  if (a.ndim() != 1 || a.shape(0) != n || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be a contiguous vector of " +
                          std::to_string(n) + " elements");
  check_aligned<T>(a, name);
  return static_cast<const T*>(a.data());
}

// Takes the GIL back after a kernel (bind_gil.cpp). A thread that leaves a kernel while the
// interpreter is about to finalize waits there, without the GIL, until the process exits;
// see bind_gil.cpp for why it must not wait for the GIL then.
void restore_gil(PyThreadState* state);
// Registers the atexit callback and the fork handler that restore_gil relies on (once, at
// the module's import).
void install_exit_gate(py::module_& m);

// The GIL released for the life of the object, around a kernel call. Not pybind11's
// gil_scoped_release: its destructor, which takes the GIL back, is noexcept, and CPython
// (before 3.14) ends a thread that waits for the GIL when finalization begins with
// pthread_exit, whose unwinding through a noexcept frame calls std::terminate. restore_gil
// keeps threads from waiting for the GIL then; should one still (finalization beginning
// later than the atexit callbacks expect, see bind_gil.cpp), the destructor lets
// pthread_exit's unwinding pass (pybind11's dispatcher rethrows it).
class GilReleased {
 public:
  GilReleased() : state_(PyEval_SaveThread()) {}
  ~GilReleased() noexcept(false) { restore_gil(state_); }
  GilReleased(const GilReleased&) = delete;
  GilReleased& operator=(const GilReleased&) = delete;

 private:
  PyThreadState* state_;
};

inline py::array as_array(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o)) fail_type(name, "a NumPy array");
  return py::reinterpret_borrow<py::array>(o);
}

}  // namespace fastloss_bind

namespace fastloss_bind {

// Large output arrays come from a small pool of recently freed blocks, so that a loop
// that computes a gradient, drops it and computes the next one writes into memory that is
// already mapped (a fresh 40 MB array costs the kernel's page faults and zeroing, about
// as much as the loss itself). A block returns to the pool only when NumPy frees the
// array's last reference (the capsule's destructor); at most kPoolBlocks blocks and
// kPoolBytes bytes are kept.
py::array pooled_empty(const py::dtype& dt, py::ssize_t rows, py::ssize_t cols);
// Frees every block the pool holds.
void pool_clear();
// The number of blocks and bytes the pool holds.
std::pair<size_t, size_t> pool_info();

}  // namespace fastloss_bind

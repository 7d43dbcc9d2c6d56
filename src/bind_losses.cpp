// Bindings of the score-level kernels: take the arrays the Python layer prepared, check
// them cheaply, release the GIL, call the kernel of the active instruction set.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "bind_common.hpp"
#include "fastloss/kernels.hpp"

namespace py = pybind11;
using namespace fastloss_bind;

namespace {

// The kernel of the active instruction set, without the GIL; a bad label raises.
template <class T>
double run_score_loss(const fastloss::ScoreLossArgs<T>& a) {
  const auto& k = FL_SELECT(fastloss::loss_kernels);
  fastloss::ScoreLossResult r;
  {
    GilReleased release;
    if constexpr (sizeof(T) == 4)
      r = k.score_loss_f32(a);
    else
      r = k.score_loss_f64(a);
  }
  if (r.error.row >= 0) {
    if (a.has_ignore)
      throw py::value_error("y[" + std::to_string(r.error.row) + "] = " +
                            std::to_string(r.error.value) +
                            " is not a valid class label: labels must be in [0, " +
                            std::to_string(a.C) + ") or equal ignore_index=" +
                            std::to_string(a.ignore_index));
    raise_label_error(r.error, a.C);
  }
  return r.loss;
}

// ignore_index: None, or a Python int (a label value; any int64).
template <class T>
void set_ignore(fastloss::ScoreLossArgs<T>& a, PyObject* ignore) {
  if (ignore == Py_None) return;
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(ignore, &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow) throw py::value_error("ignore_index must fit in int64");
  a.has_ignore = true;
  a.ignore_index = int64_t(v);
}

template <class T>
double score_loss_t(const py::array& S, const py::object& y, const py::object& Q,
                    const py::object& sw, const py::object& cw, int loss, double margin,
                    bool squared, double eps, int reduction, const py::object& G,
                    const py::object& L, int n_threads, double grad_scale,
                    const py::object& ignore) {
  fastloss::ScoreLossArgs<T> a;
  a.grad_scale = grad_scale;
  if (Q.is_none()) set_ignore(a, ignore.ptr());
  a.S = static_cast<const T*>(S.data());
  a.lds = row_stride<T>(S, "scores");
  a.N = int64_t(S.shape(0));
  a.C = int64_t(S.shape(1));
  if (Q.is_none()) {
    a.y = optional_vector<int64_t>(y, a.N, "y", true);
    if (!a.y) throw py::value_error("y is required");
  } else {
    py::array q = as_array(Q, "y");
    if (float_code(q) != int(sizeof(T))) fail_type("y", "of the scores' dtype");
    if (q.ndim() != 2 || q.shape(0) != a.N || q.shape(1) != a.C)
      throw py::value_error("soft targets y must have the scores' shape");
    a.Q = static_cast<const T*>(q.data());
    a.ldq = row_stride<T>(q, "y");
  }
  a.sample_weight = optional_vector<double>(sw, a.N, "sample_weight", false);
  a.class_weight = optional_vector<double>(cw, a.C, "class_weight", false);
  if (loss < 0 || loss > 2) throw py::value_error("unknown loss");
  if (reduction < 0 || reduction > 2) throw py::value_error("unknown reduction");
  a.loss = fastloss::ScoreLoss(loss);
  a.margin = margin;
  a.squared = squared;
  a.label_smoothing = eps;
  a.reduction = fastloss::Reduction(reduction);
  a.n_threads = n_threads;
  if (!G.is_none()) {
    py::array g = as_array(G, "out");
    if (float_code(g) != int(sizeof(T)) || g.ndim() != 2 || g.shape(0) != a.N ||
        g.shape(1) != a.C || !g.writeable())
      throw py::value_error("gradient output must be a writable array like scores");
    a.G = static_cast<T*>(g.mutable_data());
    a.ldg = row_stride<T>(g, "gradient");
  }
  if (!L.is_none()) {
    py::array l = as_array(L, "out");
    if (float_code(l) != int(sizeof(T)) || l.ndim() != 1 || l.shape(0) != a.N ||
        !(l.flags() & py::array::c_style) || !l.writeable())
      throw py::value_error("loss output must be a writable contiguous vector");
    a.L = static_cast<T*>(l.mutable_data());
  }
  return run_score_loss(a);
}

// ---- The plain call: C-contiguous aligned native float32/float64 scores of at least one
// row, a contiguous vector of native integer labels (int64, or narrower: widened here;
// not uint64, whose values above int64's range the general path explains), weights (if
// any) of the scores' dtype that "mean" takes as they are; the other options already
// validated by the Python layer. Returns None for any other operands (the Python layer
// then takes its general path, which converts, validates and explains); the same kernel
// and results as the general path.
// It is a CPython "fastcall" function that talks to NumPy's C API directly: pybind11's
// argument dispatch, shape vectors and a Python-level np.float64(...) call cost about
// half a microsecond of the 1-5 us a minibatch-sized call takes.
using npy_api = py::detail::npy_api;

// The array's NumPy fields when `o` is exactly an ndarray (no subclass) of `ndim`
// dimensions, C-contiguous and aligned; null otherwise.
const py::detail::PyArray_Proxy* plain_array(PyObject* o, int ndim) {
  const npy_api& api = npy_api::get();
  if (Py_TYPE(o) != api.PyArray_Type_) return nullptr;
  const auto* a = py::detail::array_proxy(o);
  constexpr int need = npy_api::NPY_ARRAY_C_CONTIGUOUS_ | npy_api::NPY_ARRAY_ALIGNED_;
  return a->nd == ndim && (a->flags & need) == need ? a : nullptr;
}

// The dtype of an array whose NumPy fields are `a` (borrowed).
py::dtype dtype_of(const py::detail::PyArray_Proxy* a) {
  return py::reinterpret_borrow<py::dtype>(a->descr);
}

struct PlainOptions {
  int loss, reduction, n_threads;
  double margin, eps;
  bool squared, grad;
};

// Labels of a narrower native integer type (int8/16/32, uint8/16/32: all exact in int64)
// widened into `buf`; int64 labels are used in place. Null for any other dtype.
const int64_t* labels_as_int64(const py::detail::PyArray_Proxy* y, std::vector<int64_t>& buf) {
  const py::dtype dt = dtype_of(y);
  if (is_int64(dt)) return reinterpret_cast<const int64_t*>(y->data);
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if ((kind != 'i' && kind != 'u') || size > 4 || !is_native(dt)) return nullptr;
  const Py_intptr_t n = y->dimensions[0];
  buf.resize(size_t(n));
  auto widen = [&](auto tag) {
    using I = decltype(tag);
    const I* src = reinterpret_cast<const I*>(y->data);
    for (Py_intptr_t i = 0; i < n; ++i) buf[size_t(i)] = int64_t(src[i]);
  };
  if (kind == 'i')
    size == 1 ? widen(int8_t{}) : size == 2 ? widen(int16_t{}) : widen(int32_t{});
  else
    size == 1 ? widen(uint8_t{}) : size == 2 ? widen(uint16_t{}) : widen(uint32_t{});
  return buf.data();
}

// Optional weights (sample or class) for the plain call: None; or exactly an ndarray of n
// native elements of the scores' float type (T), C-contiguous and aligned, widened into
// `buf`. Returns false for anything else (the general path converts and explains).
template <class T>
bool plain_weights(PyObject* o, Py_ssize_t n, std::vector<double>& buf, const double*& out) {
  out = nullptr;
  if (o == Py_None) return true;
  const auto* w = plain_array(o, 1);
  if (!w || w->dimensions[0] != n || float_code(dtype_of(w)) != int(sizeof(T))) return false;
  const T* src = reinterpret_cast<const T*>(w->data);
  buf.assign(src, src + n);
  out = buf.data();
  return true;
}

// The checks of the Python layer's weights(): the first negative weight is a ValueError
// (named as there, with the value's repr).
void check_non_negative(const std::vector<double>& w, const char* name) {
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] < 0.0) {
      const py::str value = py::repr(py::float_(w[i]));
      throw py::value_error(std::string(name) + "[" + std::to_string(i) +
                            "] = " + std::string(value) +
                            " is negative: weights must be non-negative");
    }
  }
}

// Whether the weights enter "mean" as they are in the Python layer's mean_weights(): every
// positive weight in [2^-64, 2^64] (both vectors), or some weight not finite. Otherwise
// the Python layer rescales them first (the general path).
struct WeightRange {
  bool moderate = true, finite = true;
};
WeightRange weight_range(const double* w, size_t n) {
  WeightRange r;
  if (!w) return r;
  for (size_t i = 0; i < n; ++i) {
    const double v = w[i];
    if (!std::isfinite(v)) r.finite = false;
    if (!(v <= 0x1p64) || (v > 0.0 && v < 0x1p-64)) r.moderate = false;
  }
  return r;
}

template <class T>
PyObject* score_plain_t(const py::detail::PyArray_Proxy* s, const int64_t* y,
                        const PlainOptions& o, const double* sw, const double* cw,
                        PyObject* ignore) {
  const npy_api& api = npy_api::get();
  fastloss::ScoreLossArgs<T> a;
  set_ignore(a, ignore);
  a.S = reinterpret_cast<const T*>(s->data);
  a.N = int64_t(s->dimensions[0]);
  a.C = int64_t(s->dimensions[1]);
  a.lds = a.C;
  a.y = y;
  a.loss = fastloss::ScoreLoss(o.loss);
  a.margin = o.margin;
  a.squared = o.squared;
  a.label_smoothing = o.eps;
  a.reduction = fastloss::Reduction(o.reduction);
  a.n_threads = o.n_threads;
  a.sample_weight = sw;
  a.class_weight = cw;
  // (py::object, not py::array: py::array's default constructor makes an empty array)
  py::object G, L;
  if (o.grad) {
    py::array g = pooled_empty(dtype_of(s), a.N, a.C);
    a.G = static_cast<T*>(g.mutable_data());
    a.ldg = a.C;
    G = std::move(g);
  }
  if (a.reduction == fastloss::Reduction::none) {
    Py_intptr_t n = s->dimensions[0];
    Py_INCREF(s->descr);  // (NewFromDescr steals it)
    L = py::reinterpret_steal<py::object>(api.PyArray_NewFromDescr_(
        api.PyArray_Type_, s->descr, 1, &n, nullptr, nullptr, 0, nullptr));
    if (!L) throw py::error_already_set();
    a.L = reinterpret_cast<T*>(py::detail::array_proxy(L.ptr())->data);
  }
  const T loss_value = T(run_score_loss(a));
  PyObject* value;
  if (L) {
    value = L.inc_ref().ptr();
  } else {
    value = api.PyArray_Scalar_(const_cast<T*>(&loss_value), s->descr, nullptr);
    if (!value) throw py::error_already_set();
  }
  if (!o.grad) return value;
  PyObject* r = PyTuple_New(2);
  if (!r) {
    Py_DECREF(value);
    throw py::error_already_set();
  }
  PyTuple_SET_ITEM(r, 0, value);
  PyTuple_SET_ITEM(r, 1, G.inc_ref().ptr());
  return r;
}

long int_arg(PyObject* o) {
  const long v = PyLong_AsLong(o);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

double float_arg(PyObject* o) {
  const double v = PyFloat_AsDouble(o);
  if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

bool bool_arg(PyObject* o) {
  const int v = PyObject_IsTrue(o);
  if (v < 0) throw py::error_already_set();
  return v != 0;
}

// (scores, y, loss, margin, squared, eps, reduction, grad, n_threads, sample_weight,
// class_weight[, ignore_index])
template <class T>
PyObject* score_plain_w(const py::detail::PyArray_Proxy* s, const int64_t* y,
                        const PlainOptions& o, PyObject* sw_obj, PyObject* cw_obj,
                        PyObject* ignore) {
  std::vector<double> swb, cwb;
  const double *sw, *cw;
  if (!plain_weights<T>(sw_obj, s->dimensions[0], swb, sw) ||
      !plain_weights<T>(cw_obj, s->dimensions[1], cwb, cw))
    Py_RETURN_NONE;
  check_non_negative(swb, "sample_weight");
  check_non_negative(cwb, "class_weight");
  if (o.reduction == int(fastloss::Reduction::mean)) {
    const WeightRange rs = weight_range(sw, swb.size()), rc = weight_range(cw, cwb.size());
    if (!(rs.moderate && rc.moderate) && rs.finite && rc.finite) Py_RETURN_NONE;
  }
  return score_plain_t<T>(s, y, o, sw, cw, ignore);
}

PyObject* score_plain_impl(PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 11 && nargs != 12) throw py::type_error("score_plain takes 11 or 12 arguments");
  PyObject* ignore = nargs == 12 ? args[11] : Py_None;
  if (ignore != Py_None && !PyLong_Check(ignore))
    throw py::type_error("score_plain: ignore_index must be None or an int");
  PlainOptions o;
  o.loss = int(int_arg(args[2]));
  o.margin = float_arg(args[3]);
  o.squared = bool_arg(args[4]);
  o.eps = float_arg(args[5]);
  o.reduction = int(int_arg(args[6]));
  o.grad = bool_arg(args[7]);
  o.n_threads = int(int_arg(args[8]));
  if (o.loss < 0 || o.loss > 2 || o.reduction < 0 || o.reduction > 2 || o.n_threads < 0 ||
      !std::isfinite(o.margin) || !(o.eps >= 0.0 && o.eps <= 1.0))
    throw py::value_error("score_plain: options out of range");
  const auto* s = plain_array(args[0], 2);
  const auto* y = plain_array(args[1], 1);
  if (!s || !y || s->dimensions[0] < 1 || s->dimensions[1] < 1 ||
      y->dimensions[0] != s->dimensions[0])
    Py_RETURN_NONE;
  const int code = float_code(dtype_of(s));
  std::vector<int64_t> buf;
  const int64_t* labels = code ? labels_as_int64(y, buf) : nullptr;
  if (!labels) Py_RETURN_NONE;
  switch (code) {
    case 4: return score_plain_w<float>(s, labels, o, args[9], args[10], ignore);
    case 8: return score_plain_w<double>(s, labels, o, args[9], args[10], ignore);
    default: Py_RETURN_NONE;
  }
}

PyObject* score_plain(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  try {
    return score_plain_impl(args, nargs);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyMethodDef score_plain_def = {
    "score_plain", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&score_plain)),
    METH_FASTCALL,
    // (the first line is CPython's text signature: inspect.signature and stubtest read it)
    "score_plain(scores, y, loss, margin, squared, label_smoothing, reduction, "
    "grad, n_threads, sample_weight, class_weight, ignore_index=None, /)\n--\n\n"
    "The plain score-level call (private): (loss, gradient) or the loss, or None when the "
    "arguments need the general path."};

template <class T>
void softmax_t(const py::array& S, py::array& out, bool log, int n_threads) {
  const int64_t lds = row_stride<T>(S, "scores");
  const int64_t ldo = row_stride<T>(out, "out");
  const int64_t N = int64_t(S.shape(0)), C = int64_t(S.shape(1));
  if (out.shape(0) != N || out.shape(1) != C || !out.writeable())
    throw py::value_error("out must be a writable array like scores");
  const T* s = static_cast<const T*>(S.data());
  T* o = static_cast<T*>(out.mutable_data());
  const auto& k = FL_SELECT(fastloss::loss_kernels);
  GilReleased release;
  if constexpr (sizeof(T) == 4)
    k.softmax_f32(s, N, C, lds, o, ldo, log, n_threads);
  else
    k.softmax_f64(s, N, C, lds, o, ldo, log, n_threads);
}

}  // namespace

void bind_losses(py::module_& m) {
  m.def(
      "score_loss",
      [](const py::array& S, const py::object& y, const py::object& Q, const py::object& sw,
         const py::object& cw, int loss, double margin, bool squared, double eps, int reduction,
         const py::object& G, const py::object& L, int n_threads, double grad_scale,
         const py::object& ignore) {
        if (!ignore.is_none() && !PyLong_Check(ignore.ptr()))
          throw py::type_error("ignore_index must be None or an int");
        switch (float_code(S)) {
          case 4:
            return score_loss_t<float>(S, y, Q, sw, cw, loss, margin, squared, eps, reduction,
                                       G, L, n_threads, grad_scale, ignore);
          case 8:
            return score_loss_t<double>(S, y, Q, sw, cw, loss, margin, squared, eps, reduction,
                                        G, L, n_threads, grad_scale, ignore);
          default:
            fail_type("scores", "float32 or float64");
        }
      },
      "Score-level loss (private: see fastloss.multiclass_hinge / softmax_cross_entropy).");
  m.add_object("score_plain", py::reinterpret_steal<py::object>(
                                  PyCFunction_NewEx(&score_plain_def, nullptr, m.ptr())));
  m.def(
      "softmax_rows",
      [](const py::array& S, py::array& out, bool log, int n_threads) {
        switch (float_code(S)) {
          case 4:
            if (float_code(out) != 4) fail_type("out", "float32");
            return softmax_t<float>(S, out, log, n_threads);
          case 8:
            if (float_code(out) != 8) fail_type("out", "float64");
            return softmax_t<double>(S, out, log, n_threads);
          default:
            fail_type("scores", "float32 or float64");
        }
      },
      "Row-wise softmax or log-softmax into out (private).");
}

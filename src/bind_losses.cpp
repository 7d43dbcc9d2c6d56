// Bindings of the score-level kernels: take the arrays the Python layer prepared, check
// them cheaply, release the GIL, call the kernel of the active instruction set.
#include <string>

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
    py::gil_scoped_release release;
    if constexpr (sizeof(T) == 4)
      r = k.score_loss_f32(a);
    else
      r = k.score_loss_f64(a);
  }
  if (r.error.row >= 0) raise_label_error(r.error, a.C);
  return r.loss;
}

template <class T>
double score_loss_t(const py::array& S, const py::object& y, const py::object& Q,
                    const py::object& sw, const py::object& cw, int loss, double margin,
                    bool squared, double eps, int reduction, const py::object& G,
                    const py::object& L, int n_threads, double grad_scale) {
  fastloss::ScoreLossArgs<T> a;
  a.grad_scale = grad_scale;
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

// ---- The plain call, checked here: C-contiguous aligned native float32/float64 scores of
// at least one row, a contiguous int64 label vector, "mean", the gradient, all threads.
// Returns None for anything else (the Python layer then takes its general path, which
// converts, validates and explains); the same kernel and results as the general path.
bool plain_array(PyObject* o, int ndim) {
  const auto& api = py::detail::npy_api::get();
  if (Py_TYPE(o) != api.PyArray_Type_) return false;  // (exactly ndarray, no subclass)
  const py::array a = py::reinterpret_borrow<py::array>(o);
  constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                       py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  return a.ndim() == ndim && (a.flags() & need) == need;
}

py::object numpy_scalar(int code, double v) {
  // np.float32 / np.float64, looked up once (never released: the types outlive the module)
  static py::object* f32 = new py::object(py::module_::import("numpy").attr("float32"));
  static py::object* f64 = new py::object(py::module_::import("numpy").attr("float64"));
  return code == 4 ? (*f32)(v) : (*f64)(v);
}

template <class T>
py::object score_plain_t(const py::array& S, const py::array& y, int loss, double margin) {
  fastloss::ScoreLossArgs<T> a;
  a.S = static_cast<const T*>(S.data());
  a.N = int64_t(S.shape(0));
  a.C = int64_t(S.shape(1));
  a.lds = a.C;
  a.y = static_cast<const int64_t*>(y.data());
  a.loss = fastloss::ScoreLoss(loss);
  a.margin = margin;
  a.reduction = fastloss::Reduction::mean;
  a.n_threads = 0;
  py::array G = pooled_empty(S.dtype(), {py::ssize_t(a.N), py::ssize_t(a.C)});
  a.G = static_cast<T*>(G.mutable_data());
  a.ldg = a.C;
  const double loss_value = run_score_loss(a);
  return py::make_tuple(numpy_scalar(int(sizeof(T)), loss_value), G);
}

py::object score_plain(py::handle S_, py::handle y_, int loss, double margin) {
  if (loss < 0 || loss > 2 || !plain_array(S_.ptr(), 2) || !plain_array(y_.ptr(), 1))
    return py::none();
  const py::array S = py::reinterpret_borrow<py::array>(S_);
  const py::array y = py::reinterpret_borrow<py::array>(y_);
  if (S.shape(0) < 1 || S.shape(1) < 1 || y.shape(0) != S.shape(0) || !is_int64(y))
    return py::none();
  switch (float_code(S)) {
    case 4: return score_plain_t<float>(S, y, loss, margin);
    case 8: return score_plain_t<double>(S, y, loss, margin);
    default: return py::none();
  }
}

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
  py::gil_scoped_release release;
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
         const py::object& G, const py::object& L, int n_threads, double grad_scale) {
        switch (float_code(S)) {
          case 4:
            return score_loss_t<float>(S, y, Q, sw, cw, loss, margin, squared, eps, reduction,
                                       G, L, n_threads, grad_scale);
          case 8:
            return score_loss_t<double>(S, y, Q, sw, cw, loss, margin, squared, eps, reduction,
                                        G, L, n_threads, grad_scale);
          default:
            fail_type("scores", "float32 or float64");
        }
      },
      "Score-level loss (private: see fastloss.multiclass_hinge / softmax_cross_entropy).");
  m.def("score_plain", &score_plain,
        "The plain score-level call (private): (loss, gradient), or None when the "
        "arguments need the general path.");
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

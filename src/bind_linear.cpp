// Bindings of the model-level kernels: take the arrays the Python layer prepared, check
// them cheaply, release the GIL, call the kernel of the active instruction set. No math.
#include <string>

#include "bind_common.hpp"
#include "fastloss/driver.hpp"
#include "fastloss/linear_kernels.hpp"

namespace py = pybind11;
using namespace fastloss_bind;

namespace {

template <class T>
py::tuple linear_loss_t(const py::array& W, const py::array& X, const py::object& y,
                        const py::object& Q, const py::object& b, const py::object& indices,
                        const py::object& sw, const py::object& cw, int loss, double margin,
                        bool squared, double eps, int reduction, double reg, int penalty,
                        double l1_ratio, const py::object& dW, const py::object& db,
                        const py::object& dX, int n_threads) {
  fastloss::LinearArgs<T> a;
  a.X = static_cast<const T*>(X.data());
  a.ldx = row_stride<T>(X, "X");
  a.N = int64_t(X.shape(0));
  a.D = int64_t(X.shape(1));
  if (float_code(W) != int(sizeof(T))) fail_type("W", "of X's dtype");
  a.W = static_cast<const T*>(W.data());
  a.ldw = row_stride<T>(W, "W");
  if (W.shape(0) != a.D) throw py::value_error("W must have X.shape[1] rows");
  a.C = int64_t(W.shape(1));
  if (Q.is_none()) {
    a.y = optional_vector<int64_t>(y, a.N, "y", true);
    if (!a.y) throw py::value_error("y is required");
  } else {
    py::array q = as_array(Q, "y");
    if (float_code(q) != int(sizeof(T)) || q.ndim() != 2 || q.shape(0) != a.N ||
        q.shape(1) != a.C)
      throw py::value_error("soft targets y must be (N, C) of X's dtype");
    a.Q = static_cast<const T*>(q.data());
    a.ldq = row_stride<T>(q, "y");
  }
  a.b = optional_vector<T>(b, a.C, "b", false);
  if (!indices.is_none()) {
    py::array idx = as_array(indices, "indices");
    if (!is_int64(idx) || idx.ndim() != 1 || !(idx.flags() & py::array::c_style))
      throw py::value_error("indices must be a contiguous int64 vector");
    check_aligned<int64_t>(idx, "indices");
    a.indices = static_cast<const int64_t*>(idx.data());
    a.M = int64_t(idx.shape(0));
    for (int64_t i = 0; i < a.M; ++i)
      if (a.indices[i] < 0 || a.indices[i] >= a.N)
        throw py::value_error("indices[" + std::to_string(i) + "] = " +
                              std::to_string(a.indices[i]) + " is out of range");
  }
  a.sample_weight = optional_vector<double>(sw, a.N, "sample_weight", false);
  a.class_weight = optional_vector<double>(cw, a.C, "class_weight", false);
  if (loss < 0 || loss > 2 || reduction < 1 || reduction > 2 || penalty < 0 || penalty > 2)
    throw py::value_error("unknown option");
  a.loss = fastloss::ScoreLoss(loss);
  a.margin = margin;
  a.squared = squared;
  a.label_smoothing = eps;
  a.reduction = fastloss::Reduction(reduction);
  a.reg = reg;
  a.penalty = fastloss::Penalty(penalty);
  a.l1_ratio = l1_ratio;
  a.n_threads = n_threads;
  if (!dW.is_none()) {
    py::array g = as_array(dW, "dW");
    if (float_code(g) != int(sizeof(T)) || g.ndim() != 2 || g.shape(0) != a.D ||
        g.shape(1) != a.C || !(g.flags() & py::array::c_style) || !g.writeable())
      throw py::value_error("dW must be a writable contiguous (D, C) array");
    a.dW = static_cast<T*>(g.mutable_data());
    if (!db.is_none()) {
      py::array gb = as_array(db, "db");
      if (float_code(gb) != int(sizeof(T)) || gb.ndim() != 1 || gb.shape(0) != a.C ||
          !gb.writeable())
        throw py::value_error("db must be a writable (C,) array");
      a.db = static_cast<T*>(gb.mutable_data());
    }
    if (!dX.is_none()) {
      py::array gx = as_array(dX, "dX");
      const int64_t M = a.indices ? a.M : a.N;
      if (float_code(gx) != int(sizeof(T)) || gx.ndim() != 2 || gx.shape(0) != M ||
          gx.shape(1) != a.D || !(gx.flags() & py::array::c_style) || !gx.writeable())
        throw py::value_error("dX must be a writable contiguous (M, D) array");
      a.dX = static_cast<T*>(gx.mutable_data());
    }
  }
  const auto& k = FL_SELECT(fastloss::linear_kernels);
  fastloss::LinearResult r;
  {
    GilReleased release;
    if constexpr (sizeof(T) == 4)
      r = k.linear_loss_f32(a);
    else
      r = k.linear_loss_f64(a);
  }
  if (r.error.row >= 0) raise_label_error(r.error, a.C);
  return py::make_tuple(r.loss, r.data_loss, r.reg_loss);
}

py::tuple linear_loss_any(const py::array& W, const py::array& X, const py::object& y,
                          const py::object& Q, const py::object& b, const py::object& indices,
                          const py::object& sw, const py::object& cw, int loss, double margin,
                          bool squared, double eps, int reduction, double reg, int penalty,
                          double l1_ratio, const py::object& dW, const py::object& db,
                          const py::object& dX, int n_threads) {
  switch (float_code(X)) {
    case 4:
      return linear_loss_t<float>(W, X, y, Q, b, indices, sw, cw, loss, margin, squared, eps,
                                  reduction, reg, penalty, l1_ratio, dW, db, dX, n_threads);
    case 8:
      return linear_loss_t<double>(W, X, y, Q, b, indices, sw, cw, loss, margin, squared, eps,
                                   reduction, reg, penalty, l1_ratio, dW, db, dX, n_threads);
    default:
      fail_type("X", "float32 or float64");
  }
}

}  // namespace

void bind_linear(py::module_& m) {
  m.def(
      "linear_loss",
      [](const py::array& W, const py::array& X, const py::object& y, const py::object& Q,
         const py::object& b, const py::object& indices, const py::object& sw,
         const py::object& cw, int loss, double margin, bool squared, double eps, int reduction,
         double reg, int penalty, double l1_ratio, const py::object& dW, const py::object& db,
         int n_threads) {
        return linear_loss_any(W, X, y, Q, b, indices, sw, cw, loss, margin, squared, eps,
                               reduction, reg, penalty, l1_ratio, dW, db, py::none(),
                               n_threads);
      },
      "Model-level loss (private: see fastloss.linear_loss).");
  m.def(
      "linear_loss_dx",
      [](const py::array& W, const py::array& X, const py::object& y, const py::object& Q,
         const py::object& b, const py::object& indices, const py::object& sw,
         const py::object& cw, int loss, double margin, bool squared, double eps, int reduction,
         double reg, int penalty, double l1_ratio, const py::object& dW, const py::object& db,
         const py::object& dX, int n_threads) {
        return linear_loss_any(W, X, y, Q, b, indices, sw, cw, loss, margin, squared, eps,
                               reduction, reg, penalty, l1_ratio, dW, db, dX, n_threads);
      },
      "Model-level loss and the gradient of the rows, dX (private: see fastloss.linear_loss).");

  // Benchmarks only (benchmarks/sgd_step.py): the calling thread's later linear_loss calls
  // add their phase times to the float64 array of 6 (kept alive by the caller), or None.
  m.def(
      "_linear_phase_clock",
      [](const py::object& a) {
        double*& p = fastloss::linear_phase_seconds();
        if (a.is_none()) {
          p = nullptr;
          return;
        }
        py::array arr = as_array(a, "phases");
        if (float_code(arr) != 8 || arr.ndim() != 1 || arr.shape(0) != 6 ||
            !(arr.flags() & py::array::c_style) || !arr.writeable())
          throw py::value_error("phases must be a writable float64 vector of 6");
        p = static_cast<double*>(arr.mutable_data());
      },
      "Phase timers of linear_loss on this thread (benchmarks only).");

  // Tests only: the driver's team gate (see driver.hpp) on a gate of its own, with the
  // times given. events: ("report", wall_ns, cpu_ns, now_ns) or ("open", now_ns); returns
  // the gate's closed_until after each report and 1/0 for each "open".
  m.def(
      "_team_gate_trace",
      [](const py::list& events) {
        namespace fb = fastloss::FASTLOSS_ISA;
        fb::TeamGate g;
        py::list out;
        for (const py::handle& e : events) {
          const py::tuple t = py::reinterpret_borrow<py::tuple>(e);
          const std::string kind = t[0].cast<std::string>();
          if (kind == "report") {
            fb::team_gate_report(g, t[1].cast<int64_t>(), t[2].cast<int64_t>(),
                                 t[3].cast<int64_t>());
            out.append(g.closed_until.load());
          } else if (kind == "open") {
            out.append(int(fb::team_gate_open(g, t[1].cast<int64_t>())));
          } else {
            throw py::value_error("event must be 'report' or 'open'");
          }
        }
        return out;
      },
      "The driver's team gate with given times (tests only).");
  m.def(
      "_team_gate_class", [](int64_t work) { return fastloss::FASTLOSS_ISA::team_gate_class(work); },
      "The driver's work class of a loop (tests only).");
}

// Bindings of the fused SGD kernel: take the flat arrays the Python layer prepared, check
// them cheaply, release the GIL, call the kernel of the active instruction set.
#include <string>

#include "bind_common.hpp"
#include "fastloss/optim_kernels.hpp"

namespace py = pybind11;
using namespace fastloss_bind;

namespace {

// A writable (or readable) C-contiguous 1-D array of n elements of T.
template <class T>
T* flat_data(const py::array& a, int64_t n, const char* name, bool write) {
  if (float_code(a) != int(sizeof(T))) fail_type(name, "of the parameter's dtype");
  if (a.ndim() != 1 || int64_t(a.shape(0)) != n || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be a contiguous vector of " +
                          std::to_string(n) + " elements");
  if (write && !a.writeable()) throw py::value_error(std::string(name) + " is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

template <class T>
void sgd_t(const py::array& p, const py::array& g, const py::object& b, double lr,
           double momentum, double grad_coef, double weight_decay, bool nesterov,
           bool maximize, bool first_step, int n_threads) {
  if (p.ndim() != 1) throw py::value_error("param must be a flat (1-D) array");
  const int64_t n = int64_t(p.shape(0));
  T* param = flat_data<T>(p, n, "param", true);
  const T* grad = flat_data<T>(g, n, "grad", false);
  T* buf = nullptr;
  if (momentum != 0.0) {
    if (b.is_none()) throw py::value_error("a momentum buffer is required with momentum");
    buf = flat_data<T>(as_array(b, "buffer"), n, "buffer", true);
  } else if (nesterov) {
    throw py::value_error("Nesterov momentum requires momentum");
  }
  const auto a = fastloss::sgd_args(param, grad, buf, n, lr, momentum, grad_coef, weight_decay,
                                    nesterov, maximize, first_step, n_threads);
  const auto& k = FL_SELECT(fastloss::optim_kernels);
  GilReleased release;
  if constexpr (sizeof(T) == 4)
    k.sgd_f32(a);
  else
    k.sgd_f64(a);
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def(
      "sgd_update",
      [](const py::array& p, const py::array& g, const py::object& b, double lr,
         double momentum, double grad_coef, double weight_decay, bool nesterov, bool maximize,
         bool first_step, int n_threads) {
        switch (float_code(p)) {
          case 4:
            return sgd_t<float>(p, g, b, lr, momentum, grad_coef, weight_decay, nesterov,
                                maximize, first_step, n_threads);
          case 8:
            return sgd_t<double>(p, g, b, lr, momentum, grad_coef, weight_decay, nesterov,
                                 maximize, first_step, n_threads);
          default:
            fail_type("param", "float32 or float64");
        }
      },
      "Fused in-place SGD update of flat arrays (private: see fastloss.SGD / sgd_step).");
}

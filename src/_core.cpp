// The extension module fastloss._core: each area registers its functions here.
#include <pybind11/pybind11.h>

#include "fastloss/dispatch.hpp"
#include "fastloss/kernels.hpp"
#include "bind_common.hpp"
#include "fastloss_build_config.hpp"

namespace py = pybind11;

void bind_losses(py::module_& m);
void bind_pool(py::module_& m);
void bind_features(py::module_& m);
void bind_optim(py::module_& m);
void bind_linear(py::module_& m);
void bind_capi(py::module_& m);


PYBIND11_MODULE(_core, m) {
  m.doc() = "fastloss C++ kernels (private; use the fastloss package)";
  m.def("build_info", []() {
    py::dict d;
    d["version"] = FASTLOSS_VERSION;
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = "unknown";
#endif
    d["cxx_flags"] = FASTLOSS_CXX_FLAGS;
    d["isa_compiled"] = FASTLOSS_ISAS_COMPILED;
    d["isa_best"] = fastloss::isa_name(fastloss::best_isa());
    d["isa_active"] = fastloss::isa_name(fastloss::active_isa());
    d["isa_note"] = fastloss::isa_note();
#if defined(FASTLOSS_OPENMP)
    d["openmp"] = true;
#else
    d["openmp"] = false;
#endif
    d["max_threads"] = FL_SELECT(fastloss::loss_kernels).max_threads();
    return d;
  });
  m.def("max_threads", []() { return FL_SELECT(fastloss::loss_kernels).max_threads(); });
  bind_pool(m);
  bind_losses(m);
  bind_features(m);
  bind_optim(m);
  bind_linear(m);
  bind_capi(m);
  fastloss_bind::install_exit_gate(m);
}

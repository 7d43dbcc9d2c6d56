// The output pool of bind_common.hpp and its bindings. No math.
#include <pthread.h>
#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <utility>

#include "bind_common.hpp"

namespace fastloss_bind {
namespace {

constexpr size_t kPoolMinBytes = size_t(1) << 20;  // smaller arrays: NumPy's allocator
constexpr size_t kPoolBlocks = 4;
constexpr size_t kPoolBytes = size_t(1) << 30;
constexpr size_t kAlign = 64;
constexpr size_t kHugeBytes = size_t(2) << 20;

struct Block {
  void* ptr;
  size_t bytes;
};

struct Pool {
  std::mutex mu;
  std::vector<Block> free_blocks;
  size_t held = 0;

  Block get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t k = 0; k < free_blocks.size(); ++k) {
        const Block b = free_blocks[k];
        if (b.bytes >= bytes && b.bytes <= 2 * bytes) {
          free_blocks.erase(free_blocks.begin() + std::ptrdiff_t(k));
          held -= b.bytes;
          return b;
        }
      }
    }
    // Large blocks on 2 MB boundaries, advised for transparent huge pages (fewer faults).
    const size_t align = bytes >= kHugeBytes ? kHugeBytes : kAlign;
    const size_t rounded = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded);
    if (!p) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
    if (align == kHugeBytes) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return Block{p, rounded};
  }

  void put(Block b) {
    std::lock_guard<std::mutex> lock(mu);
    if (free_blocks.size() >= kPoolBlocks || held + b.bytes > kPoolBytes) {
      // Keep the newest: drop the oldest until the new block fits.
      while (!free_blocks.empty() &&
             (free_blocks.size() >= kPoolBlocks || held + b.bytes > kPoolBytes)) {
        std::free(free_blocks.front().ptr);
        held -= free_blocks.front().bytes;
        free_blocks.erase(free_blocks.begin());
      }
      if (held + b.bytes > kPoolBytes) {
        std::free(b.ptr);
        return;
      }
    }
    free_blocks.push_back(b);
    held += b.bytes;
  }

  std::pair<size_t, size_t> info() {
    std::lock_guard<std::mutex> lock(mu);
    return {free_blocks.size(), held};
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mu);
    for (const Block& b : free_blocks) std::free(b.ptr);
    free_blocks.clear();
    held = 0;
  }
};

Pool& pool() {
  // Never destroyed: arrays may outlive the module. fork() while another thread holds the
  // lock would leave it locked forever in the child: the fork waits for it (the
  // sections it guards are short and never wait for anything else).
  static Pool* p = [] {
    Pool* q = new Pool();
    pthread_atfork([] { pool().mu.lock(); }, [] { pool().mu.unlock(); },
                   [] { pool().mu.unlock(); });
    return q;
  }();
  return *p;
}

}  // namespace

py::array pooled_empty(const py::dtype& dt, py::ssize_t rows, py::ssize_t cols) {
  const size_t bytes = size_t(rows) * size_t(cols) * size_t(dt.itemsize());
  Py_intptr_t dims[2] = {rows, cols};
  const auto& api = py::detail::npy_api::get();
  if (bytes < kPoolMinBytes) {  // NumPy's allocator, through its C API (no shape vectors)
    PyObject* descr = dt.inc_ref().ptr();  // (NewFromDescr steals the reference)
    PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, 2, dims, nullptr,
                                            nullptr, 0, nullptr);
    if (!a) throw py::error_already_set();
    return py::reinterpret_steal<py::array>(a);
  }
  Block* b = new Block(pool().get(bytes));
  py::capsule owner(b, [](void* p) {
    Block* blk = static_cast<Block*>(p);
    pool().put(*blk);
    delete blk;
  });
  return py::array(dt, {rows, cols}, b->ptr, owner);
}

void pool_clear() { pool().clear(); }

std::pair<size_t, size_t> pool_info() { return pool().info(); }

}  // namespace fastloss_bind

void bind_pool(pybind11::module_& m) {
  namespace py = pybind11;
  m.def(
      "empty",
      [](py::ssize_t rows, py::ssize_t cols, const py::dtype& dt) {
        if (rows < 0 || cols < 0) throw py::value_error("negative dimensions");
        return fastloss_bind::pooled_empty(dt, rows, cols);
      },
      "An uninitialised C-contiguous (rows, cols) array, from the output pool when large "
      "(private).");
  m.def("pool_clear", &fastloss_bind::pool_clear, "Free the blocks the output pool holds.");
  m.def(
      "pool_info",
      []() {
        const auto bi = fastloss_bind::pool_info();
        return py::make_tuple(bi.first, bi.second);
      },
      "(blocks, bytes) the output pool holds for reuse (private: the leak tests).");
}

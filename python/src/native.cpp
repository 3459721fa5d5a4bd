// gmmav._native: the binding between gmmav.torch and the native C++ API.
//
// Tensors cross as (data_ptr, dtype, shape, strides) tuples of Python ints —
// no torch headers, no copies: the views point at the torch tensors' memory,
// which the caller (gmmav/torch.py) keeps alive during the call. Every call
// into gmmav releases the GIL; gmmav::Error is re-raised as gmmav._native.Error
// (code, param, message), which gmmav.torch maps to ValueError/RuntimeError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/comm_access.hpp"
#include "common/mpi_launcher.hpp"
#include "engine/compute_pool.hpp"
#include "gemm/tile_matmul.hpp"
#include "gmmav/build_options.hpp"
#include "gmmav/gmmav.hpp"
#include "output_pool.hpp"
#include "torch_dist_communicator.hpp"
#include "torch_dist_transport.hpp"

#if GMMAV_WITH_MPI
#include "gmmav/mpi.hpp"
#endif

namespace py = pybind11;
using namespace gmmav;

namespace {

// (ptr, dtype, shape, strides): dtype 0 = f16, 1 = bf16; shape/strides in elements, at most 3 dims.
template <typename View>
View to_view(const py::tuple& t) {
  View v;
  using Ptr = decltype(v.data);
  v.data = reinterpret_cast<Ptr>(t[0].cast<std::uintptr_t>());  // NOLINT(performance-no-int-to-ptr): Python hands addresses
  v.dtype = static_cast<DType>(t[1].cast<int>());
  const auto shape = t[2].cast<std::vector<std::int64_t>>();
  const auto strides = t[3].cast<std::vector<std::int64_t>>();
  v.rank = static_cast<int>(shape.size());
  for (std::size_t i = 0; i < shape.size() && i < 3; ++i) {
    v.dims[i] = shape[i];
    v.strides[i] = strides[i];
  }
  return v;
}

std::chrono::milliseconds timeout_of(std::int64_t ms) { return ms > 0 ? std::chrono::milliseconds(ms) : default_timeout(); }

struct Call {
  std::vector<std::int64_t> send, recv;
  OpTensors t;
  bool trans_gmm = false, trans_mm = false;
  int world_size = 0;
  Op op = Op::combine;
};

Call make_call(int world_size, std::vector<std::int64_t> send, std::vector<std::int64_t> recv, bool trans_gmm, bool trans_mm,
               const py::tuple& gmm_x, const py::tuple& gmm_w, const py::tuple& y, const std::optional<py::tuple>& mm_x,
               const std::optional<py::tuple>& mm_w, const std::optional<py::tuple>& mm_y) {
  Call c;
  c.world_size = world_size;
  c.send = std::move(send);
  c.recv = std::move(recv);
  c.trans_gmm = trans_gmm;
  c.trans_mm = trans_mm;
  c.t.gmm_x = to_view<ConstTensorView>(gmm_x);
  c.t.gmm_weight = to_view<ConstTensorView>(gmm_w);
  c.t.y = to_view<TensorView>(y);
  if (mm_x) c.t.mm_x = to_view<ConstTensorView>(*mm_x);
  if (mm_w) c.t.mm_weight = to_view<ConstTensorView>(*mm_w);
  if (mm_y) c.t.mm_y = to_view<TensorView>(*mm_y);
  return c;
}

Plan plan_for(const Comm& comm, const Call& c) {
  return Plan::from_tensors(c.world_size, comm.rank(), c.send, c.recv, c.t, c.trans_gmm, c.trans_mm, Envelope::native, c.op);
}

// Weights packed once and reused by later calls (gmmav.torch's weight cache, docs/python.md
// "Weight cache"): empty until the first call it is passed to packs them (PackedWeights::create,
// for that call's plan); read-only afterwards, so any number of calls and threads may share it.
struct Packed {
  std::shared_ptr<const PackedWeights> weights;
};

// A rank's handle as Python holds it: the group and the workspace its calls reuse
// (grown when a call needs more; one call at a time per rank, as for any Comm).
struct Group {
  Comm comm;
  std::vector<std::byte> workspace;
  std::span<std::byte> workspace_for(const Plan& plan) {
    const std::size_t need = workspace_size(plan, comm);
    if (workspace.size() < need) workspace.resize(need);
    return std::span<std::byte>(workspace.data(), need);
  }
};

// Rows per task of matmul(): fixed, so which rows share a tile (and so each tile's route,
// tile_matmul.hpp) never depends on the thread count: results are the same bits for any pool.
constexpr std::int64_t kMatmulTileRows = 128;

// out(rows x n) = round(x(rows x k) @ W), W (k x n) or, with trans_w, stored (n x k): gmmav's GEMM
// (FP32 accumulation over the whole k, one RNE rounding), row tiles on the compute pool.
void matmul(const ConstTensorView& x, const ConstTensorView& w, const TensorView& out, bool trans_w) {
  auto fail = [](const char* param, const std::string& what) { throw Error(Errc::invalid_argument, param, what); };
  if (x.rank != 2 || w.rank != 2 || out.rank != 2) fail("x", "matmul: expected 2-D x, w and out");
  if (x.dtype != w.dtype || x.dtype != out.dtype) fail("w", "matmul: expected one dtype for x, w and out");
  const std::int64_t rows = x.dims[0], k = x.dims[1];
  const std::int64_t n = trans_w ? w.dims[0] : w.dims[1];
  if ((trans_w ? w.dims[1] : w.dims[0]) != k) fail("w", "matmul: expected w's reduction dimension to be x's columns");
  if (out.dims[0] != rows || out.dims[1] != n) fail("out", "matmul: expected out (rows of x, columns of W)");
  // Row-major; a dim of extent <= 1 may carry any stride (as gmmav's own tensor rules).
  auto contiguous = [](const auto& v) {
    return (v.dims[1] <= 1 || v.strides[1] == 1) && (v.dims[0] <= 1 || v.strides[0] == v.dims[1]);
  };
  if (!contiguous(x) || !contiguous(w) || !contiguous(out)) fail("x", "matmul: expected contiguous tensors");
  if (rows == 0 || n == 0) return;
  if (k == 0) fail("x", "matmul: expected a reduction dimension > 0 (the caller writes zeros)");
  gemm::PreparedWeight pw;
  pw.prepare(x.dtype, static_cast<const std::uint16_t*>(w.data), k, n, trans_w, gemm::PreparedWeight::Packing::now, "w");
  const auto* xs = static_cast<const std::uint16_t*>(x.data);
  auto* os = static_cast<std::uint16_t*>(out.data);
  const std::size_t tiles = static_cast<std::size_t>((rows + kMatmulTileRows - 1) / kMatmulTileRows);
  engine::ComputePool::instance().parallel_for(tiles, [&](std::size_t i) {
    const std::int64_t first = static_cast<std::int64_t>(i) * kMatmulTileRows;
    pw.matmul_rows(xs + first * k, std::min(kMatmulTileRows, rows - first), os + first * n);
  });
}

// Plan::from_tensors + gmmav::run (with `packed`'s weights when given, packing them into it first
// when it is empty), the GIL released by the caller. Returns the seconds it took.
double run_call(Group& group, const Call& c, Packed* packed) {
  const auto t0 = std::chrono::steady_clock::now();
  const Plan plan = plan_for(group.comm, c);
  if (packed != nullptr) {
    if (!packed->weights) packed->weights = std::make_shared<const PackedWeights>(PackedWeights::create(plan, c.t));
    run(plan, group.comm, c.t, *packed->weights, group.workspace_for(plan));
  } else {
    run(plan, group.comm, c.t, group.workspace_for(plan));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// This process's rank of the MPI world (mpirun without torch.distributed). Built without MPI
// (GMMAV_WITH_MPI=OFF): an error that says so (gmmav.torch raises it as RuntimeError).
Comm mpi_world_comm(const GroupOptions& options) {
#if GMMAV_WITH_MPI
  return create_mpi_group(MPI_COMM_WORLD, options);
#else
  (void)options;
  throw Error(Errc::internal, "hcom",
              std::string(without_mpi_message) +
                  ": a group of one process per rank under mpirun needs the MPI backend; initialise torch.distributed "
                  "(gloo) in those processes instead, or rebuild gmmav with -DGMMAV_WITH_MPI=ON");
#endif
}

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::null_argument:
      return "null_argument";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::count_mismatch:
      return "count_mismatch";
    case Errc::timeout:
      return "timeout";
    case Errc::group_broken:
      return "group_broken";
    case Errc::internal:
      return "internal";
    case Errc::out_of_memory:
      return "out_of_memory";
  }
  return "unknown";
}

}  // namespace

#define GMMAV_CALL_ARGS                                                                                                        \
  Group &group, int world_size, std::vector<std::int64_t> send, std::vector<std::int64_t> recv, bool trans_gmm, bool trans_mm, \
      const py::tuple &gmm_x, const py::tuple &gmm_w, const py::tuple &y, const std::optional<py::tuple>&mm_x,                 \
      const std::optional<py::tuple>&mm_w, const std::optional<py::tuple>&mm_y
#define GMMAV_MAKE_CALL \
  make_call(world_size, std::move(send), std::move(recv), trans_gmm, trans_mm, gmm_x, gmm_w, y, mm_x, mm_w, mm_y)

PYBIND11_MODULE(_native, m) {
  m.doc() = "gmmav native binding (used by gmmav.torch)";

  static py::exception<Error> error_type(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator(
      [](std::exception_ptr p) {  // NOLINT(performance-unnecessary-value-param): pybind11 wants this signature
        try {
          if (p) std::rethrow_exception(p);
        } catch (const Error& e) {
          py::object err = py::reinterpret_borrow<py::object>(error_type.ptr())(py::str(e.what()));
          err.attr("code") = std::string(errc_name(e.code()));
          err.attr("param") = e.param();
          PyErr_SetObject(error_type.ptr(), err.ptr());
        }
      });

  py::class_<Group>(m, "Group")
      .def_property_readonly("rank", [](const Group& g) { return g.comm.rank(); })
      .def_property_readonly("size", [](const Group& g) { return g.comm.size(); })
      .def_property_readonly("name", [](const Group& g) { return g.comm.name(); })
      .def_property_readonly("timeout_ms", [](const Group& g) { return static_cast<std::int64_t>(g.comm.timeout().count()); });

  m.def("default_timeout_ms", [] { return static_cast<std::int64_t>(default_timeout().count()); });
  m.def("launched_by_mpi", &started_by_mpi_launcher);
  m.attr("with_mpi") = with_mpi;
  m.def(
      "in_process_group",
      [](int w, std::int64_t timeout_ms, const std::string& name) {
        GroupOptions o;
        o.timeout = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
        o.name = name;
        std::vector<std::unique_ptr<Group>> out;
        for (Comm& c : create_in_process_group(w, o)) out.push_back(std::make_unique<Group>(Group{std::move(c), {}}));
        return out;
      },
      py::arg("world_size"), py::arg("timeout_ms") = 0, py::arg("name") = "");
  m.def(
      "mpi_world_group",
      [](std::int64_t timeout_ms) {
        GroupOptions o;
        o.timeout = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
        py::gil_scoped_release nogil;
        return std::make_unique<Group>(Group{mpi_world_comm(o), {}});
      },
      py::arg("timeout_ms") = 0);
  python::define_transfer_mark(m);
  python::define_output_pool(m);
  m.def("torch_dist_group", [](int rank, int size, const std::string& name, std::int64_t timeout_ms, py::object transport) {
    return std::make_unique<Group>(Group{
        detail::CommAccess::wrap(python::create_torch_dist(rank, size, name, timeout_of(timeout_ms), std::move(transport))), {}});
  });
  m.def("compute_threads", &compute_threads);
  m.def("set_compute_threads", [](int n) {
    py::gil_scoped_release nogil;
    set_compute_threads(n);
  });

  py::class_<Packed>(m, "PackedWeights")
      .def(py::init<>())
      .def_property_readonly("bytes", [](const Packed& p) { return p.weights ? p.weights->bytes() : std::size_t{0}; })
      .def_property_readonly("packed", [](const Packed& p) { return p.weights != nullptr; });

  // One rank's call: gmmav::Plan::from_tensors + gmmav::run, the GIL released. `packed` (None or a
  // PackedWeights handle): the weights packed by an earlier call, or an empty handle this call
  // packs them into (gmmav.torch's weight cache); None packs them in the call, as plain `run`.
  // Returns the seconds those took (what a C++ caller would spend; the rest of the Python call is
  // the binding's overhead, measured by tests/python/binding_overhead.py).
  m.def("run", [](GMMAV_CALL_ARGS, Packed* packed) {
    Call c = GMMAV_MAKE_CALL;
    py::gil_scoped_release nogil;
    return run_call(group, c, packed);
  });

  // The dispatch op (docs/dispatch-op.md): the same call with gmmY as `y` and permuteOut if given.
  m.def("run_dispatch", [](GMMAV_CALL_ARGS, std::optional<py::tuple> permute_out, Packed* packed) {
    Call c = GMMAV_MAKE_CALL;
    c.op = Op::dispatch;
    if (permute_out) c.t.permute_out = to_view<TensorView>(*permute_out);
    py::gil_scoped_release nogil;
    return run_call(group, c, packed);
  });

  // out = round(x @ W) (W = w, or w transposed with trans_w) with gmmav's GEMM: the autograd
  // formulas' weight and shared-expert gradients (gmmav.torch), deterministic for any thread count.
  m.def("matmul", [](const py::tuple& x, const py::tuple& w, const py::tuple& out, bool trans_w) {
    const auto xv = to_view<ConstTensorView>(x);
    const auto wv = to_view<ConstTensorView>(w);
    const auto ov = to_view<TensorView>(out);
    py::gil_scoped_release nogil;
    matmul(xv, wv, ov, trans_w);
  });

  // The C++ API timed on its own (for the binding-overhead measurement): `iterations`
  // calls of Plan::from_tensors + gmmav::run, as a C++ program makes them (workspace
  // kept across calls); the seconds of each call.
  m.def("time_cpp_calls", [](GMMAV_CALL_ARGS, int iterations) {
    Call c = GMMAV_MAKE_CALL;
    std::vector<double> seconds;
    py::gil_scoped_release nogil;
    for (int i = 0; i < iterations; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const Plan plan = plan_for(group.comm, c);
      run(plan, group.comm, c.t, group.workspace_for(plan));
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return seconds;
  });

  // The same with the weights packed once before the first call (PackedWeights::create, not
  // timed): the native API's fastest form for unchanged weights, which gmmav.torch's weight cache
  // is measured against (tests/python/weight_cache_bench.py).
  m.def("time_cpp_packed_calls", [](GMMAV_CALL_ARGS, int iterations) {
    Call c = GMMAV_MAKE_CALL;
    std::vector<double> seconds;
    py::gil_scoped_release nogil;
    const PackedWeights packed = PackedWeights::create(plan_for(group.comm, c), c.t);
    for (int i = 0; i < iterations; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const Plan plan = plan_for(group.comm, c);
      run(plan, group.comm, c.t, packed, group.workspace_for(plan));
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return seconds;
  });
}

// The memory of gmmav.torch's outputs (D102): blocks kept resident between calls, handed to torch
// through the buffer protocol (torch.frombuffer), so an output's storage holds its block and
// returns it to the pool when the last tensor on that storage is freed.
#pragma once

#include <pybind11/pybind11.h>

namespace gmmav::python {

/// Defines _native.OutputBlock, output_block(bytes), output_pool_info() and
/// set_output_pool_bytes(n).
void define_output_pool(pybind11::module_& m);

}  // namespace gmmav::python

// The validation rules of docs/spec.md §5 (problem_rules.cpp) and of the tensors
// (tensor_rules.cpp), used by Plan and by PackedWeights::create (internal).
#pragma once

#include <cstdint>

#include "gmmav/plan.hpp"

namespace gmmav::detail {

/// Validates a description against the rules of docs/spec.md §5 for `envelope`. Throws gmmav::Error.
void validate_problem(const ProblemDesc& desc, Envelope envelope);

/// Validates tensors against a validated description. Throws gmmav::Error.
void validate_tensors(const ProblemDesc& desc, std::int64_t rows_in, std::int64_t rows_out, const OpTensors& t);

/// How many of the shared expert's three tensors are given: 0 or 3 (anything else is refused,
/// naming the first missing one). Throws gmmav::Error.
int shared_tensors_given(const OpTensors& t);

/// Validates only the weight views (gmmWeight, mmWeightOptional) against a validated description.
void validate_weights(const ProblemDesc& desc, const OpTensors& t);

}  // namespace gmmav::detail

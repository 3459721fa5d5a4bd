// How each API family reports a gmmav::Errc (see docs/compat.md, "Runtime behaviour").
#pragma once

#include "acl/acl.h"
#include "aclnn/aclnn_status.h"
#include "hccl/hccl_types.h"
#include "runtime/api_guard.hpp"

namespace gmmav::runtime {

/// Direct aclrt* / acl* calls.
inline constexpr Codes kAclCodes{
    ACL_ERROR_INVALID_PARAM,          // null_argument
    ACL_ERROR_INVALID_PARAM,          // invalid_argument
    ACL_ERROR_RT_PARAM_INVALID,       // count_mismatch
    ACL_ERROR_RT_TASK_TIMEOUT,        // timeout
    ACL_ERROR_RT_COMM_OP_RETRY_FAIL,  // group_broken
    ACL_ERROR_RT_INTERNAL_ERROR,      // internal
    ACL_ERROR_RT_MEMORY_ALLOCATION,   // no_memory
};

/// Work queued on a stream, reported by aclrtSynchronizeStream[WithTimeout].
inline constexpr Codes kStreamWorkCodes{
    ACL_ERROR_RT_PARAM_INVALID,       // null_argument (cannot happen after planning)
    ACL_ERROR_RT_PARAM_INVALID,       // invalid_argument (ditto)
    ACL_ERROR_RT_PARAM_INVALID,       // count_mismatch: the ranks' counts disagree (docs/spec.md §2)
    ACL_ERROR_RT_TASK_TIMEOUT,        // timeout: a peer never arrived / stopped progressing
    ACL_ERROR_RT_COMM_OP_RETRY_FAIL,  // group_broken: the communicator must be recreated
    ACL_ERROR_RT_INTERNAL_ERROR,      // internal
    ACL_ERROR_RT_MEMORY_ALLOCATION,   // no_memory
};

/// aclnn calls (aclnnGroupedMatMulAlltoAllv*, the aclTensor API).
inline constexpr Codes kAclnnCodes{
    ACLNN_ERR_PARAM_NULLPTR,  // null_argument 161001
    ACLNN_ERR_PARAM_INVALID,  // invalid_argument 161002
    ACLNN_ERR_RUNTIME_ERROR,  // count_mismatch 361001
    ACLNN_ERR_RUNTIME_ERROR,  // timeout
    ACLNN_ERR_RUNTIME_ERROR,  // group_broken
    ACLNN_ERR_INNER,          // internal 561000
    ACLNN_ERR_INNER,          // no_memory
};

/// Hccl* calls.
inline constexpr Codes kHcclCodes{
    HCCL_E_PTR,       // null_argument
    HCCL_E_PARA,      // invalid_argument
    HCCL_E_PARA,      // count_mismatch
    HCCL_E_TIMEOUT,   // timeout
    HCCL_E_INTERNAL,  // group_broken
    HCCL_E_INTERNAL,  // internal
    HCCL_E_MEMORY,    // no_memory
};

}  // namespace gmmav::runtime

// What an aclTensor and an aclIntArray are: copies of the caller's shapes,
// strides and values (the caller may free its arrays right after creating
// them); a tensor's data pointer is only stored.
#pragma once

#include <cstdint>
#include <vector>

#include "aclnn/acl_meta.h"

struct aclTensor {
  std::vector<std::int64_t> view_dims;
  std::vector<std::int64_t> strides;  ///< in elements, one per view dim (computed when NULL was given)
  std::vector<std::int64_t> storage_dims;
  aclDataType dtype = ACL_DT_UNDEFINED;
  aclFormat format = ACL_FORMAT_UNDEFINED;
  std::int64_t offset = 0;  ///< first element of the view, in elements
  void* data = nullptr;
};

struct aclIntArray {
  std::vector<std::int64_t> values;
};

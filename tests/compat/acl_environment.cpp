// One aclInit / aclFinalize around the whole test program (the vendor
// runtime allows one initialisation at a time).
#include <gtest/gtest.h>

#include "acl/acl.h"

namespace {

class AclEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_EQ(aclInit(nullptr), ACL_SUCCESS); }
  void TearDown() override { EXPECT_EQ(aclFinalize(), ACL_SUCCESS); }
};

[[maybe_unused]] ::testing::Environment* const g_env = ::testing::AddGlobalTestEnvironment(new AclEnvironment);

}  // namespace

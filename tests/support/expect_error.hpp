// Asserts that a call fails with gmmav::Error of a given code and parameter,
// and that its message names the parameter and says what was expected.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "gmmav/gmmav.hpp"

namespace gmmav::testing {

inline void expect_error(const std::function<void()>& fn, Errc code, const std::string& param) {
  try {
    fn();
    ADD_FAILURE() << "expected an error naming '" << param << "'";
  } catch (const gmmav::Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_EQ(e.param(), param) << e.what();
    EXPECT_NE(std::string(e.what()).find(param), std::string::npos) << "message should name the parameter: " << e.what();
    EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << "message should say what was expected: " << e.what();
  }
}

}  // namespace gmmav::testing

// The message of the eplb::Error a call throws (which must be an invalid-argument error), or
// "no error": for tests that check a bad argument is named.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "error.hpp"

namespace eplb::test {

template <typename Call>
std::string error_message(Call&& call) {
  try {
    call();
  } catch (const eplb::Error& e) {
    EXPECT_EQ(e.code(), eplb::Errc::invalid_argument) << e.what();
    return e.what();
  }
  return "no error";
}

}  // namespace eplb::test

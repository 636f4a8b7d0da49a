// Shared assertions for the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>
#include <string_view>

#include "vmm/error.h"

namespace ksbox::testing {

// Succeeds when `f` throws ksbox::Error whose message contains `needle`.
template <typename F>
::testing::AssertionResult ThrowsErrorContaining(F&& f, std::string_view needle) {
  try {
    f();
  } catch (const ksbox::Error& e) {
    if (std::string_view(e.what()).find(needle) != std::string_view::npos)
      return ::testing::AssertionSuccess() << "message: " << e.what();
    return ::testing::AssertionFailure() << "ksbox::Error \"" << e.what() << "\" does not mention \"" << needle
                                         << "\"";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-ksbox exception: " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << "threw something that is not a std::exception";
  }
  return ::testing::AssertionFailure() << "did not throw (expected ksbox::Error mentioning \"" << needle
                                       << "\")";
}

}  // namespace ksbox::testing

// EXPECT that `stmt` throws ksbox::Error with `needle` in its message.
#define EXPECT_KSBOX_ERROR(stmt, needle) \
  EXPECT_TRUE(::ksbox::testing::ThrowsErrorContaining([&] { (void)(stmt); }, (needle)))

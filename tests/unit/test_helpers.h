// Shared assertions for the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
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

// The whole file, "" when it cannot be read.
inline std::string file_contents(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A new directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "ksbox-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ksbox::testing

// EXPECT that `stmt` throws ksbox::Error with `needle` in its message.
#define EXPECT_KSBOX_ERROR(stmt, needle) \
  EXPECT_TRUE(::ksbox::testing::ThrowsErrorContaining([&] { (void)(stmt); }, (needle)))

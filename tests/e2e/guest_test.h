// A gtest fixture for end-to-end tests that boot one test guest (the test
// initramfs, one vCPU) under ksbox-vmm and drive it with `ksbox exec`.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tests/e2e/sandbox.h"

namespace ksbox::test {

class GuestTest : public ::testing::Test {
 protected:
  static constexpr const char* kInitramfs = "initramfs-test.cpio.gz";

  // Needs /dev/kvm (ctest runs these through tests/nested/with-kvm) and the test image.
  void SetUp() override;
  // Starts the VMM with `opts` (initramfs and vCPUs set here) and waits until
  // the guest serves an exec.
  void boot(SandboxOptions opts);
  // Whatever the guest did, the VMM is still serving: a clean stop works.
  void TearDown() override;
  ProcessResult host(const std::string& script) { return sb_->host_sh(script); }

  std::unique_ptr<Sandbox> sb_;
};

}  // namespace ksbox::test

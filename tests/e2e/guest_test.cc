#include "tests/e2e/guest_test.h"

#include "tests/e2e/guest.h"

namespace ksbox::test {

void GuestTest::SetUp() { ASSERT_EQ(guest_test_blocker(kInitramfs), ""); }

void GuestTest::boot(SandboxOptions opts) {
  opts.initramfs = kInitramfs;
  // One vCPU: in the nested harness, heavy I/O from a 2-vCPU guest often
  // left a guest vCPU whose timer never fired (RCU stalls, runs of minutes).
  opts.vcpus = 1;
  sb_ = std::make_unique<Sandbox>(opts);
  auto r = sb_->exec({"true"});
  ASSERT_EQ(r.exit_code, 0) << "the guest never served an exec\n" << sb_->describe(r);
}

void GuestTest::TearDown() {
  if (!sb_ || !sb_->vmm().running()) return;
  const auto st = sb_->stop();
  EXPECT_EQ(st, 0) << "ksbox stop did not end the VM cleanly\n" << sb_->describe({});
}

}  // namespace ksbox::test

// Both AsyncIo engines give the same whole-or-error results.
#include "devices/io/async_io.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <numeric>

#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::io {
namespace {

class AsyncIoTest : public ::testing::TestWithParam<IoEngineKind> {
 protected:
  void SetUp() override {
    try {
      engine_ = make_async_io(GetParam(), 8, "test");
    } catch (const Error& e) {
      GTEST_SKIP() << "io_uring is not usable here: " << e.what();
    }
    char t[] = "/tmp/ksbox-aio-test-XXXXXX";
    fd_.reset(::mkstemp(t));
    ::unlink(t);
    ASSERT_TRUE(fd_);
  }
  // Submits, flushes and waits for exactly the ops given.
  std::vector<IoCompletion> run(std::initializer_list<IoOp> ops) {
    for (const auto& op : ops) EXPECT_TRUE(engine_->submit(op));
    engine_->flush();
    std::vector<IoCompletion> out;
    engine_->drain(out);
    EXPECT_EQ(engine_->in_flight(), 0u);
    return out;
  }
  std::unique_ptr<AsyncIo> engine_;
  UniqueFd fd_;
};

TEST_P(AsyncIoTest, WritesAndReadsWholeScatterLists) {
  // More vectors than one preadv/readv takes: the engine continues.
  std::vector<uint8_t> src(3000);
  std::iota(src.begin(), src.end(), 0);
  std::vector<iovec> iov;
  for (auto& b : src) iov.push_back({&b, 1});
  ASSERT_GT(iov.size(), size_t{IOV_MAX});
  auto done = run({{.kind = IoOp::Kind::kWrite, .fd = fd_.get(), .offset = 100, .dsync = true, .iov = iov, .tag = 7}});
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 7u);
  EXPECT_EQ(done[0].result, 3000);
  std::vector<uint8_t> dst(3000);
  const iovec one{dst.data(), dst.size()};
  done = run({{.kind = IoOp::Kind::kRead, .fd = fd_.get(), .offset = 100, .iov = {&one, 1}, .tag = 8},
              {.kind = IoOp::Kind::kDataSync, .fd = fd_.get(), .tag = 9}});
  ASSERT_EQ(done.size(), 2u);
  for (const auto& c : done) EXPECT_EQ(c.result, c.tag == 8 ? 3000 : 0) << c.tag;
  EXPECT_EQ(dst, src);
}

TEST_P(AsyncIoTest, ReadingPastTheEndIsAnErrorNotAShortRead) {
  ASSERT_EQ(::ftruncate(fd_.get(), 512), 0);
  std::vector<uint8_t> dst(1024);
  const iovec one{dst.data(), dst.size()};
  auto done = run({{.kind = IoOp::Kind::kRead, .fd = fd_.get(), .offset = 0, .iov = {&one, 1}}});
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, -EIO);
}

TEST_P(AsyncIoTest, ErrorsComeBackAsNegativeErrno) {
  std::vector<uint8_t> b(16);
  const iovec one{b.data(), b.size()};
  auto done = run({{.kind = IoOp::Kind::kWrite, .fd = 9999, .iov = {&one, 1}, .tag = 1},
                   {.kind = IoOp::Kind::kFallocate, .fd = fd_.get(), .offset = 0, .length = 0, .mode = 0, .tag = 2}});
  ASSERT_EQ(done.size(), 2u);
  for (const auto& c : done) EXPECT_EQ(c.result, c.tag == 1 ? -EBADF : -EINVAL) << c.tag;
}

TEST_P(AsyncIoTest, FallocatePunchesHoles) {
  std::vector<uint8_t> data(8192, 0x5a);
  ASSERT_EQ(::pwrite(fd_.get(), data.data(), data.size(), 0), 8192);
  auto done = run({{.kind = IoOp::Kind::kFallocate, .fd = fd_.get(), .offset = 0, .length = 4096,
                    .mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}});
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, 0);
  uint8_t b = 1;
  ASSERT_EQ(::pread(fd_.get(), &b, 1, 100), 1);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(::lseek(fd_.get(), 0, SEEK_END), 8192);
}

TEST_P(AsyncIoTest, RefusesMoreThanItsCapacity) {
  std::vector<uint8_t> b(8);
  const iovec one{b.data(), b.size()};
  for (int i = 0; i < 8; ++i)
    EXPECT_TRUE(engine_->submit({.kind = IoOp::Kind::kWrite, .fd = fd_.get(), .iov = {&one, 1}}));
  EXPECT_FALSE(engine_->submit({.kind = IoOp::Kind::kWrite, .fd = fd_.get(), .iov = {&one, 1}}));
  engine_->flush();
  std::vector<IoCompletion> out;
  engine_->drain(out);
  EXPECT_EQ(out.size(), 8u);
}

INSTANTIATE_TEST_SUITE_P(Engines, AsyncIoTest, ::testing::Values(IoEngineKind::kSync, IoEngineKind::kIoUring),
                         [](const auto& p) { return p.param == IoEngineKind::kSync ? "Sync" : "IoUring"; });

TEST(UringAsyncIo, CompletionsWakeItsEventFd) {
  std::unique_ptr<AsyncIo> engine;
  try {
    engine = make_async_io(IoEngineKind::kIoUring, 4, "test");
  } catch (const Error& e) {
    GTEST_SKIP() << "io_uring is not usable here: " << e.what();
  }
  ASSERT_GE(engine->event_fd(), 0);
  char t[] = "/tmp/ksbox-aio-test-XXXXXX";
  UniqueFd fd(::mkstemp(t));
  ::unlink(t);
  std::vector<uint8_t> b(4096, 1);
  const iovec one{b.data(), b.size()};
  ASSERT_TRUE(engine->submit({.kind = IoOp::Kind::kWrite, .fd = fd.get(), .iov = {&one, 1}, .tag = 3}));
  engine->flush();
  pollfd p{engine->event_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  engine->ack_event();
  std::vector<IoCompletion> out;
  for (int i = 0; i < 100 && out.empty(); ++i) engine->reap(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 3u);
  EXPECT_EQ(out[0].result, 4096);
  EXPECT_EQ(make_async_io(IoEngineKind::kSync, 4, "test")->event_fd(), -1);
}

TEST(AsyncIoFactory, AutoGivesAnEngineAndNamesIt) {
  std::string why;
  auto e = make_async_io(IoEngineKind::kAuto, 4, "test", &why);
  EXPECT_TRUE(e->name() == "io_uring" || !why.empty()) << e->name();
  EXPECT_EQ(make_async_io(IoEngineKind::kSync, 4, "test")->name(), "sync");
}

}  // namespace
}  // namespace ksbox::devices::io

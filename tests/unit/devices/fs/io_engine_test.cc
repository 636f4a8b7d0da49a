// The same assertions against every file data engine (sync, io_uring), and
// the engine factory and name parser.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "devices/fs/io_engine.h"
#include "devices/fs/io_engine_factory.h"
#include "devices/fs/io_uring_engine.h"
#include "vmm/error.h"
#include "vmm/unique_fd.h"

namespace ksbox::devices::fs {
namespace {

// A deleted temp file, open read-write.
struct TempFile {
  TempFile() {
    std::string path = ::testing::TempDir() + "ksbox_io_engine_XXXXXX";
    fd = UniqueFd(::mkstemp(path.data()));
    if (fd) read_only = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ::unlink(path.c_str());
  }
  UniqueFd fd, read_only;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

// Cuts `buf` into consecutive spans of the given sizes (the rest is dropped).
template <typename T>
std::vector<std::span<T>> cut(std::span<T> buf, const std::vector<size_t>& sizes) {
  std::vector<std::span<T>> out;
  size_t at = 0;
  for (size_t s : sizes) {
    out.push_back(buf.subspan(at, s));
    at += s;
  }
  return out;
}

std::vector<uint8_t> pread_all(int fd, size_t n, off_t off) {
  std::vector<uint8_t> v(n);
  const ssize_t r = ::pread(fd, v.data(), n, off);
  v.resize(r < 0 ? 0 : static_cast<size_t>(r));
  return v;
}

struct EngineParam {
  std::string name;  // the test name suffix
  std::function<std::unique_ptr<IoEngine>()> make;
};

class IoEngineTest : public ::testing::TestWithParam<EngineParam> {
 protected:
  void SetUp() override {
    try {
      engine = GetParam().make();
    } catch (const Error& e) {
      GTEST_SKIP() << "io_uring is not usable on this host, so its engine cases do not run: " << e.what();
    }
    ASSERT_TRUE(file.fd) << "mkstemp failed";
    ASSERT_TRUE(file.read_only);
  }
  void TearDown() override {
    // The io_uring cases must really have gone through the ring.
    if (auto* uring = dynamic_cast<IoUringEngine*>(engine.get())) {
      EXPECT_TRUE(uring->ring_usable());
    }
  }

  ssize_t write(uint64_t off, std::span<const uint8_t> data, const std::vector<size_t>& sizes) {
    const auto spans = cut(data, sizes);
    return engine->write(file.fd.get(), off, spans);
  }
  ssize_t read(uint64_t off, std::span<uint8_t> data, const std::vector<size_t>& sizes) {
    const auto spans = cut(data, sizes);
    return engine->read(file.fd.get(), off, spans);
  }

  std::unique_ptr<IoEngine> engine;
  TempFile file;
};

TEST_P(IoEngineTest, ScatteredRoundTripAtOffset) {
  const auto data = pattern(5000, 1);
  ASSERT_EQ(write(12345, data, {3, 0, 4097, 900}), 5000);
  EXPECT_EQ(pread_all(file.fd.get(), 5000, 12345), data);
  EXPECT_EQ(pread_all(file.fd.get(), 12345, 0), std::vector<uint8_t>(12345, 0));  // a hole before

  std::vector<uint8_t> back(5000, 0xee);
  ASSERT_EQ(read(12345, back, {1, 2499, 0, 2500}), 5000);
  EXPECT_EQ(back, data);

  std::vector<uint8_t> mid(10);
  ASSERT_EQ(read(12345 + 4000, mid, {4, 6}), 10);
  EXPECT_EQ(mid, std::vector<uint8_t>(data.begin() + 4000, data.begin() + 4010));
}

TEST_P(IoEngineTest, OverwriteInPlace) {
  ASSERT_EQ(write(0, pattern(100, 1), {100}), 100);
  const auto patch = pattern(10, 9);
  ASSERT_EQ(write(45, patch, {5, 5}), 10);
  auto want = pattern(100, 1);
  std::copy(patch.begin(), patch.end(), want.begin() + 45);
  EXPECT_EQ(pread_all(file.fd.get(), 200, 0), want);
}

TEST_P(IoEngineTest, ReadPastEofIsShortOrZero) {
  const auto data = pattern(100, 3);
  ASSERT_EQ(write(0, data, {100}), 100);
  std::vector<uint8_t> back(192, 0xee);
  ASSERT_EQ(read(50, back, {64, 64, 64}), 50);
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 50, data.begin() + 50));
  EXPECT_EQ(back[50], 0xee);  // nothing written past what was read
  EXPECT_EQ(read(100, back, {64, 64, 64}), 0);
  EXPECT_EQ(read(1 << 30, back, {192}), 0);
}

TEST_P(IoEngineTest, NoSpansMoveNothing) {
  EXPECT_EQ(engine->read(file.fd.get(), 0, {}), 0);
  EXPECT_EQ(engine->write(file.fd.get(), 0, {}), 0);
  EXPECT_EQ(::lseek(file.fd.get(), 0, SEEK_END), 0);
}

TEST_P(IoEngineTest, WrongAccessModeIsEbadf) {
  const auto data = pattern(16, 5);
  const std::span<const uint8_t> src[] = {data};
  EXPECT_EQ(engine->write(file.read_only.get(), 0, src), -EBADF);
  EXPECT_EQ(::lseek(file.fd.get(), 0, SEEK_END), 0);

  std::vector<uint8_t> back(16);
  const std::span<uint8_t> dst[] = {back};
  EXPECT_EQ(engine->read(-1, 0, dst), -EBADF);
  EXPECT_EQ(engine->write(-1, 0, src), -EBADF);
}

TEST_P(IoEngineTest, OffsetBeyondOffTIsEinval) {
  std::vector<uint8_t> back(16);
  const std::span<uint8_t> dst[] = {back};
  EXPECT_EQ(engine->read(file.fd.get(), uint64_t{1} << 63, dst), -EINVAL);
  EXPECT_EQ(engine->read(file.fd.get(), UINT64_MAX, dst), -EINVAL);
}

TEST_P(IoEngineTest, OneMiBMultiSpanByteForByte) {
  constexpr size_t kSize = 1 << 20;
  const auto data = pattern(kSize, 11);
  ASSERT_EQ(write(4096, data, std::vector<size_t>(256, 4096)), static_cast<ssize_t>(kSize));
  std::vector<uint8_t> back(kSize);
  ASSERT_EQ(read(4096, back, {1, 4095, 333333, 4096, kSize - 1 - 4095 - 333333 - 4096, 1}),
            static_cast<ssize_t>(kSize));
  EXPECT_TRUE(back == data);
  EXPECT_TRUE(pread_all(file.fd.get(), kSize, 4096) == data);
}

TEST_P(IoEngineTest, MoreIovecsThanIovMax) {
  const size_t spans = 2 * IOV_MAX + 7;
  const auto data = pattern(spans * 3, 13);
  ASSERT_EQ(write(10, data, std::vector<size_t>(spans, 3)), static_cast<ssize_t>(data.size()));
  EXPECT_EQ(pread_all(file.fd.get(), data.size(), 10), data);
  std::vector<uint8_t> back(data.size());
  ASSERT_EQ(read(10, back, std::vector<size_t>(spans, 3)), static_cast<ssize_t>(data.size()));
  EXPECT_EQ(back, data);
}

TEST_P(IoEngineTest, EofInsideAnIovMaxBatchStopsThere) {
  const auto data = pattern(1000, 17);
  ASSERT_EQ(write(0, data, {1000}), 1000);
  std::vector<uint8_t> back((2 * IOV_MAX + 1) * 2, 0xee);
  // EOF falls in the first batch: later batches must not be read at all.
  ASSERT_EQ(read(0, back, std::vector<size_t>(2 * IOV_MAX + 1, 2)), 1000);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin()));
  EXPECT_EQ(back[1000], 0xee);
  // EOF exactly at a batch boundary: the next batch reads 0, the total stands.
  ASSERT_EQ(write(1000, pattern(IOV_MAX * 2 - 1000, 19), {IOV_MAX * 2 - 1000}), IOV_MAX * 2 - 1000);
  EXPECT_EQ(read(0, back, std::vector<size_t>(2 * IOV_MAX + 1, 2)), IOV_MAX * 2);
}

TEST_P(IoEngineTest, NonBlockingFileStillTransfersEverything) {
  ASSERT_EQ(::fcntl(file.fd.get(), F_SETFL, O_NONBLOCK), 0);
  const auto data = pattern(256 << 10, 23);
  ASSERT_EQ(write(0, data, std::vector<size_t>(64, 4096)), static_cast<ssize_t>(data.size()));
  std::vector<uint8_t> back(data.size());
  ASSERT_EQ(read(0, back, std::vector<size_t>(64, 4096)), static_cast<ssize_t>(data.size()));
  EXPECT_TRUE(back == data);
}

INSTANTIATE_TEST_SUITE_P(Engines, IoEngineTest,
                         ::testing::Values(EngineParam{"Sync", [] { return std::make_unique<SyncIoEngine>(); }},
                                           // Every batch through the ring, whatever its size.
                                           EngineParam{"IoUring", [] { return std::make_unique<IoUringEngine>(0, 0); }},
                                           // Writes and small reads inline, large reads through the ring.
                                           EngineParam{"IoUringSplit", [] { return std::make_unique<IoUringEngine>(); }}),
                         [](const ::testing::TestParamInfo<EngineParam>& p) { return p.param.name; });

TEST(IoUringEngineSplit, WritesAndSmallReadsInlineLargeReadsThroughTheRing) {
  std::unique_ptr<IoUringEngine> engine;
  try {
    engine = std::make_unique<IoUringEngine>();
  } catch (const Error& e) {
    GTEST_SKIP() << "io_uring is not usable on this host: " << e.what();
  }
  TempFile f;
  constexpr size_t kMin = IoUringEngine::kRingMinRead;
  const auto data = pattern(kMin + 4096, 5);
  const std::span<const uint8_t> src[] = {data};
  ASSERT_EQ(engine->write(f.fd.get(), 0, src), static_cast<ssize_t>(data.size()));
  EXPECT_EQ(engine->inline_requests(), 1u);  // a large write too
  EXPECT_EQ(engine->ring_requests(), 0u);
  std::vector<uint8_t> back(data.size());
  const std::span<uint8_t> small[] = {std::span(back).first(kMin - 1)};
  ASSERT_EQ(engine->read(f.fd.get(), 0, small), static_cast<ssize_t>(kMin - 1));
  EXPECT_EQ(engine->inline_requests(), 2u);
  EXPECT_EQ(engine->ring_requests(), 0u);
  // A batch is judged by its total: two halves and a page make one large read.
  const std::span<uint8_t> large[] = {std::span(back).first(kMin / 2), std::span(back).subspan(kMin / 2)};
  ASSERT_EQ(engine->read(f.fd.get(), 0, large), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(engine->ring_requests(), 1u);
  EXPECT_EQ(back, data);
}

TEST(IoEngineFactory, AutoGivesAWorkingEngine) {
  std::string why = "stale";
  auto engine = make_io_engine(IoEngineKind::kAuto, &why);
  ASSERT_NE(engine, nullptr);
  if (dynamic_cast<IoUringEngine*>(engine.get())) {
    EXPECT_EQ(why, "");
  } else {
    EXPECT_NE(dynamic_cast<SyncIoEngine*>(engine.get()), nullptr);
    EXPECT_NE(why, "") << "a fallback must say why";
    std::cerr << "note: auto fell back to sync: " << why << "\n";
  }
  TempFile f;
  const auto data = pattern(300, 29);
  const std::span<const uint8_t> src[] = {std::span(data).first(100), std::span(data).subspan(100)};
  ASSERT_EQ(engine->write(f.fd.get(), 7, src), 300);
  std::vector<uint8_t> back(300);
  const std::span<uint8_t> dst[] = {back};
  ASSERT_EQ(engine->read(f.fd.get(), 7, dst), 300);
  EXPECT_EQ(back, data);
}

TEST(IoEngineFactory, ExplicitKinds) {
  std::string why = "stale";
  EXPECT_NE(dynamic_cast<SyncIoEngine*>(make_io_engine(IoEngineKind::kSync, &why).get()), nullptr);
  EXPECT_EQ(why, "");
  try {
    auto engine = make_io_engine(IoEngineKind::kIoUring);
    EXPECT_NE(dynamic_cast<IoUringEngine*>(engine.get()), nullptr);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"sync\""), std::string::npos) << e.what();
  }
}

// Runs `check` in a child where syscall `nr` fails with EPERM (as under a
// container's seccomp profile); true if it returned true.
bool with_syscall_blocked(long nr, const std::function<bool()>& check) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
      ::_exit(2);
    ::_exit(check() ? 0 : 1);
  }
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool falls_back_with_reason(const char* reason) {
  std::string why;
  auto engine = make_io_engine(IoEngineKind::kAuto, &why);
  TempFile f;
  const std::vector<uint8_t> data{1, 2, 3};
  const std::span<const uint8_t> src[] = {data};
  bool refused = false;
  try {
    make_io_engine(IoEngineKind::kIoUring);
  } catch (const Error& e) {
    refused = std::string(e.what()).find(reason) != std::string::npos;
  }
  return refused && dynamic_cast<SyncIoEngine*>(engine.get()) && why.find(reason) != std::string::npos &&
         engine->write(f.fd.get(), 0, src) == 3;
}

TEST(IoEngineFactory, AutoFallsBackWhenSeccompBlocksSetup) {
  EXPECT_TRUE(with_syscall_blocked(__NR_io_uring_setup, [] { return falls_back_with_reason("seccomp"); }));
}

TEST(IoEngineFactory, AutoFallsBackWhenSeccompBlocksEnter) {
  // The ring is created, but the probe NOP cannot be submitted.
  EXPECT_TRUE(with_syscall_blocked(__NR_io_uring_enter, [] { return falls_back_with_reason("seccomp"); }));
}

TEST(IoEngineFactory, ParsesTheThreeNames) {
  EXPECT_EQ(parse_io_engine_kind("auto"), IoEngineKind::kAuto);
  EXPECT_EQ(parse_io_engine_kind("io_uring"), IoEngineKind::kIoUring);
  EXPECT_EQ(parse_io_engine_kind("sync"), IoEngineKind::kSync);
  for (auto k : {IoEngineKind::kAuto, IoEngineKind::kIoUring, IoEngineKind::kSync})
    EXPECT_EQ(parse_io_engine_kind(io_engine_kind_name(k)), k);
}

TEST(IoEngineFactory, RejectsJunkNamingTheValidValues) {
  for (const char* junk : {"", "uring", "io-uring", "SYNC", "auto ", "sync\n", "iouring"}) {
    try {
      parse_io_engine_kind(junk);
      ADD_FAILURE() << "accepted \"" << junk << "\"";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("auto, io_uring, sync"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ksbox::devices::fs

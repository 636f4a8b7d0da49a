#include "protocol/exec_protocol.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ksbox::protocol {
namespace {

using Bytes = std::vector<uint8_t>;

// Little-endian payload builder for hand-made (often malformed) payloads.
struct P {
  Bytes b;
  P& u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  P& u16(uint16_t v) {
    detail::put_u16(b, v);
    return *this;
  }
  P& u32(uint32_t v) {
    detail::put_u32(b, v);
    return *this;
  }
  P& str(std::string_view s) {
    detail::put_string(b, s);
    return *this;
  }
  P& list(const std::vector<std::string>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) str(s);
    return *this;
  }
  P& raw(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
};

// An ExecRequest payload with the given argv/env/cwd and default trailer.
Bytes exec_payload(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                   std::string_view cwd = "", uint8_t flags = 0) {
  P p;
  p.list(argv).list(env).str(cwd).u32(kDefaultId).u32(kDefaultId).u8(flags).u16(24).u16(80);
  return p.b;
}

Bytes header(uint32_t magic, uint16_t version, uint16_t type, uint32_t len) {
  Bytes b;
  encode_header(b, {magic, version, type, len});
  return b;
}

ExecRequest sample_exec() {
  ExecRequest r;
  r.argv = {"bash", "-lc", "echo hi; exit 3"};
  r.env = {"TERM=xterm-256color", "EMPTY=", "A=b=c"};
  r.cwd = "/workspace/sub dir";
  r.uid = 1000;
  r.gid = 1000;
  r.flags = kExecFlagPty | kExecFlagStdinClosed;
  r.rows = 50;
  r.cols = 132;
  return r;
}

template <typename M>
void expect_round_trip(const M& m) {
  Bytes wire;
  ASSERT_EQ(encode(wire, m), ProtoError::kOk);
  FrameDecoder d;
  d.feed(wire);
  auto r = d.next();
  ASSERT_EQ(r.status, FrameDecoder::Status::kFrame);
  EXPECT_EQ(r.frame.type, M::kType);
  EXPECT_EQ(r.frame.payload.size() + kHeaderSize, wire.size());
  M back{};
  ASSERT_EQ(decode(r.frame, back), ProtoError::kOk);
  EXPECT_EQ(back, m);
  EXPECT_EQ(d.next().status, FrameDecoder::Status::kNeedMore);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(ExecProtocol, HeaderLayout) {
  Bytes wire;
  ASSERT_EQ(encode(wire, Resize{.rows = 0x0102, .cols = 0x0304}), ProtoError::kOk);
  const Bytes want = {'K', 'S', 'B', 'X', 1, 0, 9, 0, 4, 0, 0, 0, 0x02, 0x01, 0x04, 0x03};
  EXPECT_EQ(wire, want);
}

TEST(ExecProtocol, RoundTripEveryMessage) {
  expect_round_trip(Hello{});
  expect_round_trip(Hello{.min_version = 1, .max_version = 7});
  expect_round_trip(sample_exec());
  ExecRequest minimal;
  minimal.argv = {"true"};
  expect_round_trip(minimal);
  expect_round_trip(Started{.pid = 4242});
  expect_round_trip(StdinData{.data = {'a', 0, 'b', 0xff}});
  expect_round_trip(StdinData{});
  expect_round_trip(StdinEof{});
  expect_round_trip(StdoutData{.data = Bytes(5000, 'x')});
  expect_round_trip(StderrData{.data = {'e', 'r', 'r', '\n'}});
  expect_round_trip(Signal{.signo = 2});
  expect_round_trip(Signal{.signo = 64});
  expect_round_trip(Resize{.rows = 40, .cols = 100});
  expect_round_trip(Exited{.kind = Exited::kExitedNormally, .value = 3});
  expect_round_trip(Exited{.kind = Exited::kKilledBySignal, .value = 9});
  expect_round_trip(ErrorMsg{.code = 2, .message = "exec failed: No such file or directory"});
  expect_round_trip(Shutdown{});
}

TEST(ExecProtocol, DecodeRefusesWrongType) {
  Bytes wire;
  ASSERT_EQ(encode(wire, Started{.pid = 1}), ProtoError::kOk);
  FrameDecoder d;
  d.feed(wire);
  auto r = d.next();
  ASSERT_EQ(r.status, FrameDecoder::Status::kFrame);
  Exited e;
  EXPECT_EQ(decode(r.frame, e), ProtoError::kWrongType);
}

// A conversation of every message type, decoded in one chunk and one byte at
// a time, gives the same frames.
TEST(ExecProtocol, ChunkingDoesNotMatter) {
  Bytes wire;
  ASSERT_EQ(encode(wire, Hello{}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, sample_exec()), ProtoError::kOk);
  ASSERT_EQ(encode(wire, Started{.pid = 7}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, StdinData{.data = {1, 2, 3}}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, StdinEof{}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, StdoutData{.data = Bytes(3000, 'o')}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, StderrData{}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, Signal{.signo = 15}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, Resize{.rows = 1, .cols = 2}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, Exited{.kind = 1, .value = 15}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, ErrorMsg{.code = kErrInternal, .message = "boom"}), ProtoError::kOk);
  ASSERT_EQ(encode(wire, Shutdown{}), ProtoError::kOk);

  auto drain = [](FrameDecoder& d, std::vector<Frame>& out) {
    for (;;) {
      auto r = d.next();
      if (r.status == FrameDecoder::Status::kNeedMore) return;
      ASSERT_EQ(r.status, FrameDecoder::Status::kFrame) << to_string(r.error);
      out.push_back(std::move(r.frame));
    }
  };
  std::vector<Frame> big, small, odd;
  FrameDecoder d1, d2, d3;
  d1.feed(wire);
  drain(d1, big);
  for (uint8_t b : wire) {
    d2.feed(std::span<const uint8_t>(&b, 1));
    drain(d2, small);
  }
  for (size_t i = 0, n = 1; i < wire.size(); i += n, n = n % 17 + 1) {
    d3.feed(std::span<const uint8_t>(wire).subspan(i, std::min(n, wire.size() - i)));
    drain(d3, odd);
  }
  ASSERT_EQ(big.size(), 12u);
  EXPECT_EQ(big, small);
  EXPECT_EQ(big, odd);
  EXPECT_EQ(d2.buffered(), 0u);
  for (size_t i = 0; i < big.size(); ++i) EXPECT_EQ(static_cast<size_t>(big[i].type), i + 1);
}

TEST(ExecProtocol, PartialFrameNeedsMore) {
  Bytes wire;
  ASSERT_EQ(encode(wire, Started{.pid = 9}), ProtoError::kOk);
  FrameDecoder d;
  d.feed(std::span<const uint8_t>(wire).first(wire.size() - 1));
  EXPECT_EQ(d.next().status, FrameDecoder::Status::kNeedMore);
  EXPECT_EQ(d.buffered(), wire.size() - 1);  // end of stream here = truncated
  d.feed(std::span<const uint8_t>(wire).last(1));
  EXPECT_EQ(d.next().status, FrameDecoder::Status::kFrame);
}

// --- framing refusals -----------------------------------------------------------------

void expect_frame_error(const Bytes& wire, ProtoError want) {
  FrameDecoder d;
  d.feed(wire);
  auto r = d.next();
  EXPECT_EQ(r.status, FrameDecoder::Status::kError);
  EXPECT_EQ(r.error, want) << to_string(r.error);
  // Sticky: more (valid) input changes nothing.
  Bytes good;
  ASSERT_EQ(encode(good, Shutdown{}), ProtoError::kOk);
  d.feed(good);
  auto again = d.next();
  EXPECT_EQ(again.status, FrameDecoder::Status::kError);
  EXPECT_EQ(again.error, want);
  EXPECT_TRUE(d.failed());
  EXPECT_EQ(d.error(), want);
}

TEST(ExecProtocol, FrameRefusals) {
  expect_frame_error(header(0x5842534c, 1, 5, 0), ProtoError::kBadMagic);
  expect_frame_error(header(kMagic, 0, 5, 0), ProtoError::kUnsupportedVersion);
  expect_frame_error(header(kMagic, 2, 5, 0), ProtoError::kUnsupportedVersion);
  expect_frame_error(header(kMagic, 1, 0, 0), ProtoError::kUnknownType);
  expect_frame_error(header(kMagic, 1, kMaxMsgType + 1, 0), ProtoError::kUnknownType);
  expect_frame_error(header(kMagic, 1, 0xffff, 0), ProtoError::kUnknownType);
  expect_frame_error(header(kMagic, 1, 6, kMaxPayload + 1), ProtoError::kOversized);
  expect_frame_error(header(kMagic, 1, 6, 0xffffffff), ProtoError::kOversized);
}

TEST(ExecProtocol, ErrorAfterGoodFramesIsReportedInOrder) {
  Bytes wire;
  ASSERT_EQ(encode(wire, StdinEof{}), ProtoError::kOk);
  const Bytes bad = header(kMagic, 1, 77, 0);
  wire.insert(wire.end(), bad.begin(), bad.end());
  FrameDecoder d;
  d.feed(wire);
  EXPECT_EQ(d.next().status, FrameDecoder::Status::kFrame);
  EXPECT_EQ(d.next().error, ProtoError::kUnknownType);
}

TEST(ExecProtocol, OversizedRefusedBeforePayloadArrives) {
  FrameDecoder d;
  const Bytes h = header(kMagic, 1, 6, kMaxPayload + 1);
  for (size_t i = 0; i + 1 < h.size(); ++i) {
    d.feed(std::span<const uint8_t>(&h[i], 1));
    EXPECT_EQ(d.next().status, FrameDecoder::Status::kNeedMore);
  }
  d.feed(std::span<const uint8_t>(&h.back(), 1));
  EXPECT_EQ(d.next().error, ProtoError::kOversized);
}

TEST(ExecProtocol, PayloadExactlyAtMax) {
  StdoutData m{.data = Bytes(kMaxPayload, 0xab)};
  expect_round_trip(m);
  m.data.push_back(0);
  Bytes wire;
  EXPECT_EQ(encode(wire, m), ProtoError::kOversized);
  EXPECT_TRUE(wire.empty());
  // encode_data splits instead.
  encode_data<MsgType::kStdoutData>(wire, m.data);
  EXPECT_EQ(wire.size(), 2 * kHeaderSize + kMaxPayload + 1);
}

// --- payload refusals ------------------------------------------------------------------

TEST(ExecProtocol, TruncatedAndTrailing) {
  Hello h;
  EXPECT_EQ(decode_payload(P{}.u16(1).b, h), ProtoError::kTruncated);
  EXPECT_EQ(decode_payload(P{}.u16(1).u16(1).u8(0).b, h), ProtoError::kTrailingBytes);
  Started s;
  EXPECT_EQ(decode_payload(P{}.u16(1).b, s), ProtoError::kTruncated);
  EXPECT_EQ(decode_payload(P{}.u32(1).u8(0).b, s), ProtoError::kTrailingBytes);
  Signal sig;
  EXPECT_EQ(decode_payload(P{}.u8(9).b, sig), ProtoError::kTruncated);
  Resize rz;
  EXPECT_EQ(decode_payload(P{}.u16(1).u8(2).b, rz), ProtoError::kTruncated);
  EXPECT_EQ(decode_payload(P{}.u16(1).u16(2).u8(0).b, rz), ProtoError::kTrailingBytes);
  Exited ex;
  EXPECT_EQ(decode_payload(P{}.u8(0).u16(0).b, ex), ProtoError::kTruncated);
  EXPECT_EQ(decode_payload(P{}.u8(0).u32(0).u8(0).b, ex), ProtoError::kTrailingBytes);
  ErrorMsg em;
  EXPECT_EQ(decode_payload(P{}.u32(2).u32(10).raw("short").b, em), ProtoError::kTruncated);
  EXPECT_EQ(decode_payload(P{}.u32(2).str("x").u8(0).b, em), ProtoError::kTrailingBytes);
  StdinEof eof;
  EXPECT_EQ(decode_payload(P{}.u8(0).b, eof), ProtoError::kTrailingBytes);
  Shutdown sd;
  EXPECT_EQ(decode_payload(P{}.u8(0).b, sd), ProtoError::kTrailingBytes);

  ExecRequest r;
  const Bytes good = exec_payload({"ls", "-l"}, {"A=1"}, "/tmp");
  ASSERT_EQ(decode_payload(good, r), ProtoError::kOk);
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_EQ(decode_payload(std::span<const uint8_t>(good).first(n), r), ProtoError::kTruncated) << n;
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(decode_payload(longer, r), ProtoError::kTrailingBytes);
}

TEST(ExecProtocol, ExecRequestRefusals) {
  ExecRequest r;
  EXPECT_EQ(decode_payload(exec_payload({}), r), ProtoError::kEmptyArgv);
  EXPECT_EQ(decode_payload(exec_payload({std::string("a\0b", 3)}), r), ProtoError::kEmbeddedNul);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {std::string("A=\0", 3)}), r), ProtoError::kEmbeddedNul);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {}, std::string("/tmp\0x", 6)), r), ProtoError::kEmbeddedNul);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {"NOEQUALS"}), r), ProtoError::kBadEnv);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {"=value"}), r), ProtoError::kBadEnv);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {}, "", 0x04), r), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {}, "", 0x80), r), ProtoError::kBadValue);
  // A huge count or length is refused by its limit before the bytes are looked for.
  EXPECT_EQ(decode_payload(P{}.u32(0xffffffff).b, r), ProtoError::kTooMany);
  EXPECT_EQ(decode_payload(P{}.u32(1).u32(0xffffffff).b, r), ProtoError::kTooLong);
  EXPECT_EQ(decode_payload(P{}.list({"sh"}).u32(0xffffffff).b, r), ProtoError::kTooMany);
  EXPECT_EQ(decode_payload(P{}.list({"sh"}).list({}).u32(0xffffffff).b, r), ProtoError::kTooLong);

  // The encoder refuses the same things and appends nothing.
  Bytes wire;
  ExecRequest bad = sample_exec();
  bad.argv.clear();
  EXPECT_EQ(encode(wire, bad), ProtoError::kEmptyArgv);
  bad = sample_exec();
  bad.env.push_back("NOEQ");
  EXPECT_EQ(encode(wire, bad), ProtoError::kBadEnv);
  bad = sample_exec();
  bad.cwd.push_back('\0');
  EXPECT_EQ(encode(wire, bad), ProtoError::kEmbeddedNul);
  bad = sample_exec();
  bad.flags = 0x10;
  EXPECT_EQ(encode(wire, bad), ProtoError::kBadValue);
  EXPECT_TRUE(wire.empty());
}

TEST(ExecProtocol, ExecRequestArgcLimit) {
  ExecRequest r;
  std::vector<std::string> argv(kMaxArgc, "a");
  ASSERT_EQ(decode_payload(exec_payload(argv), r), ProtoError::kOk);
  EXPECT_EQ(r.argv.size(), kMaxArgc);
  argv.push_back("a");
  EXPECT_EQ(decode_payload(exec_payload(argv), r), ProtoError::kTooMany);
  ExecRequest m;
  m.argv = argv;
  Bytes wire;
  EXPECT_EQ(encode(wire, m), ProtoError::kTooMany);
}

TEST(ExecProtocol, ExecRequestArgLengthLimit) {
  ExecRequest r;
  std::string arg(kMaxArgLength, 'x');
  ASSERT_EQ(decode_payload(exec_payload({arg}), r), ProtoError::kOk);
  ASSERT_EQ(decode_payload(exec_payload({"sh"}, {"A=" + std::string(kMaxArgLength - 2, 'v')}), r), ProtoError::kOk);
  EXPECT_EQ(decode_payload(exec_payload({arg + "x"}), r), ProtoError::kTooLong);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {"A=" + std::string(kMaxArgLength - 1, 'v')}), r),
            ProtoError::kTooLong);
  ExecRequest m;
  m.argv = {arg};
  expect_round_trip(m);
  m.argv = {arg + "x"};
  Bytes wire;
  EXPECT_EQ(encode(wire, m), ProtoError::kTooLong);
}

TEST(ExecProtocol, ExecRequestArgvTotalLimit) {
  // 16 entries of 64 KiB = exactly 1 MiB of argv: the payload decoder accepts
  // it, but with the length prefixes it no longer fits in one frame.
  ExecRequest r;
  std::vector<std::string> argv(kMaxArgvTotal / kMaxArgLength, std::string(kMaxArgLength, 'x'));
  ASSERT_EQ(decode_payload(exec_payload(argv), r), ProtoError::kOk);
  ExecRequest m;
  m.argv = argv;
  Bytes wire;
  EXPECT_EQ(encode(wire, m), ProtoError::kOversized);
  EXPECT_TRUE(wire.empty());
  argv.push_back("y");
  EXPECT_EQ(decode_payload(exec_payload(argv), r), ProtoError::kTotalTooLarge);
  m.argv = argv;
  EXPECT_EQ(encode(wire, m), ProtoError::kTotalTooLarge);
}

TEST(ExecProtocol, ExecRequestEnvLimits) {
  ExecRequest r;
  std::vector<std::string> env(kMaxEnvCount, "A=");
  ASSERT_EQ(decode_payload(exec_payload({"sh"}, env), r), ProtoError::kOk);
  env.push_back("B=");
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, env), r), ProtoError::kTooMany);
  std::vector<std::string> big(kMaxEnvTotal / kMaxArgLength, "A=" + std::string(kMaxArgLength - 2, 'v'));
  ASSERT_EQ(decode_payload(exec_payload({"sh"}, big), r), ProtoError::kOk);
  big.push_back("B=");
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, big), r), ProtoError::kTotalTooLarge);
}

TEST(ExecProtocol, ExecRequestCwdLimit) {
  ExecRequest r;
  const std::string cwd(kMaxCwdLength, 'd');
  ASSERT_EQ(decode_payload(exec_payload({"sh"}, {}, cwd), r), ProtoError::kOk);
  EXPECT_EQ(r.cwd, cwd);
  EXPECT_EQ(decode_payload(exec_payload({"sh"}, {}, cwd + "d"), r), ProtoError::kTooLong);
  ASSERT_EQ(decode_payload(exec_payload({"sh"}, {}, ""), r), ProtoError::kOk);
  EXPECT_TRUE(r.cwd.empty());
}

TEST(ExecProtocol, ErrorMessageLimit) {
  ErrorMsg m;
  const std::string msg(kMaxErrorMessage, 'm');
  ASSERT_EQ(decode_payload(P{}.u32(2).str(msg).b, m), ProtoError::kOk);
  EXPECT_EQ(decode_payload(P{}.u32(2).str(msg + "m").b, m), ProtoError::kTooLong);
  expect_round_trip(ErrorMsg{.code = 1, .message = msg});
  Bytes wire;
  EXPECT_EQ(encode(wire, ErrorMsg{.code = 1, .message = msg + "m"}), ProtoError::kTooLong);
}

TEST(ExecProtocol, SignalRange) {
  Signal s;
  EXPECT_EQ(decode_payload(P{}.u32(1).b, s), ProtoError::kOk);
  EXPECT_EQ(decode_payload(P{}.u32(64).b, s), ProtoError::kOk);
  EXPECT_EQ(decode_payload(P{}.u32(0).b, s), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u32(65).b, s), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u32(0xffffffff).b, s), ProtoError::kBadValue);  // -1
  Bytes wire;
  EXPECT_EQ(encode(wire, Signal{.signo = 65}), ProtoError::kBadValue);
}

TEST(ExecProtocol, StartedPid) {
  Started s;
  EXPECT_EQ(decode_payload(P{}.u32(0).b, s), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u32(0xffffffff).b, s), ProtoError::kOk);
}

TEST(ExecProtocol, ExitedRangesAndShellStatus) {
  Exited e;
  EXPECT_EQ(decode_payload(P{}.u8(0).u32(0).b, e), ProtoError::kOk);
  EXPECT_EQ(shell_status(e), 0);
  EXPECT_EQ(decode_payload(P{}.u8(0).u32(255).b, e), ProtoError::kOk);
  EXPECT_EQ(shell_status(e), 255);
  EXPECT_EQ(decode_payload(P{}.u8(0).u32(256).b, e), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u8(0).u32(0xffffffff).b, e), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u8(1).u32(9).b, e), ProtoError::kOk);
  EXPECT_EQ(shell_status(e), 137);
  EXPECT_EQ(decode_payload(P{}.u8(1).u32(64).b, e), ProtoError::kOk);
  EXPECT_EQ(shell_status(e), 192);
  EXPECT_EQ(decode_payload(P{}.u8(1).u32(0).b, e), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u8(1).u32(65).b, e), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u8(2).u32(0).b, e), ProtoError::kBadValue);
  EXPECT_EQ(shell_status(Exited{.kind = Exited::kExitedNormally, .value = 3}), 3);
  EXPECT_EQ(shell_status(Exited{.kind = Exited::kKilledBySignal, .value = 2}), 130);
  EXPECT_EQ(shell_status(Exited{.kind = Exited::kKilledBySignal, .value = 15}), 143);
}

TEST(ExecProtocol, HelloAndNegotiation) {
  Hello h;
  EXPECT_EQ(decode_payload(P{}.u16(0).u16(1).b, h), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u16(3).u16(2).b, h), ProtoError::kBadValue);
  EXPECT_EQ(decode_payload(P{}.u16(2).u16(2).b, h), ProtoError::kOk);

  const Hello ours{};
  EXPECT_EQ(negotiate(ours, ours), std::optional<uint16_t>(kMaxProtocolVersion));
  EXPECT_EQ(negotiate(Hello{1, 3}, Hello{2, 5}), std::optional<uint16_t>(3));
  EXPECT_EQ(negotiate(Hello{2, 5}, Hello{1, 3}), std::optional<uint16_t>(3));
  EXPECT_EQ(negotiate(Hello{1, 5}, Hello{2, 2}), std::optional<uint16_t>(2));
  EXPECT_EQ(negotiate(Hello{1, 2}, Hello{2, 4}), std::optional<uint16_t>(2));  // touching
  EXPECT_EQ(negotiate(Hello{1, 2}, Hello{3, 4}), std::nullopt);
  EXPECT_EQ(negotiate(Hello{3, 4}, Hello{1, 2}), std::nullopt);
}

TEST(ExecProtocol, ErrorStrings) {
  for (int i = 0; i <= static_cast<int>(ProtoError::kBadValue); ++i)
    EXPECT_STRNE(to_string(static_cast<ProtoError>(i)), "unknown protocol error") << i;
}

}  // namespace
}  // namespace ksbox::protocol

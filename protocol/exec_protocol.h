// The ksbox exec wire protocol: what the host CLI (`ksbox exec` / `attach`)
// and `ksbox-agent` in the guest say to each other over one vsock stream
// connection per exec. This header is the one definition both sides include;
// it depends on the C++ standard library only, so the static guest agent can
// use it as-is.
//
// Framing: every message is a 12-byte little-endian header
//   u32 magic 'KSBX' (0x5842534b) | u16 version (kFrameVersion) | u16 type |
//   u32 payload_length (<= kMaxPayload)
// followed by payload_length bytes. Integers are little-endian; a string is
// u32 length + bytes; a string list is u32 count + strings. Data messages
// (StdinData, StdoutData, StderrData) carry the raw bytes as the whole payload.
//
// Conversation (both sides send Hello first; the CLI then sends ExecRequest):
//   CLI   -> agent : Hello, ExecRequest, StdinData*, StdinEof, Signal, Resize,
//                    Shutdown
//   agent -> CLI   : Hello, Started | Error, StdoutData*, StderrData*, Exited
//
// The peer is untrusted in both directions (the guest is assumed hostile):
// every decoder refuses anything malformed, and any refusal (FrameDecoder
// error or payload decode error) means the connection must be dropped.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ksbox::protocol {

// --- constants -------------------------------------------------------------------

inline constexpr uint32_t kMagic = 0x5842534b;  // "KSBX" as little-endian bytes
inline constexpr uint16_t kFrameVersion = 1;    // header.version; anything else is refused
inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxPayload = size_t{1} << 20;  // 1 MiB

// Protocol versions this build speaks (negotiated with Hello).
inline constexpr uint16_t kMinProtocolVersion = 1;
inline constexpr uint16_t kMaxProtocolVersion = 1;

inline constexpr size_t kMaxArgc = 4096;                   // argv entries: 1..kMaxArgc
inline constexpr size_t kMaxArgLength = size_t{64} << 10;  // one argv/env entry
inline constexpr size_t kMaxArgvTotal = size_t{1} << 20;   // sum of argv entry lengths
inline constexpr size_t kMaxEnvCount = 4096;
inline constexpr size_t kMaxEnvTotal = size_t{1} << 20;  // sum of env entry lengths
inline constexpr size_t kMaxCwdLength = 4096;             // PATH_MAX
inline constexpr size_t kMaxErrorMessage = size_t{4} << 10;
inline constexpr int32_t kMaxSignal = 64;  // Linux _NSIG - 1

inline constexpr uint32_t kDefaultId = 0xffffffff;  // uid/gid: the agent's default user
inline constexpr uint8_t kExecFlagPty = 1u << 0;
inline constexpr uint8_t kExecFlagStdinClosed = 1u << 1;
inline constexpr uint8_t kExecFlagsKnown = kExecFlagPty | kExecFlagStdinClosed;

enum class MsgType : uint16_t {
  kHello = 1,
  kExecRequest = 2,
  kStarted = 3,
  kStdinData = 4,
  kStdinEof = 5,
  kStdoutData = 6,
  kStderrData = 7,
  kSignal = 8,
  kResize = 9,
  kExited = 10,
  kError = 11,
  kShutdown = 12,
};
inline constexpr uint16_t kMaxMsgType = 12;

constexpr bool is_known_type(uint16_t t) { return t >= 1 && t <= kMaxMsgType; }

// Why a frame or payload was refused. Every value other than kOk means: drop
// the connection.
enum class ProtoError : uint8_t {
  kOk = 0,
  // framing (FrameDecoder, encoders)
  kBadMagic,
  kUnsupportedVersion,
  kUnknownType,
  kOversized,  // payload_length > kMaxPayload
  // payloads (decode, encode)
  kWrongType,     // decode() called on a frame of another type
  kTruncated,     // payload ends inside a field
  kTrailingBytes, // payload continues after the last field
  kEmptyArgv,     // ExecRequest with no argv entries
  kTooMany,       // a list count beyond its limit
  kTooLong,       // one string beyond its limit
  kTotalTooLarge, // sum of argv or env entry lengths beyond its limit
  kEmbeddedNul,   // NUL in an argv/env/cwd string
  kBadEnv,        // env entry without '=' or with an empty name
  kBadValue,      // an integer field out of range (flags, signo, exit kind, ...)
};

constexpr const char* to_string(ProtoError e) {
  switch (e) {
    case ProtoError::kOk: return "ok";
    case ProtoError::kBadMagic: return "bad magic";
    case ProtoError::kUnsupportedVersion: return "unsupported frame version";
    case ProtoError::kUnknownType: return "unknown message type";
    case ProtoError::kOversized: return "payload too large";
    case ProtoError::kWrongType: return "wrong message type";
    case ProtoError::kTruncated: return "truncated payload";
    case ProtoError::kTrailingBytes: return "trailing bytes after payload";
    case ProtoError::kEmptyArgv: return "empty argv";
    case ProtoError::kTooMany: return "too many list entries";
    case ProtoError::kTooLong: return "string too long";
    case ProtoError::kTotalTooLarge: return "list total too large";
    case ProtoError::kEmbeddedNul: return "embedded NUL";
    case ProtoError::kBadEnv: return "malformed environment entry";
    case ProtoError::kBadValue: return "field value out of range";
  }
  return "unknown protocol error";
}

// Codes for ErrorMsg::code. Failures of a system call carry its errno value
// (e.g. ENOENT when execve fails); protocol-level failures use these, which
// lie above any errno.
inline constexpr uint32_t kErrBadRequest = 0x10000;   // request refused (e.g. bad uid)
inline constexpr uint32_t kErrUnsupported = 0x10001;  // no common protocol version
inline constexpr uint32_t kErrInternal = 0x10002;

// --- messages --------------------------------------------------------------------

struct Hello {
  static constexpr MsgType kType = MsgType::kHello;
  uint16_t min_version = kMinProtocolVersion;  // 1 <= min_version <= max_version
  uint16_t max_version = kMaxProtocolVersion;
  bool operator==(const Hello&) const = default;
};

struct ExecRequest {
  static constexpr MsgType kType = MsgType::kExecRequest;
  std::vector<std::string> argv;  // argv[0] is the program (PATH lookup by the agent)
  std::vector<std::string> env;   // "NAME=value", added to the agent's base environment
  std::string cwd;                // empty = the agent's default (/workspace)
  uint32_t uid = kDefaultId;
  uint32_t gid = kDefaultId;
  uint8_t flags = 0;  // kExecFlag*; unknown bits are refused
  uint16_t rows = 0;  // initial PTY size (with kExecFlagPty); 0 = agent default
  uint16_t cols = 0;
  bool pty() const { return flags & kExecFlagPty; }
  bool stdin_closed() const { return flags & kExecFlagStdinClosed; }
  bool operator==(const ExecRequest&) const = default;
};

struct Started {
  static constexpr MsgType kType = MsgType::kStarted;
  uint32_t pid = 0;  // guest pid, >= 1
  bool operator==(const Started&) const = default;
};

// Data messages: the payload is the bytes (0..kMaxPayload; empty carries no
// meaning, end of input is StdinEof).
template <MsgType T>
struct DataMsg {
  static constexpr MsgType kType = T;
  std::vector<uint8_t> data;
  bool operator==(const DataMsg&) const = default;
};
using StdinData = DataMsg<MsgType::kStdinData>;
using StdoutData = DataMsg<MsgType::kStdoutData>;
using StderrData = DataMsg<MsgType::kStderrData>;

// Messages without a payload.
template <MsgType T>
struct EmptyMsg {
  static constexpr MsgType kType = T;
  bool operator==(const EmptyMsg&) const = default;
};
using StdinEof = EmptyMsg<MsgType::kStdinEof>;
using Shutdown = EmptyMsg<MsgType::kShutdown>;  // host asks the agent to power off cleanly

struct Signal {
  static constexpr MsgType kType = MsgType::kSignal;
  int32_t signo = 0;  // 1..kMaxSignal, delivered to the child's process group
  bool operator==(const Signal&) const = default;
};

struct Resize {
  static constexpr MsgType kType = MsgType::kResize;
  uint16_t rows = 0;
  uint16_t cols = 0;
  bool operator==(const Resize&) const = default;
};

struct Exited {
  static constexpr MsgType kType = MsgType::kExited;
  enum Kind : uint8_t { kExitedNormally = 0, kKilledBySignal = 1 };
  uint8_t kind = kExitedNormally;
  int32_t value = 0;  // exit code 0..255, or signal 1..kMaxSignal
  bool operator==(const Exited&) const = default;
};

// What a shell would report as $? for this exit: the code, or 128 + signo.
constexpr int shell_status(const Exited& e) {
  return e.kind == Exited::kKilledBySignal ? 128 + e.value : e.value;
}

struct ErrorMsg {
  static constexpr MsgType kType = MsgType::kError;
  uint32_t code = 0;    // errno of the failing call, or kErr*
  std::string message;  // <= kMaxErrorMessage bytes, for the user
  bool operator==(const ErrorMsg&) const = default;
};

// Highest protocol version in both ranges, or nullopt if they are disjoint
// (then send ErrorMsg{kErrUnsupported} and close).
constexpr std::optional<uint16_t> negotiate(const Hello& local, const Hello& remote) {
  const uint16_t lo = std::max(local.min_version, remote.min_version);
  const uint16_t hi = std::min(local.max_version, remote.max_version);
  if (lo > hi) return std::nullopt;
  return hi;
}

// --- frames ----------------------------------------------------------------------

struct FrameHeader {
  uint32_t magic = kMagic;
  uint16_t version = kFrameVersion;
  uint16_t type = 0;
  uint32_t length = 0;
};

struct Frame {
  MsgType type{};
  std::vector<uint8_t> payload;
  bool operator==(const Frame&) const = default;
};

namespace detail {

inline void put_u8(std::vector<uint8_t>& out, uint8_t v) { out.push_back(v); }
inline void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
inline void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  put_bytes(out, s.data(), s.size());
}
inline uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get_u32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// Bounds-checked little-endian reader over one payload. The first failure
// sticks; later reads return zero/empty values.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  ProtoError error() const { return err_; }
  void fail(ProtoError e) {
    if (err_ == ProtoError::kOk) err_ = e;
  }
  bool ok() const { return err_ == ProtoError::kOk; }
  uint8_t u8() { return have(1) ? d_[pos_++] : 0; }
  uint16_t u16() {
    if (!have(2)) return 0;
    const uint16_t v = get_u16(d_.data() + pos_);
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!have(4)) return 0;
    const uint32_t v = get_u32(d_.data() + pos_);
    pos_ += 4;
    return v;
  }
  // A string of at most max_len bytes; the length is checked before the
  // bytes, so a huge length is kTooLong even if the payload is short.
  std::string str(size_t max_len) {
    const uint32_t n = u32();
    if (!ok()) return {};
    if (n > max_len) {
      fail(ProtoError::kTooLong);
      return {};
    }
    if (!have(n)) return {};
    std::string s(reinterpret_cast<const char*>(d_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // The rest of the check after the last field.
  ProtoError finish() {
    if (ok() && pos_ != d_.size()) fail(ProtoError::kTrailingBytes);
    return err_;
  }

 private:
  bool have(size_t n) {
    if (!ok()) return false;
    if (d_.size() - pos_ < n) {
      fail(ProtoError::kTruncated);
      return false;
    }
    return true;
  }
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
  ProtoError err_ = ProtoError::kOk;
};

inline bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// A string list: count <= max_count, each entry <= max_len and free of NUL,
// the sum of entry lengths <= max_total.
inline std::vector<std::string> read_list(Reader& r, size_t max_count, size_t max_total) {
  std::vector<std::string> v;
  const uint32_t n = r.u32();
  if (!r.ok()) return v;
  if (n > max_count) {
    r.fail(ProtoError::kTooMany);
    return v;
  }
  size_t total = 0;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string s = r.str(kMaxArgLength);
    if (!r.ok()) break;
    total += s.size();
    if (total > max_total) r.fail(ProtoError::kTotalTooLarge);
    if (has_nul(s)) r.fail(ProtoError::kEmbeddedNul);
    v.push_back(std::move(s));
  }
  return v;
}

inline ProtoError check_list(const std::vector<std::string>& v, size_t max_count, size_t max_total) {
  if (v.size() > max_count) return ProtoError::kTooMany;
  size_t total = 0;
  for (const auto& s : v) {
    if (s.size() > kMaxArgLength) return ProtoError::kTooLong;
    total += s.size();
    if (total > max_total) return ProtoError::kTotalTooLarge;
    if (has_nul(s)) return ProtoError::kEmbeddedNul;
  }
  return ProtoError::kOk;
}

inline bool valid_env_entry(std::string_view s) {
  const size_t eq = s.find('=');
  return eq != std::string_view::npos && eq != 0;
}

}  // namespace detail

// --- validation (shared by encoders and decoders) -----------------------------------

inline ProtoError validate(const Hello& m) {
  return m.min_version >= 1 && m.min_version <= m.max_version ? ProtoError::kOk : ProtoError::kBadValue;
}
inline ProtoError validate(const ExecRequest& m) {
  if (m.argv.empty()) return ProtoError::kEmptyArgv;
  if (auto e = detail::check_list(m.argv, kMaxArgc, kMaxArgvTotal); e != ProtoError::kOk) return e;
  if (auto e = detail::check_list(m.env, kMaxEnvCount, kMaxEnvTotal); e != ProtoError::kOk) return e;
  for (const auto& s : m.env)
    if (!detail::valid_env_entry(s)) return ProtoError::kBadEnv;
  if (m.cwd.size() > kMaxCwdLength) return ProtoError::kTooLong;
  if (detail::has_nul(m.cwd)) return ProtoError::kEmbeddedNul;
  if (m.flags & ~kExecFlagsKnown) return ProtoError::kBadValue;
  return ProtoError::kOk;
}
inline ProtoError validate(const Started& m) { return m.pid >= 1 ? ProtoError::kOk : ProtoError::kBadValue; }
template <MsgType T>
ProtoError validate(const DataMsg<T>& m) {
  return m.data.size() <= kMaxPayload ? ProtoError::kOk : ProtoError::kOversized;
}
template <MsgType T>
ProtoError validate(const EmptyMsg<T>&) {
  return ProtoError::kOk;
}
inline ProtoError validate(const Signal& m) {
  return m.signo >= 1 && m.signo <= kMaxSignal ? ProtoError::kOk : ProtoError::kBadValue;
}
inline ProtoError validate(const Resize&) { return ProtoError::kOk; }
inline ProtoError validate(const Exited& m) {
  if (m.kind == Exited::kExitedNormally) return m.value >= 0 && m.value <= 255 ? ProtoError::kOk : ProtoError::kBadValue;
  if (m.kind == Exited::kKilledBySignal)
    return m.value >= 1 && m.value <= kMaxSignal ? ProtoError::kOk : ProtoError::kBadValue;
  return ProtoError::kBadValue;
}
inline ProtoError validate(const ErrorMsg& m) {
  return m.message.size() <= kMaxErrorMessage ? ProtoError::kOk : ProtoError::kTooLong;
}

// --- payload encoding (no header) ------------------------------------------------------

inline void encode_payload(std::vector<uint8_t>& out, const Hello& m) {
  detail::put_u16(out, m.min_version);
  detail::put_u16(out, m.max_version);
}
inline void encode_payload(std::vector<uint8_t>& out, const ExecRequest& m) {
  using namespace detail;
  put_u32(out, static_cast<uint32_t>(m.argv.size()));
  for (const auto& s : m.argv) put_string(out, s);
  put_u32(out, static_cast<uint32_t>(m.env.size()));
  for (const auto& s : m.env) put_string(out, s);
  put_string(out, m.cwd);
  put_u32(out, m.uid);
  put_u32(out, m.gid);
  put_u8(out, m.flags);
  put_u16(out, m.rows);
  put_u16(out, m.cols);
}
inline void encode_payload(std::vector<uint8_t>& out, const Started& m) { detail::put_u32(out, m.pid); }
template <MsgType T>
void encode_payload(std::vector<uint8_t>& out, const DataMsg<T>& m) {
  detail::put_bytes(out, m.data.data(), m.data.size());
}
template <MsgType T>
void encode_payload(std::vector<uint8_t>&, const EmptyMsg<T>&) {}
inline void encode_payload(std::vector<uint8_t>& out, const Signal& m) {
  detail::put_u32(out, static_cast<uint32_t>(m.signo));
}
inline void encode_payload(std::vector<uint8_t>& out, const Resize& m) {
  detail::put_u16(out, m.rows);
  detail::put_u16(out, m.cols);
}
inline void encode_payload(std::vector<uint8_t>& out, const Exited& m) {
  detail::put_u8(out, m.kind);
  detail::put_u32(out, static_cast<uint32_t>(m.value));
}
inline void encode_payload(std::vector<uint8_t>& out, const ErrorMsg& m) {
  detail::put_u32(out, m.code);
  detail::put_string(out, m.message);
}

// --- frame encoding ----------------------------------------------------------------

inline void encode_header(std::vector<uint8_t>& out, const FrameHeader& h) {
  detail::put_u32(out, h.magic);
  detail::put_u16(out, h.version);
  detail::put_u16(out, h.type);
  detail::put_u32(out, h.length);
}

// Appends header + payload for a raw payload (no content check).
[[nodiscard]] inline ProtoError encode_frame(std::vector<uint8_t>& out, MsgType type,
                                             std::span<const uint8_t> payload) {
  if (payload.size() > kMaxPayload) return ProtoError::kOversized;
  encode_header(out, {kMagic, kFrameVersion, static_cast<uint16_t>(type), static_cast<uint32_t>(payload.size())});
  detail::put_bytes(out, payload.data(), payload.size());
  return ProtoError::kOk;
}

// Appends one complete frame for m. A message the peer would refuse (the same
// checks as decode) or a payload over kMaxPayload appends nothing and returns
// the reason.
template <typename M>
[[nodiscard]] ProtoError encode(std::vector<uint8_t>& out, const M& m) {
  if (auto e = validate(m); e != ProtoError::kOk) return e;
  const size_t start = out.size();
  encode_header(out, {kMagic, kFrameVersion, static_cast<uint16_t>(M::kType), 0});
  encode_payload(out, m);
  const size_t len = out.size() - start - kHeaderSize;
  if (len > kMaxPayload) {
    out.resize(start);
    return ProtoError::kOversized;
  }
  for (int i = 0; i < 4; ++i) out[start + 8 + i] = static_cast<uint8_t>(len >> (8 * i));
  return ProtoError::kOk;
}

// Appends data as as many frames of type T as needed (each <= kMaxPayload);
// nothing for empty data. For StdinData/StdoutData/StderrData.
template <MsgType T>
void encode_data(std::vector<uint8_t>& out, std::span<const uint8_t> data) {
  while (!data.empty()) {
    const auto chunk = data.first(std::min(data.size(), kMaxPayload));
    (void)encode_frame(out, T, chunk);  // cannot fail: chunk <= kMaxPayload
    data = data.subspan(chunk.size());
  }
}

// --- payload decoding ----------------------------------------------------------------
// decode_payload(payload, out) parses and validates the payload of a message of
// that type; on failure out is unspecified. The payload size itself is the
// frame's concern (FrameDecoder refuses > kMaxPayload).

inline ProtoError decode_payload(std::span<const uint8_t> p, Hello& m) {
  detail::Reader r(p);
  m.min_version = r.u16();
  m.max_version = r.u16();
  if (auto e = r.finish(); e != ProtoError::kOk) return e;
  return validate(m);
}

inline ProtoError decode_payload(std::span<const uint8_t> p, ExecRequest& m) {
  detail::Reader r(p);
  m.argv = detail::read_list(r, kMaxArgc, kMaxArgvTotal);
  if (r.ok() && m.argv.empty()) r.fail(ProtoError::kEmptyArgv);
  m.env = detail::read_list(r, kMaxEnvCount, kMaxEnvTotal);
  if (r.ok())
    for (const auto& s : m.env)
      if (!detail::valid_env_entry(s)) r.fail(ProtoError::kBadEnv);
  m.cwd = r.str(kMaxCwdLength);
  if (r.ok() && detail::has_nul(m.cwd)) r.fail(ProtoError::kEmbeddedNul);
  m.uid = r.u32();
  m.gid = r.u32();
  m.flags = r.u8();
  m.rows = r.u16();
  m.cols = r.u16();
  if (auto e = r.finish(); e != ProtoError::kOk) return e;
  return validate(m);
}

inline ProtoError decode_payload(std::span<const uint8_t> p, Started& m) {
  detail::Reader r(p);
  m.pid = r.u32();
  if (auto e = r.finish(); e != ProtoError::kOk) return e;
  return validate(m);
}

template <MsgType T>
ProtoError decode_payload(std::span<const uint8_t> p, DataMsg<T>& m) {
  if (p.size() > kMaxPayload) return ProtoError::kOversized;
  m.data.assign(p.begin(), p.end());
  return ProtoError::kOk;
}

template <MsgType T>
ProtoError decode_payload(std::span<const uint8_t> p, EmptyMsg<T>&) {
  return p.empty() ? ProtoError::kOk : ProtoError::kTrailingBytes;
}

inline ProtoError decode_payload(std::span<const uint8_t> p, Signal& m) {
  detail::Reader r(p);
  m.signo = static_cast<int32_t>(r.u32());
  if (auto e = r.finish(); e != ProtoError::kOk) return e;
  return validate(m);
}

inline ProtoError decode_payload(std::span<const uint8_t> p, Resize& m) {
  detail::Reader r(p);
  m.rows = r.u16();
  m.cols = r.u16();
  return r.finish();
}

inline ProtoError decode_payload(std::span<const uint8_t> p, Exited& m) {
  detail::Reader r(p);
  m.kind = r.u8();
  m.value = static_cast<int32_t>(r.u32());
  if (auto e = r.finish(); e != ProtoError::kOk) return e;
  return validate(m);
}

inline ProtoError decode_payload(std::span<const uint8_t> p, ErrorMsg& m) {
  detail::Reader r(p);
  m.code = r.u32();
  m.message = r.str(kMaxErrorMessage);
  return r.finish();
}

// Decodes a frame as message M; kWrongType if the frame is of another type.
template <typename M>
ProtoError decode(const Frame& f, M& m) {
  if (f.type != M::kType) return ProtoError::kWrongType;
  return decode_payload(f.payload, m);
}

// --- incremental frame decoder -------------------------------------------------------

// Splits a byte stream into frames. feed() any-sized chunks (one byte at a
// time works), then call next() until it returns kNeedMore. The header is
// checked as soon as its 12 bytes are in, so an oversized or foreign frame is
// refused before its payload is buffered. After an error the decoder stays
// failed (feed() ignores input, next() repeats the error): drop the
// connection. Buffering is bounded by one frame plus the last chunk fed, as
// long as next() is drained after every feed().
class FrameDecoder {
 public:
  enum class Status : uint8_t { kFrame, kNeedMore, kError };
  struct Result {
    Status status = Status::kNeedMore;
    ProtoError error = ProtoError::kOk;  // set when status == kError
    Frame frame;                         // set when status == kFrame
  };

  void feed(std::span<const uint8_t> bytes) {
    if (failed()) return;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
      pos_ = 0;
    }
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  }

  Result next() {
    Result r;
    if (failed()) {
      r.status = Status::kError;
      r.error = error_;
      return r;
    }
    const size_t avail = buf_.size() - pos_;
    if (avail < kHeaderSize) return r;
    const uint8_t* h = buf_.data() + pos_;
    const FrameHeader hdr{detail::get_u32(h), detail::get_u16(h + 4), detail::get_u16(h + 6), detail::get_u32(h + 8)};
    if (hdr.magic != kMagic) return fail(ProtoError::kBadMagic);
    if (hdr.version != kFrameVersion) return fail(ProtoError::kUnsupportedVersion);
    if (!is_known_type(hdr.type)) return fail(ProtoError::kUnknownType);
    if (hdr.length > kMaxPayload) return fail(ProtoError::kOversized);
    if (avail - kHeaderSize < hdr.length) return r;
    r.status = Status::kFrame;
    r.frame.type = static_cast<MsgType>(hdr.type);
    r.frame.payload.assign(h + kHeaderSize, h + kHeaderSize + hdr.length);
    pos_ += kHeaderSize + hdr.length;
    return r;
  }

  bool failed() const { return error_ != ProtoError::kOk; }
  ProtoError error() const { return error_; }
  // Bytes received but not yet returned as a frame. Non-zero at end of stream
  // means the peer stopped mid-frame.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  Result fail(ProtoError e) {
    error_ = e;
    buf_.clear();
    buf_.shrink_to_fit();
    pos_ = 0;
    return {Status::kError, e, {}};
  }

  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  ProtoError error_ = ProtoError::kOk;
};

}  // namespace ksbox::protocol

// libFuzzer target for the exec wire protocol (protocol/exec_protocol.h): the
// bytes a hostile guest agent (or a confused host) can put on the vsock
// stream.
//
// Input: byte 0 = n - 1 in its low 4 bits (n = 1..16 chunk sizes follow);
// then n bytes of chunk sizes (0 = everything that is left, else 1..255),
// used in turn; the rest is the byte stream. The stream is fed to a
// FrameDecoder in those chunks, draining next() after every feed. Every frame
// is decoded as its type; whatever decodes is re-encoded and must give back
// the identical frame bytes. The frames (and the final error) must be the same
// as when the whole stream is fed in one chunk, and errors must be sticky.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "protocol/exec_protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace ksbox::protocol {
namespace {

template <typename M>
void check_message(const Frame& f) {
  M m{};
  const ProtoError e = decode(f, m);
  if (e != ProtoError::kOk) {
    CHECK(e != ProtoError::kWrongType && e != ProtoError::kBadMagic && e != ProtoError::kUnknownType &&
          e != ProtoError::kUnsupportedVersion && e != ProtoError::kOversized);
    return;
  }
  CHECK(validate(m) == ProtoError::kOk);
  std::vector<uint8_t> wire;
  CHECK(encode(wire, m) == ProtoError::kOk);
  std::vector<uint8_t> want;
  CHECK(encode_frame(want, f.type, f.payload) == ProtoError::kOk);
  CHECK(wire == want);
  M back{};
  CHECK(decode_payload(std::span<const uint8_t>(wire).subspan(kHeaderSize), back) == ProtoError::kOk);
  CHECK(back == m);
}

void check_frame(const Frame& f) {
  CHECK(f.payload.size() <= kMaxPayload);
  switch (f.type) {
    case MsgType::kHello: check_message<Hello>(f); break;
    case MsgType::kExecRequest: check_message<ExecRequest>(f); break;
    case MsgType::kStarted: check_message<Started>(f); break;
    case MsgType::kStdinData: check_message<StdinData>(f); break;
    case MsgType::kStdinEof: check_message<StdinEof>(f); break;
    case MsgType::kStdoutData: check_message<StdoutData>(f); break;
    case MsgType::kStderrData: check_message<StderrData>(f); break;
    case MsgType::kSignal: check_message<Signal>(f); break;
    case MsgType::kResize: check_message<Resize>(f); break;
    case MsgType::kExited: {
      check_message<Exited>(f);
      Exited e;
      if (decode(f, e) == ProtoError::kOk) {  // a shell's $?: 0..255, > 128 if killed
        const int st = shell_status(e);
        CHECK(st >= 0 && st <= 255);
        if (e.kind == Exited::kKilledBySignal) CHECK(st > 128);
      }
      break;
    }
    case MsgType::kError: check_message<ErrorMsg>(f); break;
    case MsgType::kShutdown: check_message<Shutdown>(f); break;
    default: CHECK(false && "FrameDecoder returned an unknown type");
  }
}

struct Outcome {
  std::vector<Frame> frames;
  ProtoError error = ProtoError::kOk;
};

// Returns false once the decoder has failed.
bool drain(FrameDecoder& d, Outcome& out) {
  for (;;) {
    auto r = d.next();
    switch (r.status) {
      case FrameDecoder::Status::kNeedMore: return true;
      case FrameDecoder::Status::kFrame: out.frames.push_back(std::move(r.frame)); break;
      case FrameDecoder::Status::kError:
        CHECK(r.error != ProtoError::kOk && d.failed() && d.error() == r.error);
        out.error = r.error;
        return false;
    }
  }
}

}  // namespace
}  // namespace ksbox::protocol

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ksbox::protocol;
  if (size == 0) return 0;
  const size_t nsizes = (data[0] & 15u) + 1;
  if (size < 1 + nsizes) return 0;
  const std::span<const uint8_t> sizes(data + 1, nsizes);
  std::span<const uint8_t> stream(data + 1 + nsizes, size - 1 - nsizes);

  Outcome chunked;
  FrameDecoder d;
  size_t i = 0;
  for (std::span<const uint8_t> rest = stream; !rest.empty(); ++i) {
    const uint8_t s = sizes[i % nsizes];
    const size_t n = s == 0 ? rest.size() : std::min<size_t>(s, rest.size());
    d.feed(rest.first(n));
    rest = rest.subspan(n);
    if (!drain(d, chunked)) {
      // Sticky: the rest of the stream changes nothing.
      d.feed(rest);
      auto r = d.next();
      CHECK(r.status == FrameDecoder::Status::kError && r.error == chunked.error);
      CHECK(d.buffered() == 0);
      break;
    }
  }

  Outcome whole;
  FrameDecoder w;
  w.feed(stream);
  drain(w, whole);
  CHECK(whole.error == chunked.error);
  CHECK(whole.frames == chunked.frames);
  if (chunked.error == ProtoError::kOk) CHECK(d.buffered() == w.buffered());

  size_t consumed = 0;
  for (const Frame& f : chunked.frames) {
    check_frame(f);
    consumed += kHeaderSize + f.payload.size();
  }
  CHECK(consumed <= stream.size());
  if (chunked.error == ProtoError::kOk) CHECK(consumed + d.buffered() == stream.size());
  return 0;
}

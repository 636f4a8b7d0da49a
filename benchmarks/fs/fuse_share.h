// The benchmark's guest side and share: FUSE requests laid out as the
// virtio-fs driver queues them, reply space, and a FuseServer over a temp
// tree with `data` (1 MiB) and `dir/` (1000 empty files).
#pragma once

#include <benchmark/benchmark.h>
#include <linux/fuse.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "devices/fs/fuse_server.h"

namespace ksbox::bench_fs {

using devices::fs::FuseServer;
using devices::fs::InSpans;
using devices::fs::OutSpans;
using devices::fs::Passthrough;
using devices::fs::PassthroughOptions;

inline constexpr size_t kPage = 4096;
inline constexpr size_t kPages = 256;  // data is kPages * kPage = 1 MiB
inline constexpr size_t kDirEntries = 1000;
inline constexpr size_t kInHdr = sizeof(fuse_in_header);
inline constexpr size_t kOutHdr = sizeof(fuse_out_header);

template <typename T>
std::span<const uint8_t> bytes_of(const T& v) {
  return {reinterpret_cast<const uint8_t*>(&v), sizeof v};
}
inline std::span<const uint8_t> cstring_bytes(const std::string& s) {  // with its NUL
  return {reinterpret_cast<const uint8_t*>(s.c_str()), s.size() + 1};
}
inline std::string entry_name(size_t i) {
  std::string n = "f0000";
  for (size_t k = 4; k > 0; --k, i /= 10) n[k] = static_cast<char>('0' + i % 10);
  return n;
}

// A request as the guest driver queues it: header, fixed arguments and
// payload (name or write data) in separate readable spans.
class Request {
 public:
  Request(uint32_t opcode, uint64_t nodeid, std::span<const uint8_t> args, std::span<const uint8_t> payload = {})
      : Request(opcode, nodeid, args, payload, true) {}
  // The payload not copied but pointed at, as the driver points at the
  // page-cache pages that a WRITE carries: `payload` must outlive the request.
  struct Borrowed {
    std::span<const uint8_t> bytes;
  };
  Request(uint32_t opcode, uint64_t nodeid, std::span<const uint8_t> args, Borrowed payload)
      : Request(opcode, nodeid, args, payload.bytes, false) {}
  Request(Request&&) = default;  // the vector's buffer, hence the spans, move along
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  InSpans spans() const { return {spans_.data(), n_}; }
  void set_nodeid(uint64_t id) { std::memcpy(bytes_.data() + offsetof(fuse_in_header, nodeid), &id, sizeof id); }
  template <typename T>
  void set_arg(size_t off, const T& v) {
    std::memcpy(bytes_.data() + kInHdr + off, &v, sizeof v);
  }

 private:
  Request(uint32_t opcode, uint64_t nodeid, std::span<const uint8_t> args, std::span<const uint8_t> payload,
          bool copy_payload) {
    fuse_in_header h{};
    h.len = static_cast<uint32_t>(kInHdr + args.size() + payload.size());
    h.opcode = opcode;
    h.unique = 1;
    h.nodeid = nodeid;
    bytes_.resize(copy_payload ? h.len : kInHdr + args.size());
    std::memcpy(bytes_.data(), &h, kInHdr);
    spans_[n_++] = {bytes_.data(), kInHdr};
    size_t at = kInHdr;
    const auto copy = [&](std::span<const uint8_t> part) {
      if (part.empty()) return;  // no empty spans, and no memcpy from nullptr
      std::memcpy(bytes_.data() + at, part.data(), part.size());
      spans_[n_++] = {bytes_.data() + at, part.size()};
      at += part.size();
    };
    copy(args);
    if (copy_payload) copy(payload);
    else if (!payload.empty()) spans_[n_++] = payload;
  }

  std::vector<uint8_t> bytes_;
  std::array<std::span<const uint8_t>, 3> spans_{};
  size_t n_ = 0;
};

// Reply space as the driver offers it: the out header, then the body.
class Reply {
 public:
  explicit Reply(size_t body) : buf_(kOutHdr + body) {
    spans_ = {std::span<uint8_t>(buf_.data(), kOutHdr), std::span<uint8_t>(buf_.data() + kOutHdr, body)};
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  OutSpans spans() const { return spans_; }
  // The error of a reply of `n` bytes; -EPROTO if none or a malformed one.
  int check(size_t n) {
    fuse_out_header h{};
    if (n < kOutHdr) return -EPROTO;
    std::memcpy(&h, buf_.data(), kOutHdr);
    if (h.len != n) return -EPROTO;
    len_ = n - kOutHdr;
    return h.error;
  }
  std::span<const uint8_t> body() const { return {buf_.data() + kOutHdr, len_}; }
  template <typename T>
  T as() const {
    T v;  // zeroed only if the body is short: this runs in timed loops
    if (len_ < sizeof v) std::memset(&v, 0, sizeof v);
    std::memcpy(&v, buf_.data() + kOutHdr, std::min(sizeof v, len_));
    return v;
  }

 private:
  std::vector<uint8_t> buf_;
  std::array<std::span<uint8_t>, 2> spans_;
  size_t len_ = 0;
};

// The host directory, removed when the share goes.
struct TempTree {
  TempTree() {
    std::string t = (std::filesystem::temp_directory_path() / "ksbox-bench-fs-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    path = t;
    std::ofstream(path / "data", std::ios::binary) << std::string(kPages * kPage, 'd');
    std::filesystem::create_directory(path / "dir");
    for (size_t i = 0; i < kDirEntries; ++i) std::ofstream(path / "dir" / entry_name(i));
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

// A server over the tree after INIT, with `data` open read-write and `dir`
// open for reading, as a guest would have them.
struct Share {
  Share() : server(std::make_unique<Passthrough>(tree.path.string(), PassthroughOptions{}, nullptr)) {
    fuse_init_in ii{};
    ii.major = FUSE_KERNEL_VERSION;
    ii.minor = FUSE_KERNEL_MINOR_VERSION;
    ii.max_readahead = 1u << 20;
    ii.flags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES;
    setup(Request(FUSE_INIT, 0, bytes_of(ii)), sizeof(fuse_init_out));
    data = setup(Request(FUSE_LOOKUP, FUSE_ROOT_ID, {}, cstring_bytes("data")), sizeof(fuse_entry_out)).nodeid;
    dir = setup(Request(FUSE_LOOKUP, FUSE_ROOT_ID, {}, cstring_bytes("dir")), sizeof(fuse_entry_out)).nodeid;
    fuse_open_in oi{};
    oi.flags = O_RDWR;
    data_fh = setup(Request(FUSE_OPEN, data, bytes_of(oi)), sizeof(fuse_open_out)).fh;
    oi.flags = O_RDONLY | O_DIRECTORY;
    dir_fh = setup(Request(FUSE_OPENDIR, dir, bytes_of(oi)), sizeof(fuse_open_out)).fh;
  }

  // One request; false (and the benchmark skipped) if the reply is not a success.
  bool call(const Request& req, Reply& rep, benchmark::State& st) {
    const int err = rep.check(server.handle(req.spans(), rep.spans()));
    if (err == 0) return true;
    st.SkipWithError(("FUSE reply: " + std::string(std::strerror(-err))).c_str());
    return false;
  }

  std::filesystem::path host(const char* name) const { return tree.path / name; }

  TempTree tree;
  FuseServer server;
  uint64_t data = 0, dir = 0, data_fh = 0, dir_fh = 0;

 private:
  struct SetupReply {
    uint64_t nodeid = 0, fh = 0;
  };
  SetupReply setup(const Request& req, size_t body) {
    Reply rep(body);
    if (const int err = rep.check(server.handle(req.spans(), rep.spans())))
      throw std::runtime_error("share setup: " + std::string(std::strerror(-err)));
    if (body == sizeof(fuse_entry_out)) return {rep.as<fuse_entry_out>().nodeid, 0};
    if (body == sizeof(fuse_open_out)) return {0, rep.as<fuse_open_out>().fh};
    return {};
  }
};

}  // namespace ksbox::bench_fs

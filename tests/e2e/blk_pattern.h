// The random-write pattern of the virtio-blk end-to-end test, shared by
// blk_probe (which writes it in the guest) and the test (which checks the
// image file on the host): block offsets and contents from one seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ksbox::test::blk {

// splitmix64: small, good enough, identical on both sides.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

struct Write {
  uint64_t offset;
  std::vector<uint8_t> data;
};

// `count` writes of `block` bytes at random block-aligned offsets of a disk
// of `disk_bytes` (later ones may overwrite earlier ones), random contents.
inline std::vector<Write> random_writes(uint64_t seed, unsigned count, size_t block, uint64_t disk_bytes) {
  Rng rng(seed);
  std::vector<Write> out;
  const uint64_t blocks = disk_bytes / block;
  for (unsigned i = 0; i < count; ++i) {
    Write w{rng.next() % blocks * block, std::vector<uint8_t>(block)};
    for (size_t j = 0; j < block; j += 8) {
      const uint64_t v = rng.next();
      for (size_t k = 0; k < 8 && j + k < block; ++k) w.data[j + k] = static_cast<uint8_t>(v >> (8 * k));
    }
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace ksbox::test::blk

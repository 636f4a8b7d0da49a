#include "vmm/pid_file.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "vmm/atomic_file.h"
#include "vmm/error.h"

namespace ksbox {

std::optional<uint64_t> process_starttime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string stat = ss.str();
  // The command name (field 2) may hold spaces and ')': skip past the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(fields >> field)) return std::nullopt;
  uint64_t t = 0;
  if (std::from_chars(field.data(), field.data() + field.size(), t).ec != std::errc()) return std::nullopt;
  return t;
}

std::optional<PidRecord> read_pid_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pid") || !j.contains("starttime") || !j["pid"].is_number_integer() ||
      !j["starttime"].is_number_unsigned())
    return std::nullopt;
  const auto pid = j["pid"].get<int64_t>();
  if (pid <= 0 || pid > (1 << 22)) return std::nullopt;
  return PidRecord{static_cast<pid_t>(pid), j["starttime"].get<uint64_t>()};
}

PidFile::PidFile(std::string path) : path_(std::move(path)) {
  const auto start = process_starttime(::getpid());
  if (!start) throw Error("cannot read /proc/self/stat");
  const std::string text =
      nlohmann::json{{"pid", ::getpid()}, {"starttime", *start}}.dump() + "\n";
  write_file_atomic(path_, text, 0600);
}

PidFile::~PidFile() {
  if (!keep_) ::unlink(path_.c_str());
}

}  // namespace ksbox

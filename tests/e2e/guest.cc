#include "tests/e2e/guest.h"

#include <unistd.h>

#include <filesystem>
#include <regex>

namespace ksbox::test {

std::string guest_file(const std::string& name) {
  if (!name.empty() && name.front() == '/') return name;
  return std::string(KSBOX_GUEST_DIR) + "/" + name;
}

std::string guest_test_blocker(const std::string& initramfs) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0)
    return "no usable /dev/kvm: run this test through tests/nested/with-kvm (ctest does)";
  if (::access(guest_file(initramfs).c_str(), R_OK) != 0)
    return guest_file(initramfs) + " is missing: cmake --build build --target guest-image";
  return "";
}

std::string vmm_path() { return KSBOX_VMM; }

ProcessResult boot(const BootOptions& o, const ProcessOptions& popts) {
  std::string cmdline = o.extra_cmdline;
  if (!o.cmd.empty()) cmdline += " ksbox_cmd=\"" + o.cmd + "\"";
  if (!o.then.empty()) cmdline += " ksbox_then=" + o.then;
  std::vector<std::string> argv = {vmm_path(), "--kernel", guest_file(o.kernel), "--initrd",
                                   guest_file("initramfs.cpio.gz"), "--cmdline", cmdline};
  argv.insert(argv.end(), o.vmm_args.begin(), o.vmm_args.end());
  return run_process(argv, popts);
}

std::string cmd_output(const std::string& console) {
  std::string text;
  for (char c : console)
    if (c != '\r') text.push_back(c);
  const std::string begin = "ksbox-init: cmd-begin\n", end = "ksbox-init: cmd-end";
  const auto b = text.find(begin);
  if (b == std::string::npos) return "";
  const auto e = text.find(end, b);
  if (e == std::string::npos) return "";
  return text.substr(b + begin.size(), e - b - begin.size());
}

int cmd_status(const std::string& console) {
  std::smatch m;
  static const std::regex re("ksbox-init: cmd-end status=([0-9]+)");
  if (!std::regex_search(console, m, re)) return -1;
  return std::stoi(m[1]);
}

std::string describe(const ProcessResult& r) {
  auto tail = [](const std::string& s) { return s.size() > 4000 ? "..." + s.substr(s.size() - 4000) : s; };
  return "exit=" + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\n--- console (stdout) ---\n" + tail(r.out) + "\n--- stderr ---\n" + tail(r.err);
}

}  // namespace ksbox::test

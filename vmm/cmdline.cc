#include "vmm/cmdline.h"

namespace ksbox {

std::string compose_cmdline(const std::string& user, const std::vector<std::string>& device_args) {
  std::string devices;
  for (const auto& a : device_args) devices += " " + a;

  std::string head = std::string(kDefaultCmdline) + (user.empty() ? "" : " " + user);
  // Find a standalone "--" word in the user's part.
  const std::string padded = " " + head + " ";
  const auto at = padded.find(" -- ");
  if (at == std::string::npos) return head + devices;
  // `at` in padded is the index of the space before "--"; in head it is at-1+1.
  const std::string before = head.substr(0, at == 0 ? 0 : at - 1);
  const std::string after = head.substr(at);  // starts at "--"
  return before + devices + " " + after;
}

}  // namespace ksbox

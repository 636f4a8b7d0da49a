#include "net_setup.h"

#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "log.h"
#include "vmm/unique_fd.h"

namespace ksbox::agent {
namespace {

sockaddr ipv4_sockaddr(in_addr a) {
  sockaddr out{};
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr = a;
  std::memcpy(&out, &in, sizeof in);
  return out;
}

in_addr netmask(unsigned prefix) {
  in_addr m{};
  m.s_addr = htonl(prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix));
  return m;
}

bool if_ioctl(int s, unsigned long req, ifreq& ifr, const char* what) {
  if (::ioctl(s, req, &ifr) == 0) return true;
  log("network: {} on {}: {}", what, ifr.ifr_name, std::strerror(errno));
  return false;
}

bool write_resolv_conf(in_addr dns) {
  char addr[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &dns, addr, sizeof addr);
  const std::string text = std::string("nameserver ") + addr + "\n";
  ::mkdir("/etc", 0755);
  UniqueFd fd(::open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    log("network: /etc/resolv.conf: {}", std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace

bool configure_interface(const char* ifname, const NetParams& p) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) {
    log("network: socket: {}", std::strerror(errno));
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  ifr.ifr_addr = ipv4_sockaddr(p.address);
  if (!if_ioctl(s.get(), SIOCSIFADDR, ifr, "set address")) return false;
  ifr.ifr_netmask = ipv4_sockaddr(netmask(p.prefix));
  if (!if_ioctl(s.get(), SIOCSIFNETMASK, ifr, "set netmask")) return false;
  if (!if_ioctl(s.get(), SIOCGIFFLAGS, ifr, "get flags")) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (!if_ioctl(s.get(), SIOCSIFFLAGS, ifr, "bring up")) return false;

  rtentry rt{};
  rt.rt_dst = ipv4_sockaddr(in_addr{});
  rt.rt_genmask = ipv4_sockaddr(in_addr{});
  rt.rt_gateway = ipv4_sockaddr(p.gateway);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  char dev[IFNAMSIZ] = {};
  std::strncpy(dev, ifname, IFNAMSIZ - 1);
  rt.rt_dev = dev;
  if (::ioctl(s.get(), SIOCADDRT, &rt) < 0 && errno != EEXIST) {
    log("network: default route via the gateway: {}", std::strerror(errno));
    return false;
  }
  return write_resolv_conf(p.dns);
}

void setup_network() {
  const auto p = parse_net_params(read_kernel_cmdline());
  if (!p) return;  // no network device, or no word from the VMM
  configure_interface(kNetInterface, *p);
}

}  // namespace ksbox::agent

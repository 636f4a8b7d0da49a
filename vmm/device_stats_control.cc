#include "vmm/device_stats_control.h"

#include "devices/virtio/mmio_transport.h"

namespace ksbox {

nlohmann::json device_stats_reply(const std::vector<const devices::virtio::MmioTransport*>& transports) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t slot = 0; slot < transports.size(); ++slot) {
    const auto& t = *transports[slot];
    const auto s = t.stats();
    list.push_back({{"slot", slot},
                    {"type", t.device_type()},
                    {"activated", t.activated()},
                    {"register_page", t.register_page_mapped()},
                    {"reads", s.reads},
                    {"writes", s.writes},
                    {"malformed", s.malformed_accesses},
                    {"refused", s.refused_writes}});
  }
  return {{"ok", true}, {"devices", list}};
}

}  // namespace ksbox

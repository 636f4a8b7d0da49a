#include "vmm/net_stats_control.h"

#include "devices/net/virtio_net.h"

namespace ksbox {

nlohmann::json net_stats_reply(const devices::net::VirtioNet* net) {
  using nlohmann::json;
  namespace dn = devices::net;
  if (!net) return {{"ok", true}, {"network", false}};
  const dn::NetStats s = net->stats();
  json refused = json::object();
  for (size_t r = 0; r < dn::kTxRefusalCount; ++r)
    if (s.tx_refused[r]) refused[dn::to_string(static_cast<dn::TxRefusal>(r))] = s.tx_refused[r];
  json backend = json::object();
  for (const auto& [name, value] : net->backend_counters()) backend[name] = value;
  return {{"ok", true},
          {"network", true},
          {"tx", {{"frames", s.tx_frames}, {"bytes", s.tx_bytes}, {"refused", refused}}},
          {"rx",
           {{"frames", s.rx_frames},
            {"bytes", s.rx_bytes},
            {"refused_chains", s.rx_refused_chains},
            {"dropped",
             {{"inactive", s.rx_dropped_inactive}, {"backlog", s.rx_dropped_backlog}, {"too_big", s.rx_dropped_too_big}}}}},
          {"backend", backend}};
}

}  // namespace ksbox

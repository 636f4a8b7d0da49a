#include "vmm/machine.h"

#include <arpa/inet.h>
#include <linux/virtio_mmio.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include <bit>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "devices/balloon/virtio_balloon.h"
#include "devices/blk/virtio_blk.h"
#include "devices/fs/io_engine_factory.h"
#include "devices/fs/virtio_fs.h"
#include "devices/legacy/i8042.h"
#include "devices/net/filtered_backend.h"
#include "devices/net/slirp_backend.h"
#include "devices/net/virtio_net.h"
#include "devices/rng/rng.h"
#include "devices/vsock/vsock.h"
#include "protocol/cmdline_words.h"
#include "vmm/control_server.h"
#include "vmm/cmdline.h"
#include "vmm/error.h"
#include "vmm/kvm_register_page.h"
#include "vmm/mapped_file.h"
#include "vmm/vcpu_loop.h"
#include "vmm/x86/boot_params.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/loader.h"
#include "vmm/x86/mptable.h"

namespace ksbox {
namespace {

// KVM emulates the guest's TSC-deadline timer through the host's TSC. Where
// the host does not trust its own TSC (its clocksource is not "tsc", as in
// the nested harness's TCG-emulated L1: "SMP vm created on host with
// unstable TSC"), guest timers were seen not to fire for minutes (RCU
// stalls, hung tests): the guest keeps the plain APIC timer there.
bool host_tsc_is_stable() {
  std::string cs;
  std::ifstream("/sys/devices/system/clocksource/clocksource0/current_clocksource") >> cs;
  return cs == "tsc";
}

constexpr uint64_t kMaxKernelBytes = 512ull << 20;
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint32_t kCom1Irq = 4;
constexpr uint32_t kFirstVirtioIrq = 5;
constexpr uint64_t kQueueNotifyOffset = VIRTIO_MMIO_QUEUE_NOTIFY;
constexpr uint64_t kInterruptAckOffset = VIRTIO_MMIO_INTERRUPT_ACK;
// A locally administered unicast address ("ksbx"), and the largest MTU
// slirp takes: fewer, larger frames through the VMM.
constexpr devices::net::MacAddress kGuestMac{0x02, 0x6b, 0x73, 0x62, 0x78, 0x01};
constexpr uint16_t kGuestMtu = devices::net::kMaxMtu;

UniqueFd make_eventfd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) throw_errno("eventfd");
  return fd;
}

}  // namespace

MachineConfig Machine::checked(const MachineConfig& cfg) {
  validate(cfg, host_memory_mib(), 0);
  return cfg;
}

Machine::Machine(const MachineConfig& cfg)
    : cfg_(checked(cfg)),
      kernel_image_(cfg.kernel, "kernel", kMaxKernelBytes),
      initrd_image_(cfg.initrd.empty() ? std::nullopt
                                       : std::make_optional<MappedFile>(cfg.initrd, "initrd", cfg.memory_mib << 20)),
      kvm_((x86::detect_kernel_format(kernel_image_.bytes()), Kvm::open(cfg.kvm_device))),
      vm_(kvm_.create_vm()) {
  const int max_vcpus = kvm_.check_extension(KVM_CAP_MAX_VCPUS);
  validate_vcpus(cfg.vcpus, max_vcpus > 0 ? static_cast<unsigned>(max_vcpus) : 0);

  if (cfg.console != "-") {
    console_fd_.reset(::open(cfg.console.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!console_fd_) throw Error(fmt::format("cannot open console log '{}': {}", cfg.console, std::strerror(errno)));
    console_out_ = console_fd_.get();
  }

  vm_.set_tss_addr(x86::kTssAddr);
  if (kvm_.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) vm_.set_identity_map_addr(x86::kIdentityMapAddr);
  vm_.create_irqchip();
  vm_.create_pit2();

  mem_ = std::make_unique<GuestMemory>(x86::ram_layout(cfg.memory_mib << 20));
  for (const auto& r : mem_->regions())
    vm_.set_user_memory_region(next_memory_slot_++, r.start.value(), r.size, r.host);
  readonly_slots_ = kvm_.check_extension(KVM_CAP_READONLY_MEM) > 0;

  add_legacy_devices();
  add_virtio_device(std::make_shared<devices::VirtioRng>());
  if (!cfg_.vsock_path.empty())
    add_virtio_device(std::make_shared<devices::VirtioVsock>(cfg_.vsock_path, cfg_.guest_cid));
  if (!cfg_.shares.empty()) {
    const auto io = devices::fs::parse_io_engine_kind(cfg_.fs_io);
    // The agent mounts these (guest-image/agent/share_params.h); a tag that
    // is not a safe directory name is served but left for the user to mount.
    std::string tags;
    for (const auto& share : cfg_.shares)
      if (protocol::is_mountable_tag(share.tag)) tags += (tags.empty() ? "" : ",") + share.tag;
    if (!tags.empty()) device_args_.push_back("ksbox.shares=" + tags);
    // The guest's half of the polling (guest-image/kernel-patches/0007): its
    // sender of a request watches for the reply as long as this thread
    // watches for the request. A --cmdline that sets it wins.
    if (cfg_.cmdline.find("virtiofs.poll_us=") == std::string::npos)
      device_args_.push_back(fmt::format("virtiofs.poll_us={}", cfg_.fs_poll_us));
    for (const auto& share : cfg_.shares) {
      devices::fs::PassthroughOptions fs_opts;
      fs_opts.read_only = share.read_only;
      const auto cache = devices::fs::parse_cache_policy(share.cache.empty() ? cfg_.share_cache : share.cache);
      shares_.push_back(
          std::make_shared<devices::fs::VirtioFs>(share.tag, share.host_dir, fs_opts.with_cache(cache), io,
                                                  std::chrono::microseconds(cfg_.fs_poll_us)));
      add_virtio_device(shares_.back());
    }
  }
  const auto blk_io = devices::io::parse_io_engine_kind(cfg_.blk_io);
  for (const auto& disk : cfg_.disks)
    add_virtio_device(std::make_shared<devices::blk::VirtioBlk>(
        devices::blk::DiskImage(disk.path, disk.read_only, disk.serial), blk_io));
  if (cfg_.network.mode != "off") add_network();
  if (cfg_.balloon) {
    balloon_ = std::make_shared<devices::balloon::VirtioBalloon>();
    add_virtio_device(balloon_);
  }
  load_guest();
  create_vcpus(cfg.vcpus);
}

Machine::~Machine() = default;

void Machine::load_guest() {
  const uint64_t mem_bytes = cfg_.memory_mib << 20;
  const auto kernel = x86::load_kernel(kernel_image_.bytes(), *mem_);

  x86::BootParamsInput bp;
  bp.setup = kernel.setup;
  if (initrd_image_) {
    bp.initrd_size = initrd_image_->bytes().size();
    bp.initrd_addr =
        x86::load_initrd(initrd_image_->bytes(), *mem_, kernel, x86::low_ram_end(mem_bytes)).value();
  }

  const std::string cmdline = compose_cmdline(cfg_.cmdline, device_args_);
  if (cmdline.size() + 1 > kernel.cmdline_max)
    throw Error(fmt::format("kernel command line is {} bytes; this kernel accepts at most {}", cmdline.size(),
                            kernel.cmdline_max - 1));
  auto cmd = mem_->slice_or_throw(GuestAddress(x86::kCmdlineAddr), cmdline.size() + 1, "command line");
  std::memcpy(cmd.data(), cmdline.c_str(), cmdline.size() + 1);
  bp.cmdline_addr = x86::kCmdlineAddr;
  bp.cmdline_size = static_cast<uint32_t>(cmdline.size() + 1);

  bp.e820 = x86::build_e820(mem_bytes);
  const boot_params zero_page = x86::build_boot_params(bp);
  if (!mem_->write_obj(GuestAddress(x86::kZeroPageAddr), zero_page)) throw Error("cannot write the zero page");

  const auto mptable = x86::build_mptable(cfg_.vcpus, static_cast<uint32_t>(x86::kEbdaStart));
  if (x86::kEbdaStart + mptable.size() > x86::kHighMemStart ||
      !mem_->write_bytes(GuestAddress(x86::kEbdaStart), mptable))
    throw Error("MP table does not fit below 1 MiB");

  x86::write_boot_tables(*mem_);
  entry_ = kernel.entry.value();
}

void Machine::add_legacy_devices() {
  auto irq = make_eventfd();
  vm_.register_irqfd(irq.get(), kCom1Irq);
  const int irq_fd = irq.get();
  irq_fds_.push_back(std::move(irq));
  serial_ = std::make_shared<devices::Serial>(
      [irq_fd] {
        const uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(irq_fd, &one, sizeof one);
      },
      [this](std::span<const uint8_t> bytes) { on_console_output(bytes); });
  pio_.add(kCom1Port, devices::Serial::kRegisters, serial_);
  pio_.add(devices::I8042::kDataPort, devices::I8042::kCommandPort - devices::I8042::kDataPort + 1,
           std::make_shared<devices::I8042>([this] { ctl_.guest_reset(); }));
}

void Machine::add_virtio_device(std::shared_ptr<devices::virtio::VirtioDevice> device) {
  using devices::virtio::MmioTransport;
  const auto slot = static_cast<uint32_t>(transports_.size());
  const uint64_t base = x86::kVirtioMmioBase + slot * MmioTransport::kWindowSize;
  const uint32_t irq = kFirstVirtioIrq + slot;
  if (irq >= x86::kIoapicPins) throw Error("too many virtio devices for the I/O APIC's interrupt lines");

  auto irq_fd = make_eventfd();
  vm_.register_irqfd(irq_fd.get(), irq);
  const int raw_irq = irq_fd.get();
  irq_fds_.push_back(std::move(irq_fd));
  const size_t queues = device->queue_max_sizes().size();
  auto transport = std::make_shared<MmioTransport>(*mem_, device, [raw_irq] {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(raw_irq, &one, sizeof one);
  });
  mmio_.add(base, MmioTransport::kWindowSize, transport);
  if (readonly_slots_) transport->set_register_page(std::make_unique<KvmRegisterPage>(vm_, next_memory_slot_++, base));
  // INTERRUPT_ACK of just the used-buffer bit ends in the kernel: the bit
  // then stays set once raised, which costs the driver at most a look at
  // rings with nothing new. Acks with the config bit still come here.
  // (ksbox's own guest kernel skips that write: kernel-patches/0005.)
  ack_fds_.push_back(make_eventfd());
  vm_.register_ioeventfd(ack_fds_.back().get(), base + kInterruptAckOffset, 4, VIRTIO_MMIO_INT_VRING);

  std::vector<UniqueFd> queue_fds;
  for (size_t q = 0; q < queues; ++q) {
    queue_fds.push_back(make_eventfd());
    vm_.register_ioeventfd(queue_fds.back().get(), base + kQueueNotifyOffset, 4, q);
  }
  notifiers_.push_back(std::make_unique<devices::virtio::QueueNotifier>(*transport, std::move(queue_fds), device));
  transports_.push_back(std::move(transport));
  device_args_.push_back(fmt::format("virtio_mmio.device=4K@{:#x}:{}", base, irq));
}

void Machine::add_network() {
  namespace net = devices::net;
  const bool filtered = cfg_.network.mode == "filtered";
  net::SlirpOptions opts;
  opts.net = net::default_slirp_network(kGuestMtu);
  // "user": the gateway address is the host's 127.0.0.1; "filtered": only when allowed explicitly.
  opts.host_loopback = !filtered || cfg_.network.allow_host_loopback;
  opts.disable_dns = filtered;  // the filter is the resolver
  for (const auto& p : cfg_.network.publish) {
    net::PortForward f;
    ::inet_pton(AF_INET, p.host_addr.c_str(), &f.host_addr);  // checked by validate_network()
    f.host_port = p.host_port;
    f.guest_port = p.guest_port;
    opts.forwards.push_back(f);
  }
  const auto addr = [](in_addr a) {
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &a, buf, sizeof buf);
    return std::string(buf);
  };
  // ksbox-agent configures eth0 from this: ADDRESS/PREFIX,GATEWAY,DNS.
  const auto prefix = std::popcount(opts.net.netmask.s_addr);
  device_args_.push_back(fmt::format("ksbox.net={}/{},{},{}", addr(opts.net.guest), prefix,
                                     addr(opts.net.gateway), addr(opts.net.dns)));
  const net::SlirpNetwork network = opts.net;
  std::unique_ptr<net::NetBackend> backend = std::make_unique<net::SlirpBackend>(std::move(opts));
  if (filtered) {
    net::FilterOptions f;
    f.rules.allow_names = effective_allowlist(cfg_.network);
    f.rules.allow_ports = effective_allow_ports(cfg_.network);
    f.rules.dns_server = ntohl(network.dns.s_addr);
    if (cfg_.network.allow_host_loopback) f.rules.fixed_addrs[ntohl(network.gateway.s_addr)] = "host-loopback";
    f.dns_upstream = cfg_.network.dns_upstream.empty() ? net::system_dns_upstream()
                                                       : net::parse_dns_upstream(cfg_.network.dns_upstream);
    f.mtu = kGuestMtu;
    f.egress_log = cfg_.network.egress_log;
    std::fprintf(stderr, "ksbox-vmm: filtered network: %zu names allowed, ports %s, DNS upstream %s%s\n",
                 f.rules.allow_names.size(), fmt::format("{}", fmt::join(f.rules.allow_ports, ",")).c_str(),
                 f.dns_upstream.text.c_str(), f.egress_log.empty() ? ", no egress log" : "");
    backend = std::make_unique<net::FilteredBackend>(std::move(f), std::move(backend));
  }
  net_ = std::make_shared<net::VirtioNet>(kGuestMac, kGuestMtu, std::move(backend));
  add_virtio_device(net_);
}

void Machine::on_console_output(std::span<const uint8_t> bytes) {
  switch (panic_watcher_.feed(bytes)) {
    case PanicWatcher::Event::PanicStarted:
      ctl_.guest_panic(*panic_watcher_.reason(), false);
      break;
    case PanicWatcher::Event::PanicEnded:
      ctl_.guest_panic(*panic_watcher_.reason(), true);
      break;
    case PanicWatcher::Event::None:
      break;
  }
  while (!bytes.empty()) {
    const ssize_t n = ::write(console_out_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a closed console must not stop the guest
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

void Machine::create_vcpus(unsigned count) {
  auto supported = kvm_.supported_cpuid();
  if (kvm_.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0 && host_tsc_is_stable())
    x86::advertise_tsc_deadline(supported);
  const size_t run_size = kvm_.vcpu_mmap_size();
  for (unsigned i = 0; i < count; ++i) {
    Vcpu vcpu = vm_.create_vcpu(i, run_size);
    vcpu.set_cpuid(x86::cpuid_for_vcpu(supported, i, count));
    vcpu.set_msrs(x86::boot_msrs());
    // Application processors wait for INIT/SIPI in KVM; only the BSP starts here.
    vcpu.set_regs(x86::boot_regs(entry_, x86::kZeroPageAddr));
    vcpu.set_sregs(x86::long_mode_sregs(vcpu.get_sregs()));
    vcpu.set_fpu(x86::boot_fpu());
    vcpu.set_lapic(x86::boot_lapic(vcpu.get_lapic()));
    vcpus_.push_back(std::move(vcpu));
  }
}

ExitStatus Machine::run() {
  // Stop signals are read from a signalfd by this thread only; vCPU threads
  // inherit the blocked mask and are interrupted with the kick signal.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_signals, s);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  ::signal(SIGPIPE, SIG_IGN);
  install_vcpu_kick_handler();
  UniqueFd sigfd(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd) throw_errno("signalfd");

  std::optional<ControlServer> control;
  if (!cfg_.control_path.empty()) {
    ControlInfo info{cfg_.name, cfg_.vcpus, cfg_.memory_mib, std::chrono::steady_clock::now(), balloon_.get(), {}};
    for (const auto& share : shares_) info.shares.push_back(share.get());
    info.net = net_.get();
    for (const auto& t : transports_) info.transports.push_back(t.get());
    control.emplace(cfg_.control_path, std::move(info), ctl_);
  }

  std::vector<std::thread> threads;
  threads.reserve(vcpus_.size());
  for (auto& v : vcpus_) threads.emplace_back([this, &v] { run_vcpu(v, pio_, mmio_, ctl_); });
  ctl_.set_vcpu_kicker(static_cast<unsigned>(threads.size()), [this, &threads] {
    for (size_t i = 0; i < threads.size(); ++i) {
      vcpus_[i].run_data()->immediate_exit = 1;
      ::pthread_kill(threads[i].native_handle(), vcpu_kick_signal());
    }
  });

  pollfd fds[] = {{ctl_.event_fd(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
  while (!ctl_.stopping()) {
    int timeout = -1;
    if (auto deadline = ctl_.panic_deadline()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ctl_.finish_panic();
        break;
      }
      timeout = static_cast<int>(left.count()) + 1;
    }
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) throw_errno("poll");
    signalfd_siginfo si{};
    if (::read(sigfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
      ctl_.request_stop({kExitSignalBase + static_cast<int>(si.ssi_signo),
                         fmt::format("stopped by signal {}", strsignal(static_cast<int>(si.ssi_signo)))});
  }

  control.reset();  // no pause request may kick the threads once they are gone
  ctl_.set_vcpu_kicker(0, nullptr);
  for (size_t i = 0; i < threads.size(); ++i) {
    vcpus_[i].run_data()->immediate_exit = 1;
    ::pthread_kill(threads[i].native_handle(), vcpu_kick_signal());
  }
  for (auto& t : threads) t.join();
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return *ctl_.status();
}

}  // namespace ksbox

// kvm-smoke: the smallest end-to-end KVM check. Creates a VM with one page of
// real-mode code that computes 2+3, writes it and "OK" to I/O port 0x10 and
// halts; checks every exit. Proves /dev/kvm in the nested harness really runs
// guest code. Exit 0 on success, 1 with a message otherwise.
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(cond, what)                                                          \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "kvm-smoke: %s failed: %s\n", what, strerror(errno)); \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

int main(void) {
    // mov al,2; add al,3; out 0x10,al; mov al,'O'; out 0x10,al;
    // mov al,'K'; out 0x10,al; hlt
    static const uint8_t code[] = {0xb0, 0x02, 0x04, 0x03, 0xe6, 0x10, 0xb0, 'O', 0xe6,
                                   0x10, 0xb0, 'K',  0xe6, 0x10, 0xf4};
    const uint64_t guest_addr = 0x1000;

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    CHECK(kvm >= 0, "open /dev/kvm");
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    CHECK(api == KVM_API_VERSION, "KVM_GET_API_VERSION");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    CHECK(vm >= 0, "KVM_CREATE_VM");

    uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED, "mmap guest memory");
    memcpy(mem, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = guest_addr, .memory_size = 0x1000, .userspace_addr = (uintptr_t)mem};
    CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) == 0, "KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    CHECK(vcpu >= 0, "KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    CHECK(run_size > 0, "KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    CHECK(run != MAP_FAILED, "mmap kvm_run");

    struct kvm_sregs sregs;
    CHECK(ioctl(vcpu, KVM_GET_SREGS, &sregs) == 0, "KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    CHECK(ioctl(vcpu, KVM_SET_SREGS, &sregs) == 0, "KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = guest_addr, .rflags = 0x2};
    CHECK(ioctl(vcpu, KVM_SET_REGS, &regs) == 0, "KVM_SET_REGS");

    const uint8_t want[] = {5, 'O', 'K'};
    size_t got = 0;
    for (;;) {
        CHECK(ioctl(vcpu, KVM_RUN, 0) == 0, "KVM_RUN");
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t byte = *((uint8_t *)run + run->io.data_offset);
            if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x10 || run->io.size != 1 ||
                got >= sizeof want || byte != want[got]) {
                fprintf(stderr, "kvm-smoke: unexpected I/O exit: dir %u port 0x%x size %u byte 0x%02x\n",
                        run->io.direction, run->io.port, run->io.size, byte);
                return 1;
            }
            got++;
            break;
        }
        case KVM_EXIT_HLT:
            if (got != sizeof want) {
                fprintf(stderr, "kvm-smoke: halted after %zu of %zu port writes\n", got, sizeof want);
                return 1;
            }
            printf("kvm-smoke: ok (2+3=5, \"OK\" on port 0x10, then hlt)\n");
            return 0;
        default:
            fprintf(stderr, "kvm-smoke: unexpected exit reason %u\n", run->exit_reason);
            return 1;
        }
    }
}

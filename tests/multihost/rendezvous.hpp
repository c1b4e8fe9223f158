// SPDX-License-Identifier: Apache-2.0
//
// Rendezvous of the guests of one multi-host VM run (tests/vm/multihost.py).
//
// The host runner gives every guest the same small shared-memory control area
// (an ivshmem-plain PCI device backed by one share=on file, separate from the
// CXL device under test, so tests may hand the CXL device to the driver and
// still meet) and, in its environment, its index and the run's nonce:
//   BELUGA_VM_HOST   this guest's index, 0..BELUGA_VM_HOSTS-1
//   BELUGA_VM_HOSTS  number of guests in the run
//   BELUGA_VM_NONCE  64-bit random value of this run, 16 hex digits
//   BELUGA_MH_SHM    (optional) path of the control area instead of the
//                    ivshmem device's BAR 2 (host tests use a plain file)
//   BELUGA_MH_TIMEOUT (optional) bound of every wait in seconds (default 240);
//                    it only catches hangs, it is never a pass criterion
//
// Layout of the control area (little endian; the runner writes the header
// before the guests boot and the `gone` fields while they run):
//   0x0000  header: u64 magic "BELUGAMH", u64 nonce, u32 hosts, u32 version
//   0x1000 * (1 + h)  slot of host h (4 KiB):
//     +0   u64 joined   nonce once host h has joined this run
//     +8   u64 step     (barrier count << 32) | 32-bit hash of the barrier name
//     +16  u64 gone     nonce once the runner saw host h's QEMU end
//     +24  u64 gone_why 1: killed on the guest's request, 2: QEMU exited
//     +32  u64 stamp    nonce ^ (count of the barrier that follows a publish)
//     +40  u32 length   of the published value
//     +64  char[64]     name of host h's current barrier (for messages)
//     +128 bytes        published value (up to 3968 bytes)
// Every word a guest compares is tied to the nonce, so bytes a previous run
// left in the file are never taken for this run's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace beluga::mh {

inline constexpr std::uint64_t kMagic = 0x484d4147554c4542ULL;  // "BELUGAMH"
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kSlotSize = 4096;
inline constexpr std::size_t kValueOffset = 128;
inline constexpr std::size_t kValueMax = kSlotSize - kValueOffset;
inline constexpr std::uint64_t kGoneKilled = 1;
inline constexpr std::uint64_t kGoneExited = 2;

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The 64-bit pattern word at @index of a buffer tagged @tag in this run:
// splitmix64 of (nonce, tag, index).  Tests write and compare these.
std::uint64_t pattern_word(std::uint64_t nonce, std::uint64_t tag, std::uint64_t index);

// @n 64-bit words of shared memory (a dax mapping, a region's mapping).
struct Words {
  volatile std::uint64_t* w;
  std::size_t n;
};
// Writes the pattern tagged @tag into @m.
void fill(Words m, std::uint64_t nonce, std::uint64_t tag);
// Compares @m with the pattern word for word; prints how many words differ
// and the first difference, or (unless @quiet) "@what: all N bytes match".
bool check(Words m, std::uint64_t nonce, std::uint64_t tag, const std::string& what,
           bool quiet = false);

class Rendezvous {
 public:
  // Joins the run described by the environment (see above).  Throws Error
  // when the environment is incomplete or the control area was not prepared
  // for this run (magic, nonce or host count differ).
  static Rendezvous from_env();
  Rendezvous(const std::string& path, unsigned host, unsigned hosts, std::uint64_t nonce,
             double timeout_s);
  ~Rendezvous();
  Rendezvous(Rendezvous&& other) noexcept;
  Rendezvous& operator=(Rendezvous&&) = delete;
  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;

  unsigned host() const { return host_; }
  unsigned hosts() const { return hosts_; }
  std::uint64_t nonce() const { return nonce_; }

  // Waits until every other host has reached the same barrier (the n-th
  // barrier of every host must have the same name).  Throws Error when a
  // peer is at a barrier of another name, when a peer is gone (its QEMU
  // ended), or when the wait exceeds the bound.  With @skip_killed, peers
  // the runner killed on their own request count as arrived (survivors of
  // a kill test meet without the victim).
  void barrier(std::string_view name, bool skip_killed = false);
  // Publishes a value; peers read it with peer_value() after the next
  // barrier, and before their own next barrier.  Publish at most once
  // between two barriers.
  void publish(std::string_view value);
  std::string peer_value(unsigned peer) const;
  // Whether the runner marked @peer gone, and why (kGoneKilled/kGoneExited).
  bool gone(unsigned peer, std::uint64_t* why = nullptr) const;
  // Waits (bounded) until the runner marks @peer gone; returns why.
  std::uint64_t wait_gone(unsigned peer) const;
  // Asks the host runner to kill this guest's QEMU (a line on the results
  // channel, BELUGA_MH_CONTROL_TTY, default /dev/ttyS1).  Returns at once.
  void request_kill() const;
  // A kill test's victim: asks for the kill, then runs @work (one pass over
  // the memory it keeps busy: true when what it checked was right) again
  // and again until the kill lands.  Never returns: throws Error when
  // @work fails or the runner has not killed this guest within the bound.
  [[noreturn]] void request_kill_while(const std::function<bool()>& work) const;
  // A kill test's survivors: run @work again and again until the runner
  // marks @peer gone; returns why (kGoneKilled/kGoneExited).  Throws Error
  // when @work fails (false) or @peer is not gone within the bound.
  std::uint64_t run_until_gone(unsigned peer, const std::function<bool()>& work) const;

 private:
  volatile unsigned char* slot(unsigned h) const;
  std::uint64_t load(unsigned h, std::size_t off) const;
  void store(unsigned h, std::size_t off, std::uint64_t v) const;
  std::string peer_barrier_name(unsigned peer) const;

  void* map_ = nullptr;
  std::size_t size_ = 0;
  unsigned host_ = 0;
  unsigned hosts_ = 0;
  std::uint64_t nonce_ = 0;
  double timeout_s_ = 240;
  std::uint32_t count_ = 0;  // barriers this host has passed
};

}  // namespace beluga::mh

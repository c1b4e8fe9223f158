// SPDX-License-Identifier: Apache-2.0
//
// Rendezvous of the guests of one multi-host VM run: see rendezvous.hpp.
// Every shared word is read and written with one aligned 64-bit access
// (std::atomic_ref), so a peer sees either the old or the new value.
#include "rendezvous.hpp"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

namespace beluga::mh {
namespace {

constexpr std::size_t kJoined = 0, kStep = 8, kGone = 16, kGoneWhy = 24, kStamp = 32,
                      kLength = 40, kName = 64, kNameMax = 64;

std::uint32_t name_hash(std::string_view s) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Unique file descriptor (closed on scope exit).
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// BAR 2 of the ivshmem-plain device (PCI 1af4:1110), enabled first: no
// driver binds to it, so nothing else turns its memory decoding on.
std::string find_ivshmem() {
  glob_t g{};
  std::string found;
  if (::glob("/sys/bus/pci/devices/*", 0, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc && found.empty(); i++) {
      std::string dev = g.gl_pathv[i];
      if (read_first_line(dev + "/vendor") == "0x1af4" &&
          read_first_line(dev + "/device") == "0x1110") {
        std::ofstream(dev + "/enable") << "1";
        found = dev + "/resource2";
      }
    }
  }
  ::globfree(&g);
  if (found.empty())
    throw Error("no ivshmem-plain device (1af4:1110): not a multi-host guest?");
  return found;
}

const char* need_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw Error(std::string(name) + " is not set: not a multi-host guest?");
  return v;
}

unsigned long long parse_number(const char* name, const char* text, int base) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, base);
  if (errno || end == text || *end)
    throw Error(std::string(name) + "='" + text + "' is not a number");
  return v;
}

}  // namespace

std::uint64_t pattern_word(std::uint64_t nonce, std::uint64_t tag, std::uint64_t index) {
  std::uint64_t z = nonce ^ (tag * 0xd1b54a32d192ed03ULL) ^ (index * 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Rendezvous Rendezvous::from_env() {
  unsigned long long host = parse_number("BELUGA_VM_HOST", need_env("BELUGA_VM_HOST"), 10);
  unsigned long long hosts = parse_number("BELUGA_VM_HOSTS", need_env("BELUGA_VM_HOSTS"), 10);
  unsigned long long nonce = parse_number("BELUGA_VM_NONCE", need_env("BELUGA_VM_NONCE"), 16);
  double timeout = 240;
  if (const char* t = std::getenv("BELUGA_MH_TIMEOUT"); t && *t)
    timeout = static_cast<double>(parse_number("BELUGA_MH_TIMEOUT", t, 10));
  const char* shm = std::getenv("BELUGA_MH_SHM");
  std::string path = shm && *shm ? std::string(shm) : find_ivshmem();
  if (hosts < 1 || host >= hosts || hosts > 255)
    throw Error("BELUGA_VM_HOST=" + std::to_string(host) + " BELUGA_VM_HOSTS=" +
                std::to_string(hosts) + ": out of range");
  return Rendezvous(path, static_cast<unsigned>(host), static_cast<unsigned>(hosts), nonce,
                    timeout);
}

Rendezvous::Rendezvous(const std::string& path, unsigned host, unsigned hosts,
                       std::uint64_t nonce, double timeout_s)
    : host_(host), hosts_(hosts), nonce_(nonce), timeout_s_(timeout_s) {
  Fd fd(::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC));
  if (fd.fd < 0) throw Error(errno_text("open " + path));
  struct stat st{};
  if (::fstat(fd.fd, &st) < 0) throw Error(errno_text("stat " + path));
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ < kSlotSize * (1 + static_cast<std::size_t>(hosts)))
    throw Error(path + ": " + std::to_string(size_) + " bytes, too small for " +
                std::to_string(hosts) + " hosts");
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
  if (p == MAP_FAILED) throw Error(errno_text("mmap " + path));
  map_ = p;
  auto* base = static_cast<std::uint64_t*>(map_);
  std::uint64_t magic = std::atomic_ref<std::uint64_t>(base[0]).load();
  std::uint64_t hnonce = std::atomic_ref<std::uint64_t>(base[1]).load();
  std::uint64_t words = std::atomic_ref<std::uint64_t>(base[2]).load();
  auto hhosts = static_cast<std::uint32_t>(words), version = static_cast<std::uint32_t>(words >> 32);
  if (magic != kMagic || hnonce != nonce || hhosts != hosts || version != kVersion) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "control area %s is not this run's (magic %#llx nonce %016llx hosts %u version %u;"
                  " expected nonce %016llx hosts %u version %u)",
                  path.c_str(), static_cast<unsigned long long>(magic),
                  static_cast<unsigned long long>(hnonce), hhosts, version,
                  static_cast<unsigned long long>(nonce), hosts, kVersion);
    ::munmap(map_, size_);
    map_ = nullptr;
    throw Error(msg);
  }
  // Join, or resume after an earlier program of this run on this host.
  if (load(host_, kJoined) == nonce_) {
    count_ = static_cast<std::uint32_t>(load(host_, kStep) >> 32);
  } else {
    store(host_, kStep, 0);
    store(host_, kStamp, 0);
    store(host_, kJoined, nonce_);
  }
}

Rendezvous::~Rendezvous() {
  if (map_) ::munmap(map_, size_);
}

Rendezvous::Rendezvous(Rendezvous&& o) noexcept
    : map_(o.map_), size_(o.size_), host_(o.host_), hosts_(o.hosts_), nonce_(o.nonce_),
      timeout_s_(o.timeout_s_), count_(o.count_) {
  o.map_ = nullptr;
}

volatile unsigned char* Rendezvous::slot(unsigned h) const {
  return static_cast<volatile unsigned char*>(map_) + kSlotSize * (1 + static_cast<std::size_t>(h));
}

std::uint64_t Rendezvous::load(unsigned h, std::size_t off) const {
  auto* w = const_cast<std::uint64_t*>(reinterpret_cast<volatile std::uint64_t*>(slot(h) + off));
  return std::atomic_ref<std::uint64_t>(*w).load();
}

void Rendezvous::store(unsigned h, std::size_t off, std::uint64_t v) const {
  auto* w = const_cast<std::uint64_t*>(reinterpret_cast<volatile std::uint64_t*>(slot(h) + off));
  std::atomic_ref<std::uint64_t>(*w).store(v);
}

bool Rendezvous::gone(unsigned peer, std::uint64_t* why) const {
  if (peer >= hosts_) throw Error("no host " + std::to_string(peer));
  if (load(peer, kGone) != nonce_) return false;
  if (why) *why = load(peer, kGoneWhy);
  return true;
}

std::string Rendezvous::peer_barrier_name(unsigned peer) const {
  std::string s;
  for (std::size_t i = 0; i < kNameMax - 1; i++) {
    char c = static_cast<char>(slot(peer)[kName + i]);
    if (!c) break;
    s += c;
  }
  return s;
}

void Rendezvous::barrier(std::string_view name, bool skip_killed) {
  std::uint32_t want = count_ + 1;
  std::uint64_t step = (static_cast<std::uint64_t>(want) << 32) | name_hash(name);
  for (std::size_t i = 0; i < kNameMax; i++)
    slot(host_)[kName + i] = i < name.size() && i < kNameMax - 1 ? name[i] : 0;
  store(host_, kStep, step);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  for (unsigned p = 0; p < hosts_; p++) {
    if (p == host_) continue;
    for (;;) {
      std::uint64_t why = 0;
      if (gone(p, &why)) {
        if (skip_killed && why == kGoneKilled) break;
        throw Error("barrier " + std::string(name) + ": host " + std::to_string(p) + " is gone (" +
                    (why == kGoneKilled ? "killed on request" : "its QEMU exited") + ")");
      }
      if (load(p, kJoined) == nonce_) {
        std::uint64_t s = load(p, kStep);
        if ((s >> 32) > want) break;
        if ((s >> 32) == want) {
          if (s != step)
            throw Error("barrier " + std::string(name) + ": host " + std::to_string(p) +
                        " is at barrier '" + peer_barrier_name(p) + "' (the hosts' lists differ)");
          break;
        }
      }
      if (std::chrono::steady_clock::now() > deadline)
        throw Error("barrier " + std::string(name) + ": host " + std::to_string(p) +
                    " did not arrive within " + std::to_string(static_cast<int>(timeout_s_)) +
                    " s (it is at barrier '" + peer_barrier_name(p) + "')");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  count_ = want;
}

void Rendezvous::publish(std::string_view value) {
  if (value.size() > kValueMax) throw Error("published value too long");
  store(host_, kStamp, 0);
  for (std::size_t i = 0; i < value.size(); i++)
    slot(host_)[kValueOffset + i] = static_cast<unsigned char>(value[i]);
  store(host_, kLength, value.size());
  store(host_, kStamp, nonce_ ^ (static_cast<std::uint64_t>(count_ + 1) << 32));
}

std::string Rendezvous::peer_value(unsigned peer) const {
  if (peer >= hosts_) throw Error("no host " + std::to_string(peer));
  std::uint64_t expect = nonce_ ^ (static_cast<std::uint64_t>(count_) << 32);
  std::uint64_t stamp = load(peer, kStamp);
  std::size_t len = load(peer, kLength);
  if (stamp != expect || len > kValueMax)
    throw Error("host " + std::to_string(peer) + " published nothing before barrier " +
                std::to_string(count_));
  std::string v(len, '\0');
  for (std::size_t i = 0; i < len; i++) v[i] = static_cast<char>(slot(peer)[kValueOffset + i]);
  if (load(peer, kStamp) != stamp)
    throw Error("host " + std::to_string(peer) + " published again while it was read");
  return v;
}

std::uint64_t Rendezvous::wait_gone(unsigned peer) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  std::uint64_t why = 0;
  while (!gone(peer, &why)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("host " + std::to_string(peer) + " was not marked gone within " +
                  std::to_string(static_cast<int>(timeout_s_)) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return why;
}

void Rendezvous::request_kill_while(const std::function<bool()>& work) const {
  std::printf("host %u: asking the runner to kill this guest; working until then\n", host_);
  std::fflush(stdout);
  request_kill();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  for (unsigned long passes = 1;; passes++) {
    if (!work())
      throw Error("host " + std::to_string(host_) + ": pass " + std::to_string(passes) +
                  " before the kill failed");
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("host " + std::to_string(host_) + " still alive " +
                  std::to_string(static_cast<int>(timeout_s_)) + " s after its kill request (" +
                  std::to_string(passes) + " passes): the runner did not kill it");
  }
}

std::uint64_t Rendezvous::run_until_gone(unsigned peer, const std::function<bool()>& work) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  std::uint64_t why = 0;
  unsigned long passes = 0;
  while (!gone(peer, &why)) {
    passes++;
    if (!work())
      throw Error("host " + std::to_string(host_) + ": pass " + std::to_string(passes) +
                  " while host " + std::to_string(peer) + " ran failed");
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("host " + std::to_string(peer) + " was not marked gone within " +
                  std::to_string(static_cast<int>(timeout_s_)) + " s");
  }
  std::printf("host %u: %lu passes before host %u was gone (%s)\n", host_, passes, peer,
              why == kGoneKilled ? "killed on request" : "QEMU exited");
  return why;
}

void fill(Words m, std::uint64_t nonce, std::uint64_t tag) {
  for (std::size_t i = 0; i < m.n; i++) m.w[i] = pattern_word(nonce, tag, i);
}

bool check(Words m, std::uint64_t nonce, std::uint64_t tag, const std::string& what, bool quiet) {
  std::size_t bad = 0, first = 0;
  std::uint64_t got0 = 0, want0 = 0;
  for (std::size_t i = 0; i < m.n; i++) {
    std::uint64_t want = pattern_word(nonce, tag, i), got = m.w[i];
    if (got != want && !bad++) first = i, got0 = got, want0 = want;
  }
  if (bad)
    std::printf("%s: %zu of %zu words differ; first at byte %zu: %016" PRIx64 " != %016" PRIx64
                "\n",
                what.c_str(), bad, m.n, first * 8, got0, want0);
  else if (!quiet)
    std::printf("%s: all %zu bytes match\n", what.c_str(), m.n * 8);
  return bad == 0;
}

void Rendezvous::request_kill() const {
  const char* tty = std::getenv("BELUGA_MH_CONTROL_TTY");
  std::string path = tty && *tty ? tty : "/dev/ttyS1";
  Fd fd(::open(path.c_str(), O_WRONLY | O_NOCTTY | O_APPEND | O_CLOEXEC));
  if (fd.fd < 0) throw Error(errno_text("open " + path));
  char line[96];
  int n = std::snprintf(line, sizeof line, "beluga-vm: kill-request %u %016llx\n", host_,
                        static_cast<unsigned long long>(nonce_));
  if (::write(fd.fd, line, static_cast<std::size_t>(n)) != n)
    throw Error(errno_text("write " + path));
}

}  // namespace beluga::mh

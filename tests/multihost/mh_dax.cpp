// SPDX-License-Identifier: Apache-2.0
//
// mh_dax: multi-host tests on the shared CXL device-dax instance, before any
// driver is involved (profile multihost; every guest runs the same test and
// picks its role from BELUGA_VM_HOST).
//
//   mh_dax bytes     each host in turn writes a nonce-tagged pattern into the
//                    same 4 MiB of /dev/dax0.0; every other host reads it
//                    back byte for byte (A to B, then B to A, ... for N hosts)
//   mh_dax identity  the memdev serial, the interleave-set cookie (when sysfs
//                    has it) and the dax size read the same on every host
//   mh_dax kill      the last host asks the runner to kill its QEMU while it
//                    rewrites its area; the others keep reading theirs across
//                    the kill and find every byte intact afterwards.  Run it
//                    last: after it, barriers with the killed host fail.
//
// Areas of dax0.0 used (2 MiB aligned): bytes [0, 4M), kill [4M, 8M).
// Exit status 0 pass, 1 fail, 77 skip.  The device is BELUGA_MH_DAX
// (default /dev/dax0.0).
#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "rendezvous.hpp"

namespace {

using beluga::mh::Error;
using beluga::mh::Rendezvous;
using beluga::mh::Words;
using beluga::mh::check;
using beluga::mh::fill;

constexpr std::size_t kMiB = 1 << 20;

std::string dax_path() {
  const char* p = std::getenv("BELUGA_MH_DAX");
  return p && *p ? p : "/dev/dax0.0";
}

std::string sysfs_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) return {};
  return line;
}

// A MAP_SHARED mapping of [off, off + len) of the dax device (RAII).
class DaxMap {
 public:
  DaxMap(std::size_t off, std::size_t len) : len_(len) {
    std::string path = dax_path();
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": " + std::strerror(errno));
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(off));
    int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw Error("mmap " + path + ": " + std::strerror(err));
    p_ = static_cast<std::uint64_t*>(p);
  }
  ~DaxMap() { ::munmap(p_, len_); }
  DaxMap(const DaxMap&) = delete;
  DaxMap& operator=(const DaxMap&) = delete;
  Words words() const { return {p_, len_ / 8}; }

 private:
  std::uint64_t* p_ = nullptr;
  std::size_t len_;
};

int test_bytes(Rendezvous& rv) {
  constexpr std::size_t kOff = 0, kLen = 4 * kMiB;
  DaxMap m(kOff, kLen);
  bool ok = true;
  rv.barrier("bytes-start");
  for (unsigned writer = 0; writer < rv.hosts(); writer++) {
    std::uint64_t tag = 0x6279746573000000ULL | writer;  // "bytes" + writer
    if (rv.host() == writer) {
      fill(m.words(), rv.nonce(), tag);
      std::printf("host %u wrote %zu MiB tagged %" PRIx64 "\n", writer, kLen / kMiB, tag);
    }
    rv.barrier("bytes-written-" + std::to_string(writer));
    ok &= check(m.words(), rv.nonce(), tag,
                "host " + std::to_string(rv.host()) + " reading host " + std::to_string(writer) +
                    "'s pattern");
    rv.barrier("bytes-read-" + std::to_string(writer));
  }
  return ok ? 0 : 1;
}

// Identity of the shared source, as this host's sysfs shows it.
std::string identity() {
  std::string id;
  std::string serial = sysfs_line("/sys/bus/cxl/devices/mem0/serial");
  if (serial.empty()) throw Error("no /sys/bus/cxl/devices/mem0/serial");
  id += "serial=" + serial;
  glob_t g{};
  std::vector<std::string> cookies;
  if (::glob("/sys/bus/nd/devices/region*/set_cookie", 0, nullptr, &g) == 0)
    for (std::size_t i = 0; i < g.gl_pathc; i++) cookies.push_back(sysfs_line(g.gl_pathv[i]));
  ::globfree(&g);
  if (cookies.size() > 1) throw Error("more than one nd region: which one is shared?");
  id += ";set_cookie=" + (cookies.empty() ? std::string("not-exposed") : cookies[0]);
  std::string dev = dax_path();
  std::string name = dev.substr(dev.rfind('/') + 1);
  std::string size = sysfs_line("/sys/bus/dax/devices/" + name + "/size");
  if (size.empty()) throw Error("no /sys/bus/dax/devices/" + name + "/size");
  id += ";dax_size=" + size;
  return id;
}

int test_identity(Rendezvous& rv) {
  std::string mine = identity();
  std::string dev = dax_path();
  std::printf("host %u: %s (physical start %s, not compared: it may differ between hosts)\n",
              rv.host(), mine.c_str(),
              sysfs_line("/sys/bus/dax/devices/" + dev.substr(dev.rfind('/') + 1) + "/resource")
                  .c_str());
  if (mine.find("set_cookie=not-exposed") != std::string::npos)
    std::printf("host %u: sysfs has no interleave-set cookie; comparing the rest\n", rv.host());
  rv.publish(mine);
  rv.barrier("identity-published");
  bool ok = true;
  for (unsigned p = 0; p < rv.hosts(); p++) {
    if (p == rv.host()) continue;
    std::string theirs = rv.peer_value(p);
    if (theirs != mine) {
      std::printf("host %u sees %s, host %u sees %s\n", rv.host(), mine.c_str(), p, theirs.c_str());
      ok = false;
    }
  }
  if (ok) std::printf("host %u: all %u hosts agree\n", rv.host(), rv.hosts());
  rv.barrier("identity-read");
  return ok ? 0 : 1;
}

// Host 0 writes S = [4M, 6M), which every host reads; the victim (host
// N-1) writes V = [6M, 8M) and keeps rewriting it (same values) until its
// QEMU is killed.  The survivors read S until the runner marks the victim
// gone, then check S and V, meet without the victim, and host 0 checks
// that V can still be written.
int test_kill(Rendezvous& rv) {
  if (rv.hosts() < 2) {
    std::printf("SKIP: needs two hosts\n");
    return 77;
  }
  constexpr std::uint64_t kTagS = 0x6b696c6c53ULL, kTagV = 0x6b696c6c56ULL;
  const unsigned victim = rv.hosts() - 1;
  DaxMap s(4 * kMiB, 2 * kMiB), v(6 * kMiB, 2 * kMiB);
  rv.barrier("kill-start");
  if (rv.host() == 0) fill(s.words(), rv.nonce(), kTagS);
  if (rv.host() == victim) fill(v.words(), rv.nonce(), kTagV);
  rv.barrier("kill-ready");

  // Every host reads S once; the survivors then keep reading while the
  // victim asks for its kill, so the kill lands while they read.
  if (!check(s.words(), rv.nonce(), kTagS, "reading S before the kill")) return 1;
  rv.barrier("kill-reading");

  if (rv.host() == victim)
    rv.request_kill_while([&] {
      fill(v.words(), rv.nonce(), kTagV);
      return check(s.words(), rv.nonce(), kTagS, "victim reading S", true);
    });

  // Survivor: read S over and over until the runner reports the victim gone.
  bool ok = true;
  std::uint64_t why = rv.run_until_gone(victim, [&] {
    return check(s.words(), rv.nonce(), kTagS, "survivor reading S while the victim runs", true);
  });
  if (why != beluga::mh::kGoneKilled) {
    std::printf("host %u ended without being killed\n", victim);
    ok = false;
  }
  ok &= check(s.words(), rv.nonce(), kTagS, "survivor reading S after the kill");
  ok &= check(v.words(), rv.nonce(), kTagV, "survivor reading the victim's V after the kill");
  // The memory is still usable: host 0 rewrites V once every survivor has
  // checked it.
  rv.barrier("kill-checked", true);
  if (rv.host() == 0) {
    fill(v.words(), rv.nonce(), kTagV + 1);
    ok &= check(v.words(), rv.nonce(), kTagV + 1, "survivor rewriting V");
  }
  if (ok) std::printf("host %u: S and V intact across the kill of host %u\n", rv.host(), victim);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc != 2) {
    std::fprintf(stderr, "usage: mh_dax bytes|identity|kill\n");
    return 2;
  }
  std::string_view t = argv[1];
  try {
    auto rv = Rendezvous::from_env();
    if (t == "bytes") return test_bytes(rv);
    if (t == "identity") return test_identity(rv);
    if (t == "kill") return test_kill(rv);
    std::fprintf(stderr, "mh_dax: unknown test %s\n", argv[1]);
    return 2;
  } catch (const std::exception& e) {
    std::printf("mh_dax %s: %s\n", argv[1], e.what());
    return 1;
  }
}

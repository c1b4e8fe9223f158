// SPDX-License-Identifier: Apache-2.0
//
// mh_sync: the rendezvous of a multi-host VM run from the shell (see
// rendezvous.hpp for the environment it reads).
//
//   mh_sync info                 print host, hosts and nonce
//   mh_sync barrier NAME         wait until every host reached barrier NAME
//   mh_sync publish VALUE        publish VALUE (read by peers after the next barrier)
//   mh_sync peer HOST            print what HOST published before the last barrier
//   mh_sync wait-gone HOST       wait until the runner saw HOST's QEMU end
//   mh_sync request-kill         ask the runner to kill this guest's QEMU
// Exit status 0, or 1 with a message on stderr.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rendezvous.hpp"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: mh_sync info | barrier NAME | publish VALUE | peer HOST |"
               " wait-gone HOST | request-kill\n");
  return 2;
}

unsigned host_arg(const char* s) {
  char* end = nullptr;
  unsigned long v = std::strtoul(s, &end, 10);
  if (end == s || *end) throw beluga::mh::Error(std::string("not a host index: ") + s);
  return static_cast<unsigned>(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string_view cmd = argv[1];
  try {
    auto rv = beluga::mh::Rendezvous::from_env();
    if (cmd == "info" && argc == 2) {
      std::printf("host %u of %u, nonce %016llx\n", rv.host(), rv.hosts(),
                  static_cast<unsigned long long>(rv.nonce()));
    } else if (cmd == "barrier" && argc == 3) {
      rv.barrier(argv[2]);
    } else if (cmd == "publish" && argc == 3) {
      rv.publish(argv[2]);
    } else if (cmd == "peer" && argc == 3) {
      std::printf("%s\n", rv.peer_value(host_arg(argv[2])).c_str());
    } else if (cmd == "wait-gone" && argc == 3) {
      std::uint64_t why = rv.wait_gone(host_arg(argv[2]));
      std::printf("%s\n", why == beluga::mh::kGoneKilled ? "killed" : "exited");
    } else if (cmd == "request-kill" && argc == 2) {
      rv.request_kill();
    } else {
      return usage();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mh_sync %s: %s\n", argv[1], e.what());
    return 1;
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
//
// The C interface of mh.h over one Rendezvous per process.
#include <cstdio>
#include <cstring>
#include <memory>

#include "mh.h"
#include "rendezvous.hpp"

namespace {

using beluga::mh::Rendezvous;

// The process's Rendezvous, joined on first use.
Rendezvous* rv() {
  static std::unique_ptr<Rendezvous> r;
  if (!r) {
    try {
      r = std::make_unique<Rendezvous>(Rendezvous::from_env());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "beluga_mh: %s\n", e.what());
      return nullptr;
    }
  }
  return r.get();
}

template <typename F>
int guarded(const char* what, F&& f) {
  Rendezvous* r = rv();
  if (!r) return -1;
  try {
    return f(*r);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beluga_mh_%s: %s\n", what, e.what());
    return -1;
  }
}

}  // namespace

extern "C" {

int beluga_mh_host(void) {
  Rendezvous* r = rv();
  return r ? static_cast<int>(r->host()) : -1;
}

int beluga_mh_hosts(void) {
  Rendezvous* r = rv();
  return r ? static_cast<int>(r->hosts()) : -1;
}

uint64_t beluga_mh_nonce(void) {
  Rendezvous* r = rv();
  return r ? r->nonce() : 0;
}

int beluga_mh_barrier(const char* name) {
  return guarded("barrier", [&](Rendezvous& r) { return r.barrier(name), 0; });
}

int beluga_mh_barrier_survivors(const char* name) {
  return guarded("barrier_survivors", [&](Rendezvous& r) { return r.barrier(name, true), 0; });
}

int beluga_mh_publish(const char* value) {
  return guarded("publish", [&](Rendezvous& r) { return r.publish(value), 0; });
}

int beluga_mh_peer(unsigned int host, char* buf, size_t len) {
  return guarded("peer", [&](Rendezvous& r) {
    std::string v = r.peer_value(host);
    if (v.size() + 1 > len) throw beluga::mh::Error("buffer too small");
    std::memcpy(buf, v.c_str(), v.size() + 1);
    return 0;
  });
}

int beluga_mh_gone(unsigned int host, int* killed) {
  return guarded("gone", [&](Rendezvous& r) {
    std::uint64_t why = 0;
    bool g = r.gone(host, &why);
    if (killed) *killed = g && why == beluga::mh::kGoneKilled;
    return g ? 1 : 0;
  });
}

int beluga_mh_request_kill(void) {
  return guarded("request_kill", [&](Rendezvous& r) { return r.request_kill(), 0; });
}

}  // extern "C"

// SPDX-License-Identifier: Apache-2.0
//
// Host test of the multi-host rendezvous on a plain file laid out as the
// runner (tests/vm/multihost.py) lays out the ivshmem control area: hosts
// are forked processes.  Checks that barriers pair up, that values pass
// between hosts, that a previous run's bytes never satisfy a barrier, that a
// gone peer fails a barrier at once, and that the kill request reaches the
// results channel.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "rendezvous.hpp"

namespace {

using beluga::mh::Error;
using beluga::mh::Rendezvous;

constexpr std::uint64_t kNonce = 0x0123456789abcdefULL;

class File {
 public:
  File() {
    char tmpl[] = "/tmp/beluga-mh-test-XXXXXX";
    int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path = tmpl;
  }
  ~File() { ::unlink(path.c_str()); }
  std::string path;
};

void put64(std::vector<unsigned char>& b, std::size_t off, std::uint64_t v) {
  for (int i = 0; i < 8; i++) b[off + i] = static_cast<unsigned char>(v >> (8 * i));
}

// A control area prepared for @hosts hosts and run @nonce, with @edit
// applied to the bytes before they are written.
void prepare(const std::string& path, unsigned hosts, std::uint64_t nonce,
             const std::function<void(std::vector<unsigned char>&)>& edit = {}) {
  std::vector<unsigned char> b(1 << 20);
  put64(b, 0, beluga::mh::kMagic);
  put64(b, 8, nonce);
  put64(b, 16, hosts | (static_cast<std::uint64_t>(beluga::mh::kVersion) << 32));
  if (edit) edit(b);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                              static_cast<std::streamsize>(b.size()));
}

std::size_t slot(unsigned h) { return beluga::mh::kSlotSize * (1 + h); }

// Runs @body(host) in one forked process per host; returns their exit codes.
std::vector<int> run_hosts(unsigned hosts, const std::function<int(unsigned)>& body) {
  std::vector<pid_t> pids;
  for (unsigned h = 0; h < hosts; h++) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int rc = 99;
      try {
        rc = body(h);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "host %u: %s\n", h, e.what());
        rc = 98;
      }
      ::_exit(rc);
    }
    pids.push_back(pid);
  }
  std::vector<int> rcs;
  for (pid_t pid : pids) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    rcs.push_back(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  }
  return rcs;
}

TEST(Rendezvous, ThreeHostsMeetAndExchangeValues) {
  File f;
  prepare(f.path, 3, kNonce);
  auto rcs = run_hosts(3, [&](unsigned h) {
    {
      // One program: publish, meet, read every peer.
      Rendezvous rv(f.path, h, 3, kNonce, 60);
      rv.publish("value of host " + std::to_string(h));
      rv.barrier("one");
      for (unsigned p = 0; p < 3; p++)
        if (rv.peer_value(p) != "value of host " + std::to_string(p)) return 1;
    }
    // A later program on the same host resumes the barrier count.
    for (int i = 0; i < 20; i++) {
      Rendezvous rv(f.path, h, 3, kNonce, 60);
      rv.barrier("round-" + std::to_string(i));
    }
    return 0;
  });
  EXPECT_EQ(rcs, (std::vector<int>{0, 0, 0}));
}

TEST(Rendezvous, RefusesAnotherRunsControlArea) {
  File f;
  prepare(f.path, 2, kNonce ^ 1);
  EXPECT_THROW(Rendezvous(f.path, 0, 2, kNonce, 1), Error);
  prepare(f.path, 3, kNonce);
  EXPECT_THROW(Rendezvous(f.path, 0, 2, kNonce, 1), Error);
}

TEST(Rendezvous, PreviousRunsBytesNeverSatisfyABarrier) {
  File f;
  // Host 1's slot as a previous run left it: joined, far past barrier 1.
  prepare(f.path, 2, kNonce, [](std::vector<unsigned char>& b) {
    put64(b, slot(1) + 0, kNonce ^ 0x5a5a);
    put64(b, slot(1) + 8, 7ULL << 32);
    put64(b, slot(1) + 32, (kNonce ^ 0x5a5a) ^ (1ULL << 32));
  });
  Rendezvous rv(f.path, 0, 2, kNonce, 1);  // host 1 never comes: bounded wait
  try {
    rv.barrier("first");
    FAIL() << "a stale slot satisfied the barrier";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did not arrive"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rv.peer_value(1), Error);
}

TEST(Rendezvous, GonePeerFailsABarrierAtOnce) {
  File f;
  // Host 1 gone (QEMU exited) in this run; the bound is far away, so only
  // the gone mark can end the wait.
  prepare(f.path, 2, kNonce, [](std::vector<unsigned char>& b) {
    put64(b, slot(1) + 24, beluga::mh::kGoneExited);
    put64(b, slot(1) + 16, kNonce);
  });
  Rendezvous rv(f.path, 0, 2, kNonce, 3600);
  try {
    rv.barrier("b", true);  // exited, not killed on request: still a failure
    FAIL() << "barrier passed with a gone peer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gone"), std::string::npos) << e.what();
  }
  std::uint64_t why = 0;
  EXPECT_TRUE(rv.gone(1, &why));
  EXPECT_EQ(why, beluga::mh::kGoneExited);
  EXPECT_EQ(rv.wait_gone(1), beluga::mh::kGoneExited);
}

TEST(Rendezvous, KilledPeerIsSkippedOnlyWhenAsked) {
  File f;
  prepare(f.path, 2, kNonce, [](std::vector<unsigned char>& b) {
    put64(b, slot(1) + 24, beluga::mh::kGoneKilled);
    put64(b, slot(1) + 16, kNonce);
  });
  Rendezvous rv(f.path, 0, 2, kNonce, 3600);
  EXPECT_NO_THROW(rv.barrier("survivors", true));
  EXPECT_THROW(rv.barrier("everyone"), Error);
}

TEST(Rendezvous, GoneMarkOfAnotherRunIsIgnored) {
  File f;
  prepare(f.path, 2, kNonce, [](std::vector<unsigned char>& b) {
    put64(b, slot(1) + 24, beluga::mh::kGoneExited);
    put64(b, slot(1) + 16, kNonce ^ 2);
  });
  Rendezvous rv(f.path, 0, 2, kNonce, 1);
  EXPECT_FALSE(rv.gone(1));
}

TEST(Rendezvous, DifferentBarriersAreReported) {
  File f;
  prepare(f.path, 2, kNonce);
  auto rcs = run_hosts(2, [&](unsigned h) {
    Rendezvous rv(f.path, h, 2, kNonce, 60);
    try {
      rv.barrier(h == 0 ? "left" : "right");
    } catch (const Error& e) {
      return std::string(e.what()).find("lists differ") != std::string::npos ? 0 : 2;
    }
    return 1;
  });
  EXPECT_EQ(rcs, (std::vector<int>{0, 0}));
}

TEST(Rendezvous, KillRequestReachesTheResultsChannel) {
  File f, tty;
  prepare(f.path, 2, kNonce);
  ::setenv("BELUGA_MH_CONTROL_TTY", tty.path.c_str(), 1);
  Rendezvous(f.path, 1, 2, kNonce, 1).request_kill();
  std::ifstream in(tty.path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "beluga-vm: kill-request 1 0123456789abcdef");
}

// Marks host @h gone (@why) in this run, as the runner does mid-run.
void mark_gone(const std::string& path, unsigned h, std::uint64_t why) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::vector<unsigned char> b(16);
  put64(b, 0, kNonce);
  put64(b, 8, why);
  f.seekp(static_cast<std::streamoff>(slot(h) + 16));
  f.write(reinterpret_cast<const char*>(b.data()), 16);
}

TEST(Rendezvous, RunUntilGoneWorksUntilThePeerIsMarked) {
  File f;
  prepare(f.path, 2, kNonce);
  Rendezvous rv(f.path, 0, 2, kNonce, 3600);
  int passes = 0;
  EXPECT_EQ(rv.run_until_gone(1,
                              [&] {
                                if (++passes == 5) mark_gone(f.path, 1, beluga::mh::kGoneKilled);
                                return true;
                              }),
            beluga::mh::kGoneKilled);
  EXPECT_EQ(passes, 5);
}

TEST(Rendezvous, RunUntilGoneFailsWithItsWorkOrItsBound) {
  File f;
  prepare(f.path, 2, kNonce);
  int passes = 0;
  try {
    Rendezvous(f.path, 0, 2, kNonce, 3600).run_until_gone(1, [&] { return ++passes < 3; });
    FAIL() << "a failed pass was not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pass 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Rendezvous(f.path, 0, 2, kNonce, 0.05).run_until_gone(1, [] { return true; }),
               Error);
}

TEST(Rendezvous, RequestKillWhileAsksThenWorksUntilItFailsOrTheBound) {
  File f, tty;
  prepare(f.path, 2, kNonce);
  ::setenv("BELUGA_MH_CONTROL_TTY", tty.path.c_str(), 1);
  int passes = 0;
  try {
    Rendezvous(f.path, 1, 2, kNonce, 3600).request_kill_while([&] { return ++passes < 4; });
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pass 4 before the kill failed"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(passes, 4);
  std::ifstream in(tty.path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "beluga-vm: kill-request 1 0123456789abcdef");
  try {
    Rendezvous(f.path, 1, 2, kNonce, 0.05).request_kill_while([] { return true; });
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the runner did not kill it"), std::string::npos)
        << e.what();
  }
}

TEST(Rendezvous, CheckFindsTheFirstDifferentWord) {
  std::vector<std::uint64_t> buf(512);
  beluga::mh::Words w{buf.data(), buf.size()};
  beluga::mh::fill(w, kNonce, 7);
  EXPECT_TRUE(beluga::mh::check(w, kNonce, 7, "intact"));
  EXPECT_FALSE(beluga::mh::check(w, kNonce, 8, "other tag"));
  buf[300] ^= 1;
  EXPECT_FALSE(beluga::mh::check(w, kNonce, 7, "one word changed"));
}

TEST(Rendezvous, PatternDependsOnNonceTagAndIndex) {
  using beluga::mh::pattern_word;
  EXPECT_EQ(pattern_word(1, 2, 3), pattern_word(1, 2, 3));
  EXPECT_NE(pattern_word(1, 2, 3), pattern_word(2, 2, 3));
  EXPECT_NE(pattern_word(1, 2, 3), pattern_word(1, 3, 3));
  EXPECT_NE(pattern_word(1, 2, 3), pattern_word(1, 2, 4));
}

}  // namespace

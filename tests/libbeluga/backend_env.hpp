// SPDX-License-Identifier: Apache-2.0
// Description: helpers shared by the GoogleTest suites: one pool per test
// on the backend under test (kernel tests skip without /dev/beluga), unique
// region names, cleanup checks, running code as uid/gid 65534, and running
// this very binary as a peer process (fork + exec of /proc/self/exe).
#ifndef BELUGA_TEST_BACKEND_ENV_HPP
#define BELUGA_TEST_BACKEND_ENV_HPP

#include <functional>
#include <string>
#include <vector>

#include <beluga/beluga.hpp>

namespace beluga_test {

// "kernel" or "user".
struct BackendParam {
	std::string name;
};

// Options for a pool of @backend; the user backend gets a private directory.
beluga::PoolOptions pool_options(const std::string &backend,
				 const std::string &user_dir);

// True when the kernel backend can run here (/dev/beluga exists).
bool have_driver();

// A per-process unique name: "<prefix>-<pid>-<n>".
std::string unique_name(const std::string &prefix);

// Run @fn in a forked child as uid/gid 65534; returns the child's exit
// status (fn's return value), or -1 if it did not exit normally.
int run_as_nobody(const std::function<int()> &fn);

// fork + exec /proc/self/exe --peer <args...>; returns its exit status.
// @keep_fd stays open (not close-on-exec) in the child.
int run_peer(const std::vector<std::string> &args, int keep_fd = -1);

// Entry point for "--peer" invocations; returns the exit status.
int peer_main(int argc, char **argv);

// Entries of a directory besides "." "..", ".lock".
int dir_entries(const std::string &dir);

// Remove a user-backend pool directory and everything in it.
void remove_dir(const std::string &dir);

} // namespace beluga_test

#endif // BELUGA_TEST_BACKEND_ENV_HPP

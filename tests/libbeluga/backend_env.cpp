// SPDX-License-Identifier: Apache-2.0
// Description: helpers shared by the GoogleTest suites (see backend_env.hpp),
// including the peer process used by the multi-process tests.
#include "backend_env.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace beluga_test {

beluga::PoolOptions pool_options(const std::string &backend,
				 const std::string &user_dir)
{
	beluga::PoolOptions o;

	o.backend = backend == "kernel" ? beluga::Backend::Kernel : beluga::Backend::User;
	if (backend == "user") {
		o.user_dir = user_dir;
		o.hugetlbfs_dir = "none";
	}
	return o;
}

bool have_driver()
{
	return access("/dev/beluga", F_OK) == 0;
}

std::string unique_name(const std::string &prefix)
{
	static std::atomic<int> n{ 0 };

	return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
}

int run_as_nobody(const std::function<int()> &fn)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		if (setgroups(0, nullptr) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(99);
		_exit(fn());
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int run_peer(const std::vector<std::string> &args, int keep_fd)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		std::vector<char *> argv;
		std::string self = "/proc/self/exe", flag = "--peer";

		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		argv.push_back(self.data());
		argv.push_back(flag.data());
		for (const auto &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		execv(self.c_str(), argv.data());
		_exit(98);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool all_bytes(const beluga::Mapping &m, std::size_t off, std::size_t len,
		      unsigned char v)
{
	const auto *p = static_cast<const unsigned char *>(m.data());

	for (std::size_t i = off; i < off + len; i++)
		if (p[i] != v)
			return false;
	return true;
}

// --peer <backend> <user_dir> open NAME BYTE: check BYTE at [0, 4K), write BYTE+1 at [1M, +4K)
// --peer <backend> <user_dir> recv FD NAME BYTE: same on a region received over FD
int peer_main(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	try {
		std::string backend = argv[2], dir = argv[3], op = argv[4];
		auto pool = beluga::Pool::open(pool_options(backend, dir));
		int arg = 5;
		auto region = op == "recv" ? pool.receive(std::atoi(argv[arg++]))
					   : pool.open_region(argv[arg++]);
		if (op == "recv" && region.name() != argv[arg++])
			return 3;
		auto byte = static_cast<unsigned char>(std::atoi(argv[arg]));
		auto map = region.map();

		if (!all_bytes(map, 0, 4096, byte))
			return 4;
		std::memset(static_cast<char *>(map.data()) + (1 << 20), byte + 1, 4096);
		return 0;
	} catch (const beluga::Error &e) {
		std::fprintf(stderr, "peer: %s\n", e.what());
		return 10;
	}
}

int dir_entries(const std::string &dir)
{
	int n = 0;

	for (const auto &e : std::filesystem::directory_iterator(dir))
		n += e.path().filename() != ".lock";
	return n;
}

void remove_dir(const std::string &dir)
{
	std::error_code ec;

	std::filesystem::remove_all(dir, ec);
}

} // namespace beluga_test

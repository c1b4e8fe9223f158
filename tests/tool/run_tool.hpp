// SPDX-License-Identifier: Apache-2.0
// Run beluga-tool as a child process and capture its exit status, stdout
// and stderr: the one runner of the tool's tests (tests/tool), the bench's
// (tests/bench) and `beluga-tool kv`'s (tests/kvcache).
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace tooltest {

// The child's exit status when execv() failed (e.g. the program lies in a
// directory the user it runs as cannot search), and when dropping to
// uid 65534 failed.
constexpr int kExecFailed = 98, kSetuidFailed = 99;

struct Result {
	int status = -1; // exit status; -1 when killed by a signal or not started
	std::string out, err;
};

struct RunOpts {
	std::vector<std::pair<std::string, std::string>> env; // added to the environment
	bool as_nobody = false;				       // run as uid/gid 65534
	bool null_stdin = false;			       // stdin from /dev/null (no terminal)
};

// The argv of @prog @args, pointing into the strings (valid while they live).
inline std::vector<char *> argv_of(const std::string &prog, const std::vector<std::string> &args)
{
	std::vector<char *> v{const_cast<char *>(prog.c_str())};
	for (const auto &a : args)
		v.push_back(const_cast<char *>(a.c_str()));
	v.push_back(nullptr);
	return v;
}

inline std::string read_all(FILE *f)
{
	std::string s;
	char buf[4096];
	rewind(f);
	for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;)
		s.append(buf, n);
	return s;
}

inline Result run_program(const std::string &prog, const std::vector<std::string> &args,
			  const RunOpts &o = {})
{
	Result r;
	FILE *out = tmpfile(), *err = tmpfile();
	pid_t pid = out && err ? fork() : -1;
	if (pid == 0) {
		auto argv = argv_of(prog, args);
		for (const auto &[k, v] : o.env)
			setenv(k.c_str(), v.c_str(), 1);
		dup2(fileno(out), 1);
		dup2(fileno(err), 2);
		if (o.null_stdin) {
			int fd = open("/dev/null", O_RDONLY);
			if (fd < 0 || dup2(fd, 0) < 0)
				_exit(kExecFailed);
		}
		if (o.as_nobody && (setgroups(0, nullptr) || setresgid(65534, 65534, 65534) ||
				    setresuid(65534, 65534, 65534)))
			_exit(kSetuidFailed);
		execv(prog.c_str(), argv.data());
		_exit(kExecFailed);
	}
	int st;
	if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st))
		r.status = WEXITSTATUS(st);
	if (out)
		r.out = read_all(out), fclose(out);
	if (err)
		r.err = read_all(err), fclose(err);
	return r;
}

} // namespace tooltest

// SPDX-License-Identifier: Apache-2.0
// A private redis-server for a benchmark or the demo: started on
// 127.0.0.1 at a free port with persistence off, stopped (SHUTDOWN NOSAVE,
// then SIGKILL if it lingers) when the object goes.  Header-only, so the
// demo program can use it too.
#pragma once

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace beluga_redis {

// A port the kernel just handed out for 127.0.0.1 (free a moment ago).
inline int free_port()
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	int port = -1;
	if (fd >= 0 && !bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) &&
	    !getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

class Server {
public:
	// Throws std::runtime_error when @path is missing or never answers.
	explicit Server(const std::string &path)
	{
		if (access(path.c_str(), X_OK))
			throw std::runtime_error(path + " not found (apt-get install redis-server)");
		for (int attempt = 0; attempt < 3 && pid_ <= 0; attempt++)
			start(path);
		if (pid_ <= 0)
			throw std::runtime_error("redis-server did not start on 127.0.0.1");
	}
	~Server() { stop(); }
	Server(const Server &) = delete;
	Server &operator=(const Server &) = delete;

	int port() const { return port_; }
	// A new connection (caller frees with redisFree); throws on failure.
	redisContext *connect() const
	{
		timeval tv = {2, 0};
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port_, tv);
		if (!c || c->err) {
			std::string e = c ? c->errstr : "out of memory";
			if (c)
				redisFree(c);
			throw std::runtime_error("connect to redis-server: " + e);
		}
		return c;
	}
	void stop()
	{
		if (pid_ <= 0)
			return;
		try {
			redisContext *c = connect();
			freeReplyObject(redisCommand(c, "SHUTDOWN NOSAVE"));
			redisFree(c);
		} catch (const std::exception &) {
		}
		for (int i = 0; i < 500 && !reaped(); i++) // up to 5 s
			usleep(10000);
		if (!reaped()) {
			kill(pid_, SIGKILL);
			waitpid(pid_, nullptr, 0);
		}
		pid_ = -1;
	}

private:
	bool reaped() { return waitpid(pid_, nullptr, WNOHANG) == pid_; }

	void start(const std::string &path)
	{
		port_ = free_port();
		std::string port = std::to_string(port_);
		pid_t pid = fork();
		if (pid < 0)
			return;
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlives us
			int null = open("/dev/null", O_RDWR);
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			execl(path.c_str(), "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
			      "--protected-mode", "yes", "--save", "", "--appendonly", "no",
			      "--daemonize", "no", "--dir", "/tmp", "--loglevel", "warning",
			      "--maxmemory", "4gb", (char *)nullptr);
			_exit(127);
		}
		pid_ = pid;
		// Ready when it answers PING (up to 10 s: slow machines, VMs).
		for (int i = 0; i < 1000; i++) {
			if (waitpid(pid_, nullptr, WNOHANG) == pid_) { // died: port taken?
				pid_ = -1;
				return;
			}
			timeval tv = {0, 200000};
			redisContext *c = redisConnectWithTimeout("127.0.0.1", port_, tv);
			bool up = false;
			if (c && !c->err) {
				auto *r = static_cast<redisReply *>(redisCommand(c, "PING"));
				up = r && r->type == REDIS_REPLY_STATUS && !std::strcmp(r->str, "PONG");
				freeReplyObject(r);
			}
			if (c)
				redisFree(c);
			if (up)
				return;
			usleep(10000);
		}
		kill(pid_, SIGKILL);
		waitpid(pid_, nullptr, 0);
		pid_ = -1;
	}

	pid_t pid_ = -1;
	int port_ = -1;
};

// SET @key to @len bytes at @data; false on any error.
inline bool set(redisContext *c, const void *key, size_t klen, const void *data, size_t len)
{
	auto *r = static_cast<redisReply *>(redisCommand(c, "SET %b %b", key, klen, data, len));
	bool ok = r && r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	return ok;
}

// GET @key into @dst (@cap bytes): the length, or -1 (missing, error, too long).
inline long get(redisContext *c, const void *key, size_t klen, void *dst, size_t cap)
{
	auto *r = static_cast<redisReply *>(redisCommand(c, "GET %b", key, klen));
	long n = -1;
	if (r && r->type == REDIS_REPLY_STRING && size_t(r->len) <= cap) {
		std::memcpy(dst, r->str, size_t(r->len));
		n = long(r->len);
	}
	freeReplyObject(r);
	return n;
}

} // namespace beluga_redis

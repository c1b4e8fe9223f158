// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool kv metrics --listen - a deliberately small HTTP
// endpoint for Prometheus scrapers: loopback only unless --allow-remote, one
// connection at a time, requests of at most 8 KiB read within a deadline,
// only GET /metrics (and HEAD); every scrape takes a fresh snapshot of the
// caches, opened once as read-only observers.  SIGINT and SIGTERM (read
// through a signalfd, so they never interrupt a half-written response) stop
// it cleanly with exit status 0.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "cmd_kv.hpp"

namespace tool::kv {
namespace {

constexpr std::size_t kMaxRequest = 8192;

class Fd {
public:
	explicit Fd(int fd = -1) : fd_(fd) {}
	Fd(Fd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
	Fd &operator=(Fd &&o) noexcept
	{
		std::swap(fd_, o.fd_);
		return *this;
	}
	~Fd()
	{
		if (fd_ >= 0)
			close(fd_);
	}
	int get() const { return fd_; }

private:
	int fd_;
};

bool is_loopback(const sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(reinterpret_cast<const sockaddr_in *>(sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6 *>(sa)->sin6_addr);
	return false;
}

// "127.0.0.1:9464", "[::1]:9464", "localhost:0".  Throws CLI::ValidationError.
Fd listen_on(const HttpOptions &o, std::string &shown)
{
	std::string host = o.listen, port;
	std::size_t colon = host.rfind(':');
	if (colon == std::string::npos)
		throw CLI::ValidationError("--listen", "expected ADDR:PORT, e.g. 127.0.0.1:9464");
	port = host.substr(colon + 1);
	host = host.substr(0, colon);
	if (host.size() > 1 && host.front() == '[' && host.back() == ']')
		host = host.substr(1, host.size() - 2);
	addrinfo hints{}, *res = nullptr;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) || !res)
		throw CLI::ValidationError("--listen", "cannot resolve " + o.listen);
	std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> hold(res, freeaddrinfo);
	if (!o.allow_remote && !is_loopback(res->ai_addr))
		throw CLI::ValidationError("--listen", o.listen + " is not a loopback address; "
							    "add --allow-remote to expose the metrics");
	Fd fd(socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0));
	int one = 1;
	if (fd.get() < 0 || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd.get(), res->ai_addr, res->ai_addrlen) || listen(fd.get(), 16))
		throw beluga::Error(-errno, "listen on " + o.listen);
	sockaddr_storage ss{};
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	getsockname(fd.get(), reinterpret_cast<sockaddr *>(&ss), &len);
	unsigned short p = 0;
	if (ss.ss_family == AF_INET) {
		auto *in = reinterpret_cast<sockaddr_in *>(&ss);
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		p = ntohs(in->sin_port);
		shown = std::string(addr) + ":" + std::to_string(p);
	} else {
		auto *in6 = reinterpret_cast<sockaddr_in6 *>(&ss);
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		p = ntohs(in6->sin6_port);
		shown = "[" + std::string(addr) + "]:" + std::to_string(p);
	}
	return fd;
}

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline)
{
	auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
	return ms.count() > 0 ? int(ms.count()) : 0;
}

// The request head (up to the blank line), or "" on timeout, EOF or excess.
std::string read_request(int fd, Clock::time_point deadline, bool &too_large)
{
	std::string req;
	char buf[1024];

	too_large = false;
	while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
		if (req.size() >= kMaxRequest) {
			too_large = true;
			return req;
		}
		pollfd p{ fd, POLLIN, 0 };
		if (poll(&p, 1, ms_left(deadline)) <= 0)
			return "";
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return "";
		req.append(buf, std::size_t(n));
	}
	return req;
}

void write_all(int fd, const std::string &data, Clock::time_point deadline)
{
	for (std::size_t off = 0; off < data.size();) {
		pollfd p{ fd, POLLOUT, 0 };
		if (poll(&p, 1, ms_left(deadline)) <= 0)
			return;
		ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		off += std::size_t(n);
	}
}

std::string response(int code, const char *reason, const std::string &type,
		     const std::string &body, bool head)
{
	return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
	       "\r\nContent-Length: " + std::to_string(body.size()) +
	       "\r\nConnection: close\r\n\r\n" + (head ? "" : body);
}

// Open caches, by name, reopened when a region of that name is replaced.
class Caches {
public:
	Caches(const Globals &g, std::vector<std::string> names)
		: pool_(open_pool(g)), names_(std::move(names))
	{
	}
	std::string scrape()
	{
		std::vector<Snapshot> snaps;
		std::map<std::string, Open> keep;
		for (const auto &r : regions()) {
			std::string n = r.name;
			auto it = open_.find(n);
			if (it == open_.end() || it->second.id != r.id) {
				auto no = not_cache_.find(n);
				if (no != not_cache_.end() && no->second == r.id)
					continue; // looked at before: not a cache we can read
				try {
					it = open_.insert_or_assign(n, Open{ r.id, observe(pool_, n) }).first;
				} catch (const beluga::kvc::Error &) {
					not_cache_[n] = r.id;
					continue;
				}
			}
			snaps.push_back(snapshot(it->second.cache, n));
			keep.insert(open_.extract(it));
		}
		open_ = std::move(keep); // release what went away (a destroyed region's memory)
		return prometheus(snaps);
	}

private:
	// The named regions, or every named region of the pool.
	std::vector<beluga::RegionInfo> regions() const
	{
		std::vector<beluga::RegionInfo> v;
		if (names_.empty()) {
			for (const auto &r : pool_.list_regions())
				if (*r.name && !(r.flags & BELUGA_INFO_DESTROYED))
					v.push_back(r);
			return v;
		}
		for (const auto &n : names_)
			if (auto r = pool_.try_stat_region(n))
				v.push_back(*r);
		return v;
	}
	struct Open {
		std::uint64_t id;
		beluga::kvc::Cache cache;
	};
	beluga::Pool pool_;
	std::vector<std::string> names_;
	std::map<std::string, Open> open_;
	std::map<std::string, std::uint64_t> not_cache_; // name -> region id
};

void answer(int fd, Caches &caches, const HttpOptions &o)
{
	auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
	bool too_large;
	std::string req = read_request(fd, deadline, too_large);
	if (too_large) {
		write_all(fd, response(431, "Request Header Fields Too Large", "text/plain", "too large\n",
				       false), deadline);
		return;
	}
	if (req.empty())
		return; // timed out or closed: nothing to answer
	std::string line = req.substr(0, req.find_first_of("\r\n"));
	char method[16] = "", path[256] = "";
	if (std::sscanf(line.c_str(), "%15s %255s HTTP/1.%*d", method, path) != 2) {
		write_all(fd, response(400, "Bad Request", "text/plain", "bad request\n", false), deadline);
		return;
	}
	bool head = !std::strcmp(method, "HEAD");
	std::string where = path;
	where = where.substr(0, where.find('?'));
	if (std::strcmp(method, "GET") && !head)
		write_all(fd, response(405, "Method Not Allowed", "text/plain", "GET only\n", false),
			  deadline);
	else if (where != "/metrics")
		write_all(fd, response(404, "Not Found", "text/plain", "try /metrics\n", head), deadline);
	else
		write_all(fd, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
				       caches.scrape(), head), deadline);
}

} // namespace

int serve(const Globals &g, const std::vector<std::string> &names, const HttpOptions &o)
{
	std::string shown;
	Fd lfd = listen_on(o, shown);
	Caches caches(g, names);
	// Signals arrive through a descriptor: the loop stops between requests.
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &stop, nullptr))
		throw beluga::Error(-errno, "block SIGINT/SIGTERM");
	Fd sfd(signalfd(-1, &stop, SFD_CLOEXEC));
	if (sfd.get() < 0)
		throw beluga::Error(-errno, "signalfd");
	std::printf("serving Prometheus metrics on http://%s/metrics (Ctrl-C stops)\n", shown.c_str());
	std::fflush(stdout);
	for (unsigned served = 0; !o.max_requests || served < o.max_requests;) {
		pollfd p[2] = { { lfd.get(), POLLIN, 0 }, { sfd.get(), POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			throw beluga::Error(-errno, "poll");
		}
		if (p[1].revents) {
			signalfd_siginfo si;
			if (read(sfd.get(), &si, sizeof(si)) == sizeof(si))
				std::printf("signal %u: stopping\n", si.ssi_signo);
			break;
		}
		Fd conn(accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
		if (conn.get() < 0)
			continue; // the client gave up already
		answer(conn.get(), caches, o);
		served++;
	}
	std::fflush(stdout);
	return kOk;
}

} // namespace tool::kv

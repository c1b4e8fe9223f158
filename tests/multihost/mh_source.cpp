// SPDX-License-Identifier: Apache-2.0
//
// mh_source: range sources across kernels (profile multihost-shared: every
// guest's beluga.ko pools the shared CXL device's range; every guest runs
// the same test and picks its role from BELUGA_VM_HOST).
//
//   mh_source handoff  the dax hand-off and give-back on every host: the
//                      boot's range source is removed and the device bound
//                      to device_dax again; host 0 writes a pattern through
//                      /dev/dax0.0 that every host reads; then
//                      'beluga-tool source add dax0.0' on every host (the
//                      identities, set_cookie=, agree), a shared region over
//                      the pattern reads it through beluga.ko (the hand-off
//                      changes no byte), the last host writes a second
//                      pattern; 'source remove' is refused (exit 8) while the
//                      region exists and gives the device back once it is
//                      gone, where every host reads the second pattern
//                      through /dev/dax0.0; finally the device is handed to
//                      beluga.ko again for the tests that follow
//   mh_source kill     every host defines one shared region, maps it with
//                      PMDs and pins all of it long-term (beluga_test.ko);
//                      host 0 writes S, the last host V; the last host asks
//                      the runner to kill its QEMU while it rewrites V and
//                      reads S; the survivors then find S and V intact, their
//                      mapping writable, their pins released and taken again,
//                      and undefine the region (their kernel log is judged
//                      as always).  Run it last: barriers with the killed
//                      host fail afterwards.
//
// Extents of the shared device used: handoff [64M, 66M), kill [96M, 104M).
// Exit status 0 pass, 1 fail, 77 skip (no range source, one host).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "beluga_test_uapi.h"
#include "mh_beluga.hpp"

namespace {

using beluga::mh::Error;
using beluga::mh::Rendezvous;
using beluga::mh::Words;
using beluga::mh::check;
using beluga::mh::fill;
using beluga::mh::open_kernel_pool;
using beluga::mh::range_source;
using beluga::mh::words;

constexpr std::uint64_t kMiB = 1 << 20, kChunk = 2 * kMiB;
const std::string kDax = "dax0.0";
const std::string kTool = "/opt/beluga/tools/beluga-tool --backend kernel";

struct Skip {
	std::string why;
};

std::string sysfs_line(const std::string &path)
{
	std::ifstream f(path);
	std::string line;
	std::getline(f, line);
	return line;
}

void sysfs_write(const std::string &path, const std::string &value)
{
	std::ofstream f(path);
	f << value << std::flush;
	if (!f)
		throw Error("writing " + value + " to " + path + " failed");
}

std::string dax_driver()
{
	char buf[256];
	ssize_t n = ::readlink(("/sys/bus/dax/devices/" + kDax + "/driver").c_str(), buf,
			       sizeof(buf) - 1);
	if (n <= 0)
		return {};
	buf[n] = '\0';
	const char *slash = std::strrchr(buf, '/');
	return slash ? slash + 1 : buf;
}

int tool(const std::string &args)
{
	std::printf("$ beluga-tool %s\n", args.c_str());
	std::fflush(stdout);
	int st = std::system((kTool + " " + args).c_str());
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

// A MAP_SHARED mapping of /dev/dax0.0 (RAII).
class DaxMap {
public:
	DaxMap(std::uint64_t off, std::size_t len) : len_(len)
	{
		int fd = ::open(("/dev/" + kDax).c_str(), O_RDWR | O_CLOEXEC);
		if (fd < 0)
			throw Error("/dev/" + kDax + ": " + std::strerror(errno));
		p_ = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    static_cast<off_t>(off));
		int err = errno;
		::close(fd);
		if (p_ == MAP_FAILED)
			throw Error("mmap /dev/" + kDax + ": " + std::strerror(err));
	}
	~DaxMap() { ::munmap(p_, len_); }
	DaxMap(const DaxMap &) = delete;
	DaxMap &operator=(const DaxMap &) = delete;
	Words words() const { return { static_cast<volatile std::uint64_t *>(p_), len_ / 8 }; }

private:
	void *p_ = MAP_FAILED;
	std::size_t len_;
};

int test_handoff(Rendezvous &rv)
{
	constexpr std::uint64_t kOff = 64 * kMiB, kLen = kChunk;
	constexpr std::uint64_t kTagDax = 0x68616e646f6666ULL, kTagBeluga = kTagDax + 1;
	const unsigned last = rv.hosts() - 1;
	const std::string name = "mh-handoff";
	bool ok = true;
	beluga::Pool pool = open_kernel_pool();

	auto boot_src = range_source(pool);
	if (!boot_src)
		throw Skip{ "no range source: the profile must release the CXL device to beluga.ko" };
	rv.barrier("handoff-start");

	// Give the boot's source back to device_dax, as 'source remove' would.
	pool.remove_source("", *boot_src);
	sysfs_write("/sys/bus/dax/drivers/device_dax/bind", kDax);
	if (dax_driver() != "device_dax")
		throw Error(kDax + " is not bound to device_dax after bind");
	std::printf("host %u: source %u removed, %s bound to device_dax\n", rv.host(), *boot_src,
		    kDax.c_str());
	rv.barrier("handoff-given-back");
	{
		DaxMap d(kOff, kLen);
		if (rv.host() == 0)
			fill(d.words(), rv.nonce(), kTagDax);
		rv.barrier("handoff-dax-written");
		ok &= check(d.words(), rv.nonce(), kTagDax,
			    "host " + std::to_string(rv.host()) + " reading host 0's pattern via /dev/" +
				    kDax);
	}
	rv.barrier("handoff-dax-read");

	// The operator's hand-off.
	if (tool("source add " + kDax) != 0)
		throw Error("beluga-tool source add " + kDax + " failed");
	if (!dax_driver().empty())
		throw Error(kDax + " still has a driver after 'source add'");
	auto src = range_source(pool, kDax);
	if (!src)
		throw Error("no source named " + kDax + " after 'source add'");
	std::string id = sysfs_line("/sys/kernel/beluga/sources/" + std::to_string(*src) + "/identity");
	std::printf("host %u: source %u %s, identity %s\n", rv.host(), *src, kDax.c_str(), id.c_str());
	ok &= id.rfind("set_cookie=0x", 0) == 0;
	rv.publish(id);
	rv.barrier("handoff-added");
	for (unsigned p = 0; p < rv.hosts(); p++)
		if (p != rv.host() && rv.peer_value(p) != id) {
			std::printf("host %u has identity %s, host %u %s\n", rv.host(), id.c_str(), p,
				    rv.peer_value(p).c_str());
			ok = false;
		}
	{
		beluga::Region r = pool.define_shared(name, *src, kOff, kLen, 0600);
		beluga::Mapping m = r.map();
		ok &= check(words(m), rv.nonce(), kTagDax,
			    "host " + std::to_string(rv.host()) + " reading the dax pattern via beluga");
		rv.barrier("handoff-defined");
		if (rv.host() == last)
			fill(words(m), rv.nonce(), kTagBeluga);
		rv.barrier("handoff-beluga-written");
		ok &= check(words(m), rv.nonce(), kTagBeluga,
			    "host " + std::to_string(rv.host()) + " reading host " +
				    std::to_string(last) + "'s pattern via beluga");
		// In use: refused, and the device stays with beluga.ko.
		if (tool("source remove " + kDax) != 8) {
			std::printf("host %u: 'source remove' of a source in use did not exit 8\n",
				    rv.host());
			ok = false;
		}
		ok &= dax_driver().empty();
	}
	pool.destroy_region(name);
	if (tool("source remove " + kDax) != 0)
		throw Error("beluga-tool source remove " + kDax + " failed");
	if (dax_driver() != "device_dax")
		throw Error(kDax + " not given back to device_dax by 'source remove'");
	rv.barrier("handoff-removed");
	{
		DaxMap d(kOff, kLen);
		ok &= check(d.words(), rv.nonce(), kTagBeluga,
			    "host " + std::to_string(rv.host()) + " reading the pattern via /dev/" +
				    kDax + " after the give-back");
	}
	rv.barrier("handoff-checked");
	// For the tests that follow: the device with beluga.ko again.
	if (tool("source add " + kDax) != 0)
		throw Error("beluga-tool source add " + kDax + " (again) failed");
	rv.barrier("handoff-done");
	return ok ? 0 : 1;
}

// Long-term pins through the test helper module (/dev/beluga_test).
class Pins {
public:
	Pins()
	{
		fd_ = ::open(BELUGA_TEST_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		if (fd_ < 0)
			throw Error(std::string(BELUGA_TEST_DEVICE_PATH) + ": " + std::strerror(errno) +
				    " (beluga_test.ko not loaded)");
	}
	~Pins() { ::close(fd_); }
	Pins(const Pins &) = delete;
	Pins &operator=(const Pins &) = delete;
	std::uint32_t pin(void *addr, std::uint64_t len)
	{
		beluga_test_pin p{};
		p.addr = reinterpret_cast<std::uintptr_t>(addr);
		p.length = len;
		p.flags = BELUGA_TEST_PIN_HOLD;
		if (::ioctl(fd_, BELUGA_TEST_IOC_PIN, &p))
			throw Error(std::string("PIN: ") + std::strerror(errno));
		if (p.nr_mismatch)
			throw Error("PIN: pinned pages are not the mapped ones");
		return p.handle;
	}
	void unpin(std::uint32_t handle)
	{
		beluga_test_unpin u{};
		u.handle = handle;
		if (::ioctl(fd_, BELUGA_TEST_IOC_UNPIN, &u))
			throw Error(std::string("UNPIN: ") + std::strerror(errno));
	}

private:
	int fd_ = -1;
};

int test_kill(Rendezvous &rv)
{
	if (rv.hosts() < 2)
		throw Skip{ "needs two hosts" };
	constexpr std::uint64_t kOff = 96 * kMiB, kHalf = 4 * kMiB;
	constexpr std::uint64_t kTagS = 0x6b696c6c2d53ULL, kTagV = 0x6b696c6c2d56ULL;
	const unsigned victim = rv.hosts() - 1;
	const std::string name = "mh-kill";
	beluga::Pool pool = open_kernel_pool();
	auto src = range_source(pool);
	if (!src)
		throw Skip{ "no range source: the profile must release the CXL device to beluga.ko" };
	bool ok = true;
	std::uint64_t pmd0 = pool.counters().pmd_faults;
	std::optional<beluga::Region> r(pool.define_shared(name, *src, kOff, 2 * kHalf, 0600));
	std::optional<beluga::Mapping> m(r->map());
	auto *base = static_cast<char *>(m->data());
	Words s{ reinterpret_cast<volatile std::uint64_t *>(base), kHalf / 8 };
	Words v{ reinterpret_cast<volatile std::uint64_t *>(base + kHalf), kHalf / 8 };
	for (std::uint64_t off = 0; off < 2 * kHalf; off += kChunk)
		(void)*static_cast<volatile char *>(base + off);
	std::printf("host %u: %s on source %u, %" PRIu64 " PMD faults for %" PRIu64 " chunks\n",
		    rv.host(), name.c_str(), *src, pool.counters().pmd_faults - pmd0,
		    2 * kHalf / kChunk);
	rv.barrier("kill-start");
	if (rv.host() == 0)
		fill(s, rv.nonce(), kTagS);
	if (rv.host() == victim)
		fill(v, rv.nonce(), kTagV);
	Pins pins;
	std::uint32_t handle = pins.pin(base, 2 * kHalf);
	std::printf("host %u: all %" PRIu64 " MiB pinned long-term\n", rv.host(), 2 * kHalf / kMiB);
	rv.barrier("kill-pinned");
	if (!check(s, rv.nonce(), kTagS, "reading S before the kill"))
		return 1;
	rv.barrier("kill-reading");

	if (rv.host() == victim) // mapped and pinned
		rv.request_kill_while([&] {
			fill(v, rv.nonce(), kTagV);
			return check(s, rv.nonce(), kTagS, "victim reading S", true);
		});

	std::uint64_t why = rv.run_until_gone(victim, [&] {
		return check(s, rv.nonce(), kTagS, "survivor reading S while the victim runs", true);
	});
	if (why != beluga::mh::kGoneKilled) {
		std::printf("host %u ended without being killed\n", victim);
		ok = false;
	}
	ok &= check(s, rv.nonce(), kTagS, "survivor reading S after the kill");
	ok &= check(v, rv.nonce(), kTagV, "survivor reading the victim's V after the kill");
	rv.barrier("kill-checked", true);
	// This host's mapping and pins still work.
	pins.unpin(handle);
	if (rv.host() == 0) {
		fill(v, rv.nonce(), kTagV + 1);
		ok &= check(v, rv.nonce(), kTagV + 1, "survivor rewriting V");
	}
	handle = pins.pin(base, 2 * kHalf);
	pins.unpin(handle);
	std::printf("host %u: pinned and unpinned the region again\n", rv.host());
	rv.barrier("kill-rewritten", true);
	if (rv.host() != 0)
		ok &= check(v, rv.nonce(), kTagV + 1, "survivor reading host 0's new V");
	m.reset();
	r.reset();
	pool.destroy_region(name);
	if (ok)
		std::printf("host %u: S and V intact, mapping and pins working across the kill of "
			    "host %u\n",
			    rv.host(), victim);
	return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	std::string what = argc == 2 ? argv[1] : "";
	if (what != "handoff" && what != "kill") {
		std::fprintf(stderr, "usage: mh_source handoff|kill\n");
		return 2;
	}
	try {
		Rendezvous rv = Rendezvous::from_env();
		return what == "handoff" ? test_handoff(rv) : test_kill(rv);
	} catch (const Skip &s) {
		std::printf("SKIP: %s\n", s.why.c_str());
		return 77;
	} catch (const std::exception &e) {
		std::printf("mh_source %s: %s\n", what.c_str(), e.what());
		return 1;
	}
}

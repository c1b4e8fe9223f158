// SPDX-License-Identifier: Apache-2.0
//
// Host test of the C interface (mh.h): one host on a control area written
// here as the runner writes it (tests/vm/multihost.py), through
// BELUGA_MH_SHM.  Exit 0 = pass.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mh.h"

#define CHECK(c)                                                   \
	do {                                                       \
		if (!(c)) {                                        \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
			return 1;                                  \
		}                                                  \
	} while (0)

int main(void)
{
	char path[] = "/tmp/beluga-mh-c-XXXXXX", buf[64];
	static unsigned char area[1 << 20];
	const uint64_t magic = 0x484d4147554c4542ULL, nonce = 0xfeedULL;
	const uint64_t hosts = 1 | ((uint64_t)1 << 32); /* 1 host, version 1 */
	int fd = mkstemp(path), killed = -1;

	CHECK(fd >= 0);
	memcpy(area, &magic, 8); /* little endian, as the runner writes it */
	memcpy(area + 8, &nonce, 8);
	memcpy(area + 16, &hosts, 8);
	CHECK(write(fd, area, sizeof(area)) == (ssize_t)sizeof(area));
	close(fd);
	setenv("BELUGA_MH_SHM", path, 1);
	setenv("BELUGA_VM_HOST", "0", 1);
	setenv("BELUGA_VM_HOSTS", "1", 1);
	setenv("BELUGA_VM_NONCE", "000000000000feed", 1);

	CHECK(beluga_mh_host() == 0);
	CHECK(beluga_mh_hosts() == 1);
	CHECK(beluga_mh_nonce() == nonce);
	CHECK(beluga_mh_publish("hello") == 0);
	CHECK(beluga_mh_barrier("one") == 0);
	CHECK(beluga_mh_peer(0, buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "hello") == 0);
	CHECK(beluga_mh_peer(0, buf, 3) == -1); /* too small: refused */
	CHECK(beluga_mh_peer(5, buf, sizeof(buf)) == -1);
	CHECK(beluga_mh_gone(0, &killed) == 0 && killed == 0);
	CHECK(beluga_mh_barrier_survivors("two") == 0);
	unlink(path);
	printf("mh.h: ok\n");
	return 0;
}

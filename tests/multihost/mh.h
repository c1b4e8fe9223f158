/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C interface to the rendezvous of a multi-host VM run (rendezvous.hpp), for
 * guest tests written in C (tests/driver/).  Link with mh_rendezvous.
 * Every function reads the environment rendezvous.hpp describes on first use
 * and prints what went wrong on stderr.  Returns: 0 on success, -1 on error
 * (beluga_mh_gone: 1 gone, 0 not gone, -1 error).
 */
#ifndef BELUGA_MH_H
#define BELUGA_MH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* This guest's index, the number of guests, the run's nonce; -1/0 when
 * this is not a multi-host guest. */
int beluga_mh_host(void);
int beluga_mh_hosts(void);
uint64_t beluga_mh_nonce(void);
/* Waits until every host reached barrier @name. */
int beluga_mh_barrier(const char *name);
/* Barrier that counts hosts killed on their own request as arrived. */
int beluga_mh_barrier_survivors(const char *name);
/* Publishes @value (NUL-terminated); peers read it after the next barrier. */
int beluga_mh_publish(const char *value);
/* Copies what @host published before the last barrier into @buf. */
int beluga_mh_peer(unsigned int host, char *buf, size_t len);
/* Whether the runner saw @host's QEMU end (*killed: 1 killed on request). */
int beluga_mh_gone(unsigned int host, int *killed);
/* Asks the runner to kill this guest's QEMU; returns at once. */
int beluga_mh_request_kill(void);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_MH_H */

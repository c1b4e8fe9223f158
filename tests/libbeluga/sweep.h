/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: fault-injection sweep - run a scenario once to count its
 * calls through the ops layer, then once per call with that call failing,
 * and check each time that the API reports the injected errno (or succeeds
 * because the failure is one the library is meant to tolerate) and that no
 * file descriptor or mapping leaks.
 */
#ifndef BELUGA_TEST_SWEEP_H
#define BELUGA_TEST_SWEEP_H

#include "fake_ops.h"

/* A scenario acquires and releases everything itself; returns 0 or -errno. */
typedef int (*scenario_fn)(struct fake *f, void *arg);

/*
 * @tolerated: NULL-terminated op names whose failure the scenario may
 * survive (e.g. "close", "mlock").  Returns the number of calls swept.
 */
long sweep(scenario_fn fn, void *arg, const char *const *tolerated);

#endif /* BELUGA_TEST_SWEEP_H */

// SPDX-License-Identifier: Apache-2.0
/*
 * skip_report.c - see skip_report.h.
 */
#define _GNU_SOURCE
#include "skip_report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void beluga_skip_report(const char *test_case, const char *reason)
{
	const char *path = getenv("BELUGA_SKIP_LOG");
	char line[1024];
	size_t len;
	int n, fd;

	n = snprintf(line, sizeof(line), "%s: %s",
		     test_case && *test_case ? test_case : "(unnamed case)",
		     reason && *reason ? reason : "(no reason given)");
	len = n < 0 ? 0 : (size_t)n < sizeof(line) - 1 ? (size_t)n
						       : sizeof(line) - 2;
	/* One line, whatever the reason holds. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	line[len] = '\0';
	fflush(stdout);
	printf("beluga-skip: %s", line);
	fflush(stdout);
	if (!path || !*path)
		return;
	/* O_APPEND: lines of concurrent processes do not overwrite each other. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0 || write(fd, line, len) != (ssize_t)len)
		fprintf(stderr, "beluga-skip: cannot append to %s: %s: this skip is not counted\n",
			path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

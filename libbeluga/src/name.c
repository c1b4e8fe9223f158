// SPDX-License-Identifier: Apache-2.0
/*
 * Description: region name rules, identical to the driver's
 * (beluga_name_valid() in kmod/beluga_region.c): 1..63 bytes of
 * [A-Za-z0-9._-], ASCII only.  No <ctype.h>: isalnum() depends on the
 * locale and may accept bytes >= 0x80.
 */
#include <string.h>

#include "internal.h"

bool beluga_name_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, BELUGA_REGION_NAME_MAX);
	if (len == 0 || len >= BELUGA_REGION_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

// SPDX-License-Identifier: MIT
/*
 * Shared by every fuzz harness: the way a broken invariant is reported so
 * that libFuzzer keeps the input.  Needs nothing but the sanitizers' runtime
 * (fuzz_net_hdr links it without the vhost-user library).
 */
#include <stdarg.h>
#include <stdio.h>
#include <sanitizer/common_interface_defs.h>

#include "fuzz_common.h"

/*
 * A broken invariant: say which through the sanitizers' report fd (fd 2
 * may be /dev/null under -close_fd_mask=2), then crash so that libFuzzer
 * saves the input.
 */
void fuzz_fail(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	__sanitizer_report_error_summary(why);
	__builtin_trap();
}

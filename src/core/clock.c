/* SPDX-License-Identifier: MIT */
/* core/clock.c: monotonic time and absolute deadlines for every blocking call. */
#include "core/internal.h"

int64_t
mp__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
mp__deadline_from_timeout(int64_t timeout_ms)
{
	if (timeout_ms < 0) {
		return -1;
	}
	/* Clamp so that a huge timeout cannot overflow into the past. */
	if (timeout_ms > INT64_MAX / 2000000) {
		return -1;
	}
	return mp__now_ns() + timeout_ms * 1000000;
}

int
mp__deadline_remaining_ms(int64_t deadline_ns)
{
	if (deadline_ns < 0) {
		return -1;
	}
	int64_t left = deadline_ns - mp__now_ns();
	if (left <= 0) {
		return 0;
	}
	/* Round up: poll() with 0 ms left would spin instead of waiting. */
	int64_t ms = (left + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

bool
mp__deadline_expired(int64_t deadline_ns)
{
	return deadline_ns >= 0 && mp__now_ns() >= deadline_ns;
}

/* reserve/parse.c — option values in tmpfs syntax: size=, nr_inodes=,
 * reserve=.
 *
 * Hand-rolled rather than strtoull: strtoull accepts leading blanks, a sign
 * ("-1" silently becomes 2^64-1) and saturates on overflow, all of which must
 * be -EINVAL here.  Numbers are decimal only (tmpfs also takes 0x/0 prefixes;
 * nobody sizes a disk in octal, and "010" meaning 8 would surprise).
 * Percentages are whole numbers ("1.5G" and "2.5%" are rejected).
 */
#include <errno.h>
#include <string.h>

#include "reserve.h"

/* Parses the leading decimal digits of @s into *val; *rest points past them.
 * -EINVAL if there are none or the value does not fit in 64 bits. */
static int rsv_parse_digits(const char *s, uint64_t *val, const char **rest)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*val = v;
	*rest = s;
	return 0;
}

/* The power-of-1024 shift for suffix @c among the first @nr of "kmgtpe",
 * either case; -1 if @c is not one of them. */
static int rsv_suffix_shift(char c, int nr)
{
	static const char suffixes[] = "kmgtpe";
	const char *p;

	if (c >= 'A' && c <= 'Z')
		c = (char)(c - 'A' + 'a');
	p = c ? strchr(suffixes, c) : NULL;
	if (!p || p - suffixes >= nr)
		return -1;
	return (int)(p - suffixes + 1) * 10;
}

/* ceil(@base * @pct / @div) or -EINVAL if it does not fit in 64 bits.
 * 128-bit arithmetic: a percentage of a large disk overflows 64 bits long
 * before the result does. */
static int rsv_percent_of(uint64_t base, uint64_t pct, uint64_t div, uint64_t *out)
{
	unsigned __int128 v = ((unsigned __int128)base * pct + div - 1) / div;

	if (v > UINT64_MAX)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

/* Shared by size= and nr_inodes=: a number with one of the first @nr_suffix
 * suffixes, or "N%" of @base; the result in units of @unit, rounded up
 * (a partial page still needs a whole page of backing). */
static int rsv_parse_amount(const char *s, uint64_t base, int nr_suffix,
			    uint64_t unit, uint64_t *out)
{
	const char *rest;
	uint64_t v, res;
	int shift;

	if (!s || rsv_parse_digits(s, &v, &rest) || v == 0)
		return -EINVAL;
	if (rest[0] == '%' && rest[1] == '\0') {
		if (rsv_percent_of(base, v, 100 * unit, &res))
			return -EINVAL;
	} else {
		if (rest[0] != '\0') {
			shift = rsv_suffix_shift(rest[0], nr_suffix);
			if (shift < 0 || rest[1] != '\0')
				return -EINVAL;
			/* The value, scaled, must still fit in 64 bits. */
			if (v > (UINT64_MAX >> shift))
				return -EINVAL;
			v <<= shift;
		}
		res = v / unit + (v % unit != 0);
	}
	/* "1%" of an empty backing filesystem is as useless as "0". */
	if (res == 0)
		return -EINVAL;
	*out = res;
	return 0;
}

int rsv_parse_size(const char *s, uint64_t backing_bytes, uint64_t *pages)
{
	uint64_t res;

	if (rsv_parse_amount(s, backing_bytes, 6, RSV_PAGE_SIZE, &res) || res >= RSV_MAX_PAGES)
		return -EINVAL;
	*pages = res;
	return 0;
}

int rsv_parse_count(const char *s, uint64_t backing_inodes, uint64_t *count)
{
	return rsv_parse_amount(s, backing_inodes, 3, 1, count);
}

int rsv_parse_mode(const char *s, enum rsv_mode *mode)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "eof") == 0)
		*mode = RSV_MODE_EOF;
	else if (strcmp(s, "write") == 0)
		*mode = RSV_MODE_WRITE;
	else
		return -EINVAL;
	return 0;
}

const char *rsv_mode_name(enum rsv_mode mode)
{
	switch (mode) {
	case RSV_MODE_EOF:
		return "eof";
	case RSV_MODE_WRITE:
		return "write";
	}
	return "unknown";
}

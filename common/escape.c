/* Peer text made safe for logs and status output: escaped and capped. */
#include <stdio.h>
#include <string.h>

#include "common.h"

#define ESC_SLOTS	8

/*
 * Copy src into dst (size dstsz) with every byte that is not printable
 * ASCII written as \xNN and a backslash as \\, so a peer cannot forge a
 * log line, move the cursor or spoof UTF-8; cut at max input bytes with
 * "..." appended. Returns dst. NULL becomes "".
 */
char *
escape_str(char *dst, size_t dstsz, const char *src, size_t max)
{
	size_t o = 0, i;
	unsigned char c;

	if (dstsz == 0)
		return dst;
	if (src == NULL)
		src = "";
	for (i = 0; src[i] != '\0'; i++) {
		c = (unsigned char)src[i];
		if (i >= max || o + 5 >= dstsz) {
			if (o + 4 <= dstsz)
				memcpy(dst + o, "...", 3), o += 3;
			break;
		}
		if (c == '\\') {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else if (c >= 0x20 && c < 0x7f)
			dst[o++] = (char)c;
		else
			o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02x", c);
	}
	dst[o] = '\0';
	return dst;
}

/*
 * escape_str into one of ESC_SLOTS static buffers, for log arguments:
 * up to ESC_SLOTS calls may appear in one log statement. Peer strings
 * are capped at ESC_MAX bytes.
 */
const char *
esc(const char *src)
{
	static char buf[ESC_SLOTS][ESC_MAX * 4 + 8];
	static unsigned int next;

	return escape_str(buf[next++ % ESC_SLOTS], sizeof buf[0], src, ESC_MAX);
}

/* Does s carry only printable ASCII (a name fit for logs and status)? */
int
str_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

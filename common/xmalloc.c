/* Allocation that never returns NULL: out of memory is fatal. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* malloc or die. */
void *
xmalloc(size_t n)
{
	void *p;

	if (n == 0)
		n = 1;
	if ((p = malloc(n)) == NULL)
		fatal("xmalloc %zu", n);
	return p;
}

/* calloc or die. */
void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if ((p = calloc(nmemb, size)) == NULL)
		fatal("xcalloc %zu x %zu", nmemb, size);
	return p;
}

/* Overflow-checked realloc or die. */
void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > (size_t)-1 / size) {
		errno = ENOMEM;
		fatal("xreallocarray overflow");
	}
	if ((p = realloc(ptr, (nmemb * size) != 0 ? nmemb * size : 1)) == NULL)
		fatal("xreallocarray %zu x %zu", nmemb, size);
	return p;
}

/* strdup or die. */
char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("xstrdup");
	return p;
}

/* strndup or die. */
char *
xstrndup(const char *s, size_t n)
{
	char *p;

	if ((p = strndup(s, n)) == NULL)
		fatal("xstrndup");
	return p;
}

/* asprintf or die. */
int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("xasprintf");
	return n;
}

/* Logging to stderr with levels; journald reads the <N> prefixes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common.h"

static const char *log_prog = "simtun";
static int log_verbose;
static int log_journal;

/* Route libevent's own warnings through our log so they carry a level. */
static void
log_event_cb(int sev, const char *msg)
{
	switch (sev) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

/* Set the program name and verbosity; detect journald on stderr. */
void
log_init(const char *prog, int verbose)
{
	log_prog = prog;
	log_verbose = verbose;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	event_set_log_callback(log_event_cb);
}

/* Allow -v to be applied after log_init (and SIGHUP reload to change it). */
void
log_set_verbose(int v)
{
	log_verbose = v;
}

/* Callers use this to decide whether to build expensive debug strings. */
int
log_get_verbose(void)
{
	return log_verbose;
}

/* Write one line; errno is preserved so callers can log then test it. */
void
log_vmsg(int level, const char *fmt, va_list ap)
{
	int saved = errno;
	char buf[2048];
	const char *tag;

	if (level == LOG_LVL_DEBUG && log_verbose < 1)
		return;
	vsnprintf(buf, sizeof buf, fmt, ap);
	switch (level) {
	case LOG_LVL_ERROR: tag = "error"; break;
	case LOG_LVL_WARN: tag = "warning"; break;
	case LOG_LVL_DEBUG: tag = "debug"; break;
	default: tag = NULL; break;
	}
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", level, tag ? tag : "",
		    tag ? ": " : "", buf);
	else {
		struct timespec ts;
		struct tm tm;
		char tbuf[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(tbuf, sizeof tbuf, "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s%s%s\n", tbuf,
		    ts.tv_nsec / 1000000, log_prog, tag ? tag : "",
		    tag ? ": " : "", buf);
	}
	errno = saved;
}

/* Log at an explicit level. */
void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

#define LOG_FN(name, level)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_vmsg(level, fmt, ap);				\
	va_end(ap);						\
}
/* Level shortcuts: debug only with -v. */
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warnx, LOG_LVL_WARN)
LOG_FN(log_error, LOG_LVL_ERROR)

/* Warning with strerror(errno) appended. */
void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_WARN, "%s: %s", buf, strerror(saved));
	errno = saved;
}

/* Invariant broken or out of memory, with errno: stop the daemon. */
void
fatal(const char *fmt, ...)
{
	int saved = errno;
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_ERROR, "fatal: %s: %s", buf, strerror(saved));
	exit(1);
}

/* Invariant broken: stop the daemon. */
void
fatalx(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_ERROR, "fatal: %s", buf);
	exit(1);
}

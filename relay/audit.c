/*
 * The audit trail: every operator channel and every connection to a device
 * port is an event (open, deny, close). Each event is one log line, one
 * journald entry with SIMTUN_* fields (journalctl SIMTUN_DEVICE=pi-01),
 * and, when audit_log is set, one JSON line appended to that file. No
 * secret is ever part of an event: names, fingerprints, addresses, counts.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "relay.h"

/*
 * Under systemd our stderr already is the journal (JOURNAL_STREAM names
 * it): then an event goes to the journal once, with its fields, instead
 * of also as a plain stderr line.
 */
static int
audit_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* An event's who and where; bytes and duration stay 0 until set. */
void
audit_init(struct audit *a, const char *event, const char *operator,
    const char *operator_fp, const char *source, int source_port,
    const char *device, int port, const char *reason)
{
	memset(a, 0, sizeof *a);
	a->event = event;
	a->operator = operator;
	a->operator_fp = operator_fp;
	a->source = source;
	a->source_port = source_port;
	a->device = device;
	a->port = port;
	a->reason = reason;
}

/* (Re)open audit_log for appending; at start and on SIGHUP (logrotate). */
int
audit_open(struct relay *r)
{
	int fd;

	if (r->hostname[0] == '\0' &&
	    gethostname(r->hostname, sizeof r->hostname - 1) == -1)
		snprintf(r->hostname, sizeof r->hostname, "relay");
	if (r->conf.audit_log == NULL) {
		audit_close(r);
		return 0;
	}
	fd = open(r->conf.audit_log, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1) {
		log_warn("audit_log %s", r->conf.audit_log);
		return -1;
	}
	audit_close(r);
	r->audit_fd = fd;
	return 0;
}

/* Stop writing the JSON file. */
void
audit_close(struct relay *r)
{
	if (r->audit_fd >= 0)
		close(r->audit_fd);
	r->audit_fd = -1;
}

/* The JSON line of an event, appended whole (one write, O_APPEND). */
static void
audit_json(struct relay *r, const struct audit *a, const char *msg)
{
	struct evbuffer *b;
	struct tm tm;
	struct timespec now;
	char ts[64];
	size_t len;
	ssize_t n;

	if ((b = evbuffer_new()) == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	evbuffer_add_printf(b, "{\"time\":\"%s.%03ldZ\",\"event\":", ts,
	    now.tv_nsec / 1000000);
	json_string(b, a->event);
	evbuffer_add_printf(b, ",\"relay\":");
	json_string(b, r->hostname);
	evbuffer_add_printf(b, ",\"operator\":");
	json_string(b, a->operator ? a->operator : "-");
	evbuffer_add_printf(b, ",\"operator_fp\":");
	json_string(b, a->operator_fp ? a->operator_fp : "-");
	evbuffer_add_printf(b, ",\"source\":");
	json_string(b, a->source);
	evbuffer_add_printf(b, ",\"source_port\":%d,\"device\":",
	    a->source_port);
	json_string(b, a->device);
	evbuffer_add_printf(b, ",\"port\":%d,\"bytes_to_device\":%llu,"
	    "\"bytes_from_device\":%llu,\"duration\":%.3f,\"reason\":",
	    a->port, (unsigned long long)a->to_device,
	    (unsigned long long)a->from_device, a->duration);
	json_string(b, a->reason ? a->reason : "");
	if (a->grant != 0)
		evbuffer_add_printf(b, ",\"grant\":%llu",
		    (unsigned long long)a->grant);
	if (a->asked_by != NULL) {
		evbuffer_add_printf(b, ",\"asked_by\":");
		json_string(b, a->asked_by);
	}
	if (a->via != NULL) {
		evbuffer_add_printf(b, ",\"via\":");
		json_string(b, a->via);
	}
	evbuffer_add_printf(b, ",\"message\":");
	json_string(b, msg);
	evbuffer_add(b, "}\n", 2);
	len = evbuffer_get_length(b);
	n = write(r->audit_fd, evbuffer_pullup(b, -1), len);
	if (n != (ssize_t)len) {
		static time_t warned;

		if (time(NULL) != warned) {
			warned = time(NULL);
			log_warnx("audit_log %s: %s", r->conf.audit_log,
			    n == -1 ? strerror(errno) : "short write");
		}
	}
	evbuffer_free(b);
}

/*
 * One event. The message (printf-style) is its log line; quiet: no log
 * line (a flood the caller rate-limits), the journal and the file still
 * get it.
 */
void
audit_event(struct relay *r, const struct audit *a, int quiet,
    const char *fmt, ...)
{
	static int journal = -1;
	char msg[768], port[16], sport[16], to[32], from[32], dur[32];
	char grant[32];
	va_list ap;

	if (journal == -1)
		journal = audit_stderr_is_journal();
	devices_audit(a);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!quiet && !journal)
		log_info("%s", msg);
	snprintf(port, sizeof port, "%d", a->port);
	snprintf(sport, sizeof sport, "%d", a->source_port);
	snprintf(to, sizeof to, "%llu", (unsigned long long)a->to_device);
	snprintf(from, sizeof from, "%llu",
	    (unsigned long long)a->from_device);
	snprintf(dur, sizeof dur, "%.3f", a->duration);
	snprintf(grant, sizeof grant, "%llu", (unsigned long long)a->grant);
	sd_journal_send("MESSAGE=simtun-relay: %s", msg,
	    "PRIORITY=%d", strcmp(a->event, "deny") == 0 ? LOG_WARNING :
	    LOG_INFO,
	    "SYSLOG_IDENTIFIER=simtun-relay",
	    "SIMTUN_EVENT=%s", a->event,
	    "SIMTUN_RELAY=%s", r->hostname,
	    "SIMTUN_OPERATOR=%s", a->operator ? a->operator : "-",
	    "SIMTUN_OPERATOR_FP=%s", a->operator_fp ? a->operator_fp : "-",
	    "SIMTUN_SOURCE=%s", a->source,
	    "SIMTUN_SOURCE_PORT=%s", sport,
	    "SIMTUN_DEVICE=%s", a->device,
	    "SIMTUN_PORT=%s", port,
	    "SIMTUN_BYTES_TO_DEVICE=%s", to,
	    "SIMTUN_BYTES_FROM_DEVICE=%s", from,
	    "SIMTUN_DURATION=%s", dur,
	    "SIMTUN_REASON=%s", a->reason ? a->reason : "",
	    "SIMTUN_GRANT=%s", a->grant ? grant : "-",
	    "SIMTUN_ASKED_BY=%s", a->asked_by ? a->asked_by : "-",
	    "SIMTUN_VIA=%s", a->via ? a->via : "-",
	    NULL);
	if (r->audit_fd >= 0)
		audit_json(r, a, msg);
}

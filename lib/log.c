/*
 * log - leveled logging to stderr or syslog. See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_LVL_INFO;
static atomic_int log_syslog;
static atomic_int log_startup_fd = -1;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void
log_set_level(enum log_level lvl)
{
	atomic_store(&log_level, (int)lvl);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

const char *
log_level_name(enum log_level lvl)
{
	return (unsigned)lvl < 4 ? level_names[lvl] : "?";
}

int
log_open_syslog(const char *ident, const char *facility)
{
	static const struct { const char *name; int fac; } facs[] = {
		{ "daemon", LOG_DAEMON }, { "mail", LOG_MAIL }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	for (size_t i = 0; i < sizeof(facs) / sizeof(facs[0]); i++) {
		if (strcasecmp(facility, facs[i].name) == 0) {
			openlog(ident, LOG_PID | LOG_NDELAY, facs[i].fac);
			atomic_store(&log_syslog, 1);
			return 0;
		}
	}
	return -1;
}

void
log_use_stderr(void)
{
	if (atomic_exchange(&log_syslog, 0))
		closelog();
}

void
log_set_startup_fd(int fd)
{
	atomic_store(&log_startup_fd, fd);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	va_list ap;
	int fd;

	if ((int)lvl > atomic_load(&log_level))
		return;
	if (!atomic_load(&log_syslog)) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s: ",
		    ts.tv_nsec / 1000000, level_names[lvl]);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One line per message: control characters from data never split it. */
	for (char *p = line + n; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	n = strlen(line);
	if (atomic_load(&log_syslog)) {
		syslog(level_prio[lvl], "%s", line);
	} else {
		line[n] = '\n';
		(void)!write(STDERR_FILENO, line, n + 1);
		line[n] = '\0';
	}
	fd = atomic_load(&log_startup_fd);
	if (lvl == LOG_LVL_ERROR && fd >= 0) {
		line[n] = '\n';
		(void)!write(fd, line, n + 1);
	}
}

/*
 * log - leveled logging for the daemon and the CLI.
 *
 * One sink at a time: stderr (foreground, CLI) or syslog (daemon mode).
 * Messages are formatted into one line and written with a single call, so
 * threads may log concurrently. Optionally, error messages are also copied
 * to a "startup fd" (the pipe a daemonizing parent waits on), so that a
 * start-up failure reaches the terminal that started the daemon.
 * It does not rotate files: syslog or logrotate (contrib/) do that.
 */
#ifndef LEADCAST_LOG_H
#define LEADCAST_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level lvl);
/* Switch to syslog with the given ident and facility name ("daemon", "local0".."local7"). */
int log_open_syslog(const char *ident, const char *facility);
/* Back to stderr (the default). */
void log_use_stderr(void);
/* Also copy ERROR messages to fd (-1 to stop). */
void log_set_startup_fd(int fd);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LVL_DEBUG) \
	log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif

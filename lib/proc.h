/*
 * proc - process plumbing for the daemon: running a helper program,
 * the pid file lock, daemonizing with a start-up report back to the
 * terminal, and dropping root privileges.
 *
 * Every function reports failure as -1 with a one-line message saying
 * what to do. It does not know about configuration or the event loop.
 */
#ifndef LEADCAST_PROC_H
#define LEADCAST_PROC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Run argv[0] (a path) with argv, stdin from /dev/null and stdout+stderr
 * appended to logfile (or discarded if NULL); wait for it. Returns its exit
 * status (0..255), or -1 if it could not be run or was killed.
 */
int proc_run(char *const argv[], const char *logfile);

/* Look up a user. 0, or -1 with err. */
int proc_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t n);
/* Create dir (and parents) with mode if missing, owned by uid:gid when we
 * are root; refuse a directory owned by someone other than uid. */
int proc_prepare_dir(const char *dir, uid_t uid, gid_t gid, mode_t mode,
    char *err, size_t n);
/* Switch to uid/gid for good (supplementary groups of user too). */
int proc_drop_privileges(const char *user, uid_t uid, gid_t gid, char *err,
    size_t n);

/* Open and lock path; returns the fd (kept open for the process's life)
 * or -1 when another process holds it (err names its pid). */
int proc_lock_pidfile(const char *path, char *err, size_t n);
/* Write our pid into the locked pid file. */
int proc_write_pid(int fd);

/*
 * Detach from the terminal. The parent waits until the daemon calls
 * proc_daemon_ready() (then exits 0) or fails during start-up (then prints
 * what it reported and exits 1). Returns the write end of the report pipe
 * in the daemon; -1 on failure (still in the original process).
 */
int proc_daemonize(char *err, size_t n);
/* Start-up succeeded: release the waiting parent and detach stdio. */
void proc_daemon_ready(int fd);

#endif

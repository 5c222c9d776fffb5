/*
 * proc - child processes, pid file, daemonizing, privileges. See proc.h.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int
proc_run(char *const argv[], const char *logfile)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = logfile ? open(logfile, O_WRONLY | O_CREAT | O_APPEND,
		    0600) : open("/dev/null", O_WRONLY);

		if (in < 0 || out < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		/* the daemon's own descriptors are close-on-exec */
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int
proc_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t n)
{
	struct passwd *pw = getpwnam(name);

	if (!pw) {
		snprintf(err, n, "user '%s' does not exist: create it (useradd "
		    "--system --home-dir /nonexistent --shell /usr/sbin/nologin "
		    "%s) or set 'user' in the configuration", name, name);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
proc_prepare_dir(const char *dir, uid_t uid, gid_t gid, mode_t mode,
    char *err, size_t n)
{
	char path[4096];
	struct stat st;

	if (strlen(dir) >= sizeof(path)) {
		snprintf(err, n, "path too long: %s", dir);
		return -1;
	}
	/* parents: as the system would make them, owned by us */
	strcpy(path, dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			snprintf(err, n, "cannot create %s: %s", path,
			    strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(dir, mode) == 0) {
		if (geteuid() == 0 && chown(dir, uid, gid) < 0) {
			snprintf(err, n, "cannot chown %s: %s", dir,
			    strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		snprintf(err, n, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, n, "%s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != uid) {
		struct passwd *pw = getpwuid(uid);

		snprintf(err, n, "%s is owned by uid %u, not by %s (uid %u): "
		    "chown -R %s %s, or choose another state_dir", dir,
		    (unsigned)st.st_uid, pw ? pw->pw_name : "the daemon user",
		    (unsigned)uid, pw ? pw->pw_name : "USER", dir);
		return -1;
	}
	return 0;
}

int
proc_drop_privileges(const char *user, uid_t uid, gid_t gid, char *err,
    size_t n)
{
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		snprintf(err, n, "cannot switch to user %s: %s", user,
		    strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, n, "could regain root after dropping to %s", user);
		return -1;
	}
	/* libraries look in $HOME (libesmtp for client certificates): the
	 * new user's, not root's, which it cannot read */
	{
		struct passwd *pw = getpwuid(uid);

		if (pw && pw->pw_dir && setenv("HOME", pw->pw_dir, 1) < 0) {
			snprintf(err, n, "cannot set HOME: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
proc_lock_pidfile(const char *path, char *err, size_t n)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	char pid[32] = "";

	if (fd < 0) {
		snprintf(err, n, "cannot open pid file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t r = read(fd, pid, sizeof(pid) - 1);

		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, n, "another leadcastd (pid %s) is running with this "
		    "state directory (%s is locked)", *pid ? pid : "?", path);
		close(fd);
		return -1;
	}
	return fd;
}

int
proc_write_pid(int fd)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
		return -1;
	return 0;
}

int
proc_daemonize(char *err, size_t n)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, n, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, n, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* The original process: relay the daemon's report. */
		char buf[4096];
		ssize_t r;
		int ready = 0;

		close(p[1]);
		while ((r = read(p[0], buf, sizeof(buf))) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			/* a NUL byte at the end means "started" */
			ready = buf[r - 1] == '\0';
			(void)!write(STDERR_FILENO, buf, (size_t)(r - ready));
		}
		_exit(ready ? 0 : 1);
	}
	close(p[0]);
	if (setsid() < 0) {
		snprintf(err, n, "setsid: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, n, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);       /* the session leader goes; its child stays */
	umask(027);
	return p[1];
}

void
proc_daemon_ready(int fd)
{
	int null = open("/dev/null", O_RDWR);

	(void)!write(fd, "", 1);
	close(fd);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
}

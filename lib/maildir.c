/*
 * maildir - write messages into a Maildir. See maildir.h.
 */
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong maildir_seq;

int
maildir_prepare(const char *dir, char *err, size_t n)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	char p[4096];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
		struct stat st;

		if ((mkdir(p, 0700) < 0 && errno != EEXIST) ||
		    stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, n, "cannot create maildir %s: %s", p,
			    errno == EEXIST || errno == 0 ? "not a directory" :
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
maildir_deliver(const char *dir, const char *data, size_t len, char *name,
    size_t namelen, char *err, size_t n)
{
	char base[128], tmp[4096], dst[4096], host[64] = "localhost";
	struct timespec ts;
	size_t off = 0;
	int fd;

	clock_gettime(CLOCK_REALTIME, &ts);
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, "/:")] = '\0';
	snprintf(base, sizeof(base), "%lld.M%ldP%ldQ%lu.%s", (long long)ts.tv_sec,
	    ts.tv_nsec / 1000, (long)getpid(),
	    atomic_fetch_add(&maildir_seq, 1), host);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
	snprintf(dst, sizeof(dst), "%s/new/%s", dir, base);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		snprintf(err, n, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, n, "writing %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	off = fsync(fd) < 0;
	if (close(fd) < 0 || off || rename(tmp, dst) < 0) {
		snprintf(err, n, "delivering %s: %s", dst, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (name)
		snprintf(name, namelen, "%s", base);
	return 0;
}

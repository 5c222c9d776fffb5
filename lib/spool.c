/*
 * spool - a durable overflow file of lines. See spool.h.
 */
#include "spool.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct spool {
	pthread_mutex_t lock;
	char *path;
	char *replay;
	int fd;                         /* PATH for appending, or -1 */
	off_t replay_done;              /* bytes of PATH.replay consumed */
};

struct spool *
spool_new(const char *path)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (!s || !(s->path = strdup(path)) ||
	    asprintf(&s->replay, "%s.replay", path) < 0) {
		if (s)
			free(s->path);
		free(s);
		return NULL;
	}
	s->fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void
spool_free(struct spool *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s->replay);
	free(s);
}

/* fsync the directory, so a created or renamed file is durable too. */
static void
sync_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd;

	if (!dir)
		return;
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strcpy(dir, ".");
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int
spool_append(struct spool *s, const void *data, size_t len)
{
	const char *p = data;
	int rc = 0, e = 0;

	pthread_mutex_lock(&s->lock);
	if (s->fd < 0) {
		s->fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0600);
		if (s->fd < 0) {
			e = errno;
			rc = -1;
			goto out;
		}
		sync_dir(s->path);
	}
	while (len > 0) {
		ssize_t w = write(s->fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : EIO;
			rc = -1;
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fdatasync(s->fd) < 0) {
		e = errno;
		rc = -1;
	}
out:
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		errno = e;
	return rc;
}

static unsigned long long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (unsigned long long)st.st_size : 0;
}

unsigned long long
spool_pending(struct spool *s)
{
	unsigned long long n, r;

	pthread_mutex_lock(&s->lock);
	n = file_size(s->path);
	r = file_size(s->replay);
	if (r > (unsigned long long)s->replay_done)
		n += r - (unsigned long long)s->replay_done;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int
spool_replay_begin(struct spool *s)
{
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (access(s->replay, F_OK) == 0) {
		rc = 1;
	} else if (file_size(s->path) > 0) {
		if (s->fd >= 0) {
			close(s->fd);
			s->fd = -1;
		}
		if (rename(s->path, s->replay) == 0) {
			sync_dir(s->path);
			s->replay_done = 0;
			rc = 1;
		} else {
			rc = -1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

ssize_t
spool_replay_read(struct spool *s, off_t off, struct buf *out, size_t max)
{
	int fd = open(s->replay, O_RDONLY | O_CLOEXEC);
	char *chunk;
	ssize_t got, used = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (!(chunk = malloc(max))) {
		close(fd);
		return -1;
	}
	do {
		got = pread(fd, chunk, max, off);
	} while (got < 0 && errno == EINTR);
	close(fd);
	if (got > 0) {
		char *nl = memrchr(chunk, '\n', (size_t)got);

		if (nl) {
			used = nl - chunk + 1;
			if (buf_append(out, chunk, (size_t)used) < 0)
				used = -1;
		} else if ((size_t)got < max) {
			used = got;     /* a torn last line: skip it */
		} else {
			used = got;     /* a line longer than max: not ours */
		}
	} else if (got < 0) {
		used = -1;
	}
	free(chunk);
	if (used > 0) {
		pthread_mutex_lock(&s->lock);
		s->replay_done = off + used;
		pthread_mutex_unlock(&s->lock);
	}
	return used;
}

int
spool_replay_done(struct spool *s)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = unlink(s->replay) == 0 || errno == ENOENT ? 0 : -1;
	s->replay_done = 0;
	if (rc == 0)
		sync_dir(s->path);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/*
 * spool - a durable overflow file of records (text lines) for when their
 * real home, the database, cannot take them: each append is written and
 * fdatasync'd before it returns, so a record spooled survives a crash.
 *
 * Two files: PATH, appended to, and PATH.replay, being replayed. Replay
 * begins by renaming PATH to PATH.replay (when there is no replay file
 * already), so appends never race with the reader; the reader walks
 * PATH.replay in chunks of whole lines and removes it once every chunk is
 * stored. A torn last line (a crash in the middle of a write) is skipped.
 * Replaying a chunk twice must be harmless to the caller (records carry
 * unique ids). Appends are serialized by a mutex: any thread may append.
 * Appends and reads block on the disk: call them off the event loop.
 * It does not know what the lines mean.
 */
#ifndef LEADCAST_SPOOL_H
#define LEADCAST_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

struct buf;
struct spool;

/* The spool at path (copied); nothing is opened yet. NULL on ENOMEM. */
struct spool *spool_new(const char *path);
void spool_free(struct spool *s);
/* Append len bytes (whole lines) and sync. 0, or -1 with errno set. */
int spool_append(struct spool *s, const void *data, size_t len);
/* Bytes waiting: in PATH plus what is left of PATH.replay. */
unsigned long long spool_pending(struct spool *s);
/*
 * Start or continue a replay: 1 if PATH.replay exists (renaming PATH to it
 * first if needed and PATH is not empty), 0 if there is nothing to replay,
 * -1 on error (errno).
 */
int spool_replay_begin(struct spool *s);
/*
 * Read whole lines of PATH.replay from offset off, at most max bytes
 * (at least one line if it fits in max), into out. Returns the bytes
 * consumed from the file (lines read, and a torn tail skipped at the end),
 * 0 at the end, -1 on error.
 */
ssize_t spool_replay_read(struct spool *s, off_t off, struct buf *out,
    size_t max);
/* Every line of PATH.replay is stored: remove it. 0 or -1. */
int spool_replay_done(struct spool *s);

#endif

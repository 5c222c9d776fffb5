/*
 * maildir - the development transport: each message becomes a file in a
 * Maildir (tmp/ then rename into new/, fsync'd), where a mail client or a
 * test can read it. It does not read or expire mail.
 */
#ifndef LEADCAST_MAILDIR_H
#define LEADCAST_MAILDIR_H

#include <stddef.h>

/* Create dir/{tmp,new,cur} if missing. 0 or -1 with err. */
int maildir_prepare(const char *dir, char *err, size_t n);
/* Deliver data into dir; the file name (relative to dir/new) goes to name
 * (size namelen) if not NULL. 0 or -1 with err. Thread-safe. */
int maildir_deliver(const char *dir, const char *data, size_t len,
    char *name, size_t namelen, char *err, size_t n);

#endif

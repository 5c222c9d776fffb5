/*
 * nodelay - the daemon's socket calls around the libraries' own:
 * connect(), write(), read(), poll() and close() defined in the daemon's
 * executable, so that the dynamic linker binds libesmtp's (and libetpan's,
 * ldns's, libpq's, OpenSSL's) calls to them. Each does what the C library
 * does (it calls it) plus one thing:
 *
 * - connect() turns Nagle's algorithm off (TCP_NODELAY) on every TCP
 *   socket before connecting. libesmtp and the others have no hook for
 *   socket options, and with Nagle the end of each message (a small write
 *   after large ones) waits for the peer's delayed ACK: about 40 ms per
 *   message. Every protocol leadcastd speaks is request/response, so none
 *   wants Nagle. It also tells lib/smtp.c which socket the calling thread
 *   connected (smtp_connected()).
 *
 * - write() to the socket of this thread's SMTP session (smtp_gathers())
 *   keeps the bytes in a buffer of the thread instead of sending them, and
 *   read(), poll() and close() of that socket send what was kept first,
 *   in one write. libesmtp writes a message in 2 KB pieces, a system call
 *   each (some 30 us of CPU per 20 KB newsletter, against 5 us for one
 *   write), and it always reads or polls the socket before it waits for
 *   the server, so nothing it wrote waits in the buffer while it waits:
 *   the bytes leave when the server is needed, as a client with a larger
 *   buffer would send them. What the caller is told is what write()
 *   would have said, except that a failure to send is reported by the
 *   read, poll or close that sends (errno as write set it). When lib/smtp.c
 *   gave libesmtp a message's header only, the body it kept back
 *   (smtp_take_body()) is sent from the caller's message with what was
 *   kept, before the final dot (writev).
 *
 * - poll() of that socket alone answers without a system call when it asks
 *   for POLLOUT (writable: the write is kept) and when it asks, with no
 *   timeout, whether an answer is in (not yet: libesmtp asks so between
 *   pipelined commands, and carries on either way).
 *
 * - epoll_ctl() skips an EPOLL_CTL_MOD that asks for what the descriptor
 *   is already registered with (same epoll instance, events and data;
 *   level-triggered: EPOLLET and EPOLLONESHOT always pass). evhttp turns a
 *   connection's reading off when a request has been read and back on
 *   once the reply is written, and libevent's change list, which merges
 *   the two within a loop turn, still sends the "on" as a MOD: one system
 *   call per request on the tracking threads (about 2 us, a tenth of what
 *   leadcastd spends on a pixel) that changes nothing. For a
 *   level-triggered registration such a MOD has no effect the next
 *   epoll_wait would show. What each descriptor is registered with is
 *   kept from the ADDs and MODs that succeeded through here, and forgotten
 *   at its DEL, at a failed call and when it is closed through close()
 *   (as libevent, libpq, OpenSSL and ours all close sockets), so that a
 *   number reused for a new socket is never taken for the old one.
 *
 * - ioctl(FIONREAD) on a thread that has called nodelay_libevent_reads()
 *   (the tracking threads, whose sockets only libevent reads) answers
 *   4096 without asking the kernel. libevent asks before every read, to
 *   size the read, and reads at most 4096 bytes whatever the answer: with
 *   4096 it reads what is there up to 4096, as it does whenever more is
 *   waiting. The answer only ever sized a buffer, and the system call was
 *   a third of the tracking threads' per request (read, write and this).
 *   libevent is the only library in leadcastd that asks.
 *
 * It changes nothing else about the calls.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"
#include "smtp.h"

typedef int connect_fn(int, const struct sockaddr *, socklen_t);
typedef ssize_t write_fn(int, const void *, size_t);
typedef ssize_t read_fn(int, void *, size_t);
typedef int poll_fn(struct pollfd *, nfds_t, int);
typedef int close_fn(int);
typedef int epoll_ctl_fn(int, int, int, struct epoll_event *);
typedef int ioctl_fn(int, unsigned long, ...);

static connect_fn *real_connect;
static write_fn *real_write;
static read_fn *real_read;
static poll_fn *real_poll;
static close_fn *real_close;
static epoll_ctl_fn *real_epoll_ctl;
static ioctl_fn *real_ioctl;

#define LIBEVENT_READ_MAX 4096          /* libevent's EVBUFFER_MAX_READ */
static __thread int libevent_reads;     /* nodelay_libevent_reads() */

/* What descriptors below EPOLL_FDS are registered with: epfd + 1 (0: not
 * known), events, data. Allocated once (calloc: pages the daemon's
 * descriptors never reach stay unmapped); each entry is touched only by
 * the thread whose loop owns the descriptor. */
#define EPOLL_FDS       65536
static struct epoll_reg {
	int epfd1;
	uint32_t events;
	uint64_t data;
} *regs;

/* Bytes kept for this thread's SMTP socket: at most GATHER_MAX, then
 * sent. The buffer is the thread's, kept from message to message and
 * freed when the socket is closed. */
#define GATHER_MAX      (256 * 1024)
#define SEND_TIMEOUT_MS (5 * 60 * 1000)

static __thread struct {
	int fd;
	char *p;
	size_t len, cap;
} g = { -1, NULL, 0, 0 };

static void resolve(void) __attribute__((constructor));

/* The C library's functions; also called on first use, should a library
 * connect or write in a constructor of its own, before ours. */
static void
resolve(void)
{
	if (real_close)
		return;
	*(void **)&real_connect = dlsym(RTLD_NEXT, "connect");
	*(void **)&real_write = dlsym(RTLD_NEXT, "write");
	*(void **)&real_read = dlsym(RTLD_NEXT, "read");
	*(void **)&real_poll = dlsym(RTLD_NEXT, "poll");
	*(void **)&real_close = dlsym(RTLD_NEXT, "close");
	*(void **)&real_epoll_ctl = dlsym(RTLD_NEXT, "epoll_ctl");
	*(void **)&real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	regs = calloc(EPOLL_FDS, sizeof(*regs));
	if (real_write && real_read && real_poll && real_close)
		smtp_set_gathering(1);
}

/* Write iov[0..n) to fd, all of it (the socket may be non-blocking): 0,
 * or -1 with errno set. iov is used up. */
static int
write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w > 0) {
			for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
				w -= (ssize_t)iov->iov_len;
			if (n > 0) {
				iov->iov_base = (char *)iov->iov_base + w;
				iov->iov_len -= (size_t)w;
			}
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			int r = real_poll(&pf, 1, SEND_TIMEOUT_MS);

			if (r == 0)
				errno = ETIMEDOUT;
			if (r <= 0 && !(r < 0 && errno == EINTR))
				return -1;
		} else {
			if (w == 0)
				errno = EIO;
			return -1;
		}
	}
	return 0;
}

/*
 * Send what was kept, all of it: 0, or -1 with errno set; either way
 * nothing is kept any more. When libesmtp was given a message's header
 * only (smtp_take_body()), what was kept ends with that header, the blank
 * line and the final dot of an empty body: the body goes in before the
 * dot, in the same system call. Should it not end so, nothing is sent
 * and the session fails (EPROTO): its messages are deferred, never sent
 * without their body.
 */
static int
send_gathered(void)
{
	struct iovec iov[3];
	const char *body;
	size_t blen;
	int n = 0, rc;

	if (smtp_take_body(g.fd, &body, &blen)) {
		if (g.len < 7 || memcmp(g.p + g.len - 7, "\r\n\r\n.\r\n", 7)) {
			g.len = 0;
			errno = EPROTO;
			return -1;
		}
		iov[n].iov_base = g.p;
		iov[n++].iov_len = g.len - 3;
		iov[n].iov_base = (void *)body;
		iov[n++].iov_len = blen;
		iov[n].iov_base = g.p + g.len - 3;
		iov[n++].iov_len = 3;
	} else {
		iov[n].iov_base = g.p;
		iov[n++].iov_len = g.len;
	}
	rc = write_all(g.fd, iov, n);
	g.len = 0;
	return rc;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len);
ssize_t write(int fd, const void *p, size_t n);
ssize_t read(int fd, void *p, size_t n);
int poll(struct pollfd *fds, nfds_t n, int timeout);
int close(int fd);
int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int ioctl(int fd, unsigned long req, ...);

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int type = 0, one = 1;
	socklen_t tl = sizeof(type);

	if (!real_close)
		resolve();
	if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	    type == SOCK_STREAM) {
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		smtp_connected(fd);
	}
	return real_connect(fd, sa, len);
}

ssize_t
write(int fd, const void *p, size_t n)
{
	if (!real_close)
		resolve();
	if (n > 0 && smtp_gathers(fd)) {
		if (g.len && g.fd != fd && send_gathered() < 0)
			return -1;
		g.fd = fd;
		if (g.len + n > GATHER_MAX && g.len && send_gathered() < 0)
			return -1;
		if (g.len + n > g.cap && n <= GATHER_MAX) {
			size_t cap = g.cap ? g.cap : 32 * 1024;
			char *q;

			while (cap < g.len + n)
				cap *= 2;
			if ((q = realloc(g.p, cap))) {
				g.p = q;
				g.cap = cap;
			}
		}
		if (g.len + n <= g.cap) {
			memcpy(g.p + g.len, p, n);
			g.len += n;
			return (ssize_t)n;
		}
		/* no room: what was kept goes first, then this */
		if (g.len && send_gathered() < 0)
			return -1;
	}
	return real_write(fd, p, n);
}

ssize_t
read(int fd, void *p, size_t n)
{
	if (!real_close)
		resolve();
	if (g.len && fd == g.fd && send_gathered() < 0)
		return -1;
	return real_read(fd, p, n);
}

/* Is fds[0..n) this thread's SMTP socket only, asked for POLLOUT? */
static int
asks_out(const struct pollfd *fds, nfds_t n)
{
	int out = 0;

	for (nfds_t i = 0; i < n; i++) {
		if (!smtp_gathers(fds[i].fd))
			return 0;
		out |= fds[i].events & POLLOUT;
	}
	return n > 0 && out;
}

int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	nfds_t i, ready = 0;

	if (!real_close)
		resolve();
	/* libesmtp asks whether it may write (it may: write() keeps it), or,
	 * between pipelined commands, whether an answer is in already (it
	 * carries on either way): no system call for either */
	if (asks_out(fds, n)) {
		for (i = 0; i < n; i++)
			ready += (fds[i].revents = fds[i].events & POLLOUT) != 0;
		return (int)ready;
	}
	if (timeout == 0 && n == 1 && smtp_gathers(fds[0].fd)) {
		fds[0].revents = 0;
		return 0;
	}
	if (g.len)
		for (i = 0; i < n; i++)
			if (fds[i].fd == g.fd) {
				if (send_gathered() < 0)
					return -1;
				break;
			}
	return real_poll(fds, n, timeout);
}

int
close(int fd)
{
	if (!real_close)
		resolve();
	if (fd >= 0 && fd == g.fd) {
		if (g.len)
			(void)send_gathered();  /* QUIT's last words, if any */
		free(g.p);
		g.p = NULL;
		g.cap = 0;
		g.fd = -1;
	}
	if (regs && fd >= 0 && fd < EPOLL_FDS)
		regs[fd].epfd1 = 0;
	return real_close(fd);
}

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct epoll_reg *r;
	int rc;

	if (!real_close)
		resolve();
	if (!regs || fd < 0 || fd >= EPOLL_FDS)
		return real_epoll_ctl(epfd, op, fd, ev);
	r = &regs[fd];
	if (op == EPOLL_CTL_MOD && ev && r->epfd1 == epfd + 1 &&
	    r->events == ev->events && r->data == ev->data.u64 &&
	    !(ev->events & (EPOLLET | EPOLLONESHOT)))
		return 0;
	rc = real_epoll_ctl(epfd, op, fd, ev);
	if (rc == 0 && ev && (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD)) {
		r->epfd1 = epfd + 1;
		r->events = ev->events;
		r->data = ev->data.u64;
	} else {
		r->epfd1 = 0;
	}
	return rc;
}

void
nodelay_libevent_reads(void)
{
	libevent_reads = 1;
}

int
ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_close)
		resolve();
	if (req == FIONREAD && libevent_reads && arg) {
		*(int *)arg = LIBEVENT_READ_MAX;
		return 0;
	}
	return real_ioctl(fd, req, arg);
}

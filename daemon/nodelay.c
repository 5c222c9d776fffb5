/*
 * nodelay - TCP_NODELAY on every TCP connection leadcastd makes.
 *
 * The libraries leadcastd drives (libetpan, ldns, libpq) have no hook for
 * socket options, and with Nagle's algorithm the end of a request (a
 * small write after large ones) waits for the peer's delayed ACK, some
 * 40 ms (it held each message's end when SMTP went through libesmtp; the
 * SMTP client, lib/smtp.c, now sets TCP_NODELAY itself). This file
 * defines connect() in the daemon's executable; the dynamic linker binds
 * the libraries' calls to it, and it turns Nagle off before the C
 * library's connect() runs. Every protocol leadcastd speaks is
 * request/response, so none wants Nagle. It changes nothing else about
 * the call.
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef int connect_fn(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *sa, socklen_t len);

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	static connect_fn *real;
	int type = 0, one = 1;
	socklen_t tl = sizeof(type);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "connect");
	if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	    type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return real(fd, sa, len);
}

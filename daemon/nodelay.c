/*
 * nodelay - TCP_NODELAY on every TCP connection leadcastd makes.
 *
 * libesmtp (and libetpan, ldns, libpq) have no hook for socket options,
 * and with Nagle's algorithm the end of each message (a small write after
 * large ones) waits for the peer's delayed ACK: about 40 ms per message,
 * so a session sends some 25 messages a second on an idle machine. This
 * file defines connect() in the daemon's executable; the dynamic linker
 * binds the libraries' calls to it, and it turns Nagle off before the C
 * library's connect() runs. Every protocol leadcastd speaks is
 * request/response, so none wants Nagle. It also tells lib/smtp.c which
 * socket the calling thread connected (smtp_connected()), so that an SMTP
 * session can cork it while libesmtp writes a message's content in small
 * pieces. It changes nothing else about the call.
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "smtp.h"

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
	    type == SOCK_STREAM) {
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		smtp_connected(fd);
	}
	return real(fd, sa, len);
}

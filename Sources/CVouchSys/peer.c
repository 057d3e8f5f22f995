#define _GNU_SOURCE
#include "CVouchSys.h"
#include <sys/socket.h>
#include <sys/types.h>

int vouch_peer_credentials(int fd, unsigned int *uid, int *pid) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    *uid = (unsigned int)cred.uid;
    *pid = (int)cred.pid;
    return 0;
}

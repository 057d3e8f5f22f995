#ifndef VOUCH_CVOUCHSYS_H
#define VOUCH_CVOUCHSYS_H
/* Kernel facts Swift's Glibc module does not expose. */

/* 1 if the kernel says the system clock is synchronised (NTP/PTP), 0 if not, -1 with errno on error. */
int vouch_clock_synchronised(void);

/* The user and process at the other end of a connected Unix socket (SO_PEERCRED, set by the kernel at
   connect: the peer cannot forge it). 0 on success, -1 with errno on error. */
int vouch_peer_credentials(int fd, unsigned int *uid, int *pid);
#endif

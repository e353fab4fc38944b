/* SPDX-License-Identifier: Apache-2.0
 * The EAL's memory file descriptors, kept open for memif zero-copy.
 *
 * DPDK 22.11's memif client in zero-copy mode sends the EAL's own memseg
 * list fds (rte_memseg_get_fd, not a dup) to the server, then closes them
 * once connected and again when it disconnects. The next zero-copy port to
 * connect (the generator's second port, or a port restarted) sends the same
 * fd number: closed, or by then another file (its own queue's eventfd), and
 * the server's mmap fails ("memif_connect(): mmap failed: No such device"):
 * the link never comes up, or comes up over the wrong memory. The EAL, too,
 * would grow memory through a closed fd. So the generator keeps a dup of
 * each and puts it back under the EAL's number before a port starts and
 * once a port is up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_memory.h>

#include "tg_priv.h"

#define TG_MEMFD_MAX 64
#define TG_MEMFD_DUP_MIN 512 /* dups live far from the low numbers files reuse */

static struct {
	int fd, dup;
} memfd[TG_MEMFD_MAX];
static unsigned nb_memfd;

static void
memfd_err(char *err, const char *msg, int fd, int errnum)
{
	if (err != NULL)
		snprintf(err, TG_ERRLEN, "%s %d: %s", msg, fd, strerror(errnum));
}

static int
memfd_save_one(const struct rte_memseg_list *msl, const struct rte_memseg *ms, void *arg)
{
	int fd = rte_memseg_get_fd_thread_unsafe(ms), d;
	unsigned i;

	(void)msl;
	(void)arg;
	if (fd < 0)
		return 0; /* not file-backed (--no-huge, --in-memory): nothing to keep */
	for (i = 0; i < nb_memfd; i++)
		if (memfd[i].fd == fd)
			return 0;
	if (nb_memfd == TG_MEMFD_MAX)
		return -ENOSPC;
	d = fcntl(fd, F_DUPFD_CLOEXEC, TG_MEMFD_DUP_MIN);
	if (d < 0)
		return -errno;
	memfd[nb_memfd].fd = fd;
	memfd[nb_memfd].dup = d;
	nb_memfd++;
	return 0;
}

int
tg_memfd_save(char *err)
{
	int ret = rte_memseg_walk(memfd_save_one, NULL);

	if (ret < 0) {
		memfd_err(err, "cannot keep the EAL's memory fds: entry", (int)nb_memfd, -ret);
		return ret;
	}
	return 0;
}

int
tg_memfd_restore(char *err)
{
	struct stat a, b;
	unsigned i;

	for (i = 0; i < nb_memfd; i++) {
		if (fcntl(memfd[i].fd, F_GETFD) < 0 && errno == EBADF) {
			if (dup3(memfd[i].dup, memfd[i].fd, O_CLOEXEC) < 0) {
				int e = errno;

				memfd_err(err, "cannot restore the EAL's memory fd", memfd[i].fd, e);
				return -e;
			}
			continue;
		}
		if (fstat(memfd[i].fd, &a) != 0 || fstat(memfd[i].dup, &b) != 0 ||
		    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			/* memif closed it and another file took the number
			 * before it could be put back. */
			memfd_err(err, "the EAL's memory fd was reused by another file: fd", memfd[i].fd,
				EBUSY);
			return -EBUSY;
		}
	}
	return 0;
}

void
tg_memfd_release(void)
{
	while (nb_memfd > 0)
		close(memfd[--nb_memfd].dup);
}

/* SPDX-License-Identifier: Apache-2.0
 * memif peers that go away: the process's munmap, so that the fast path
 * runs first on the EAL interrupt thread.
 *
 * DPDK 22.11's memif unmaps a disconnected peer's shared memory on the
 * interrupt thread while workers may be inside its RX or TX on it, and gives
 * no event to act on before (fp_port_unmap_hook says why). Its munmap is the
 * one call of that path Filament can see without patching DPDK: the PMD, a
 * plugin, calls munmap through the dynamic linker, which binds it to this
 * definition in the executable. The linker exports it because the DPDK
 * libraries linked in call munmap (cgo refuses an explicit
 * --export-dynamic-symbol); memiftest fails, MemifUnmapWaits staying 0, if
 * it ever is not. The hook returns at once on any other thread, and on the
 * interrupt thread unless a memif port's link is down; glibc's own unmaps
 * (malloc) and Go's (raw syscalls) do not come here. Not built into the
 * fuzzing harness: it has no memif ports.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fp_priv.h"

int
munmap(void *addr, size_t len)
{
	fp_port_unmap_hook();
	return (int)syscall(SYS_munmap, addr, len);
}

/*
 * xstate-shim.c: LD_PRELOAD for Debian's user-mode-linux 6.1 (/usr/bin/linux.uml), built and used by
 * uml-run.sh.
 *
 * UML 6.1 saves and restores the FPU state of its guest processes with
 * ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, pid, NT_X86_XSTATE, iov) and a fixed 832-byte buffer
 * (legacy x87/SSE area + XSAVE header + AVX upper halves). The host kernel accepts SETREGSET only with
 * the full size of its XSAVE area, which is larger on hosts with AVX-512, PKU or AMX (11072 bytes here),
 * so every SETREGSET fails with EFAULT and the guest's init is killed at once.
 *
 * This shim wraps those two requests in full-size ones:
 *   GETREGSET: read the full state, keep it in a slot keyed by UML's buffer address (one buffer per
 *              guest thread: thread.regs.fp), hand UML its first 832 bytes;
 *   SETREGSET: lay UML's bytes (possibly changed, e.g. by signal delivery) over the kept full state of
 *              that thread (or, without a slot, over the task's current full state) and write it all.
 * So AVX, AVX-512 and opmask registers of guest threads survive syscalls, page faults and switches
 * between threads of one guest process. Every other ptrace request goes to glibc unchanged.
 *
 * UML calls ptrace from a single host thread, so there is no locking.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define XSTATE_NOTE 0x202 /* NT_X86_XSTATE */
#define SLOTS 1024
#define SLOT_SIZE 12288 /* >= the XSAVE area of current CPUs (11072 bytes with AMX) */

static struct {
	void *key;
	size_t len;
} meta[SLOTS];
static unsigned char slot_data[SLOTS][SLOT_SIZE] __attribute__((aligned(64)));
static unsigned char scratch[1 << 16] __attribute__((aligned(64)));

static size_t slot_of(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 17;
	x *= 0x9E3779B97F4A7C15ull;
	return (size_t)(x >> 40) % SLOTS;
}

static long raw_regset(long request, pid_t pid, void *buf, size_t *len)
{
	struct iovec iov = { buf, *len };
	long r = syscall(SYS_ptrace, request, pid, (void *)XSTATE_NOTE, &iov);
	*len = iov.iov_len;
	return r;
}

static long xstate(enum __ptrace_request request, pid_t pid, struct iovec *uml)
{
	size_t s = slot_of(uml->iov_base), len, n;
	unsigned char *full;

	if (request == PTRACE_GETREGSET) {
		len = sizeof(scratch);
		if (raw_regset(PTRACE_GETREGSET, pid, scratch, &len) < 0)
			return -1;
		n = uml->iov_len < len ? uml->iov_len : len;
		memcpy(uml->iov_base, scratch, n);
		uml->iov_len = n;
		if (len <= SLOT_SIZE) {
			meta[s].key = uml->iov_base;
			meta[s].len = len;
			memcpy(slot_data[s], scratch, len);
		}
		return 0;
	}
	if (meta[s].key == uml->iov_base) {
		full = slot_data[s];
		len = meta[s].len;
	} else {
		full = scratch;
		len = sizeof(scratch);
		if (raw_regset(PTRACE_GETREGSET, pid, scratch, &len) < 0)
			return -1;
	}
	n = uml->iov_len < len ? uml->iov_len : len;
	memcpy(full, uml->iov_base, n);
	return raw_regset(PTRACE_SETREGSET, pid, full, &len) < 0 ? -1 : 0;
}

long ptrace(enum __ptrace_request request, ...)
{
	static long (*real)(enum __ptrace_request, ...);
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, request);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);

	if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
	    (uintptr_t)addr == XSTATE_NOTE && data != NULL)
		return xstate(request, pid, data);
	if (!real)
		real = (long (*)(enum __ptrace_request, ...))dlsym(RTLD_NEXT, "ptrace");
	return real(request, pid, addr, data);
}

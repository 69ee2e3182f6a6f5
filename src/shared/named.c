/* SPDX-License-Identifier: MIT */
/* shared/named.c: POSIX shared memory blocks that unrelated processes open by name. */
#include "shared/arena.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAMED_MAGIC 0x6d706e616d656400ULL  /* "mpnamed" */
#define NAMED_READY 1u
/* How long an opener waits for a creator to finish initialising. */
#define NAMED_INIT_WAIT_NS (2 * 1000000000LL)

/*
 * Every named block starts with this header, then the object's state at
 * offset 64 (one cache line). kind is checked so that opening a Lock's name
 * as an Event fails instead of misreading memory.
 */
struct named_header {
	uint64_t magic;
	char kind[16];
	uint64_t size;
	_Atomic uint32_t ready;
	int32_t creator;          /* getpid() of the creator, for mpshm clean */
	uint64_t creator_start;   /* its start time, against pid reuse */
};

_Static_assert(sizeof(struct named_header) <= 64, "header fits a cache line");

#define NAMED_STATE_OFFSET 64

static int
make_path(const char *kind, const char *name, char *path, size_t size)
{
	size_t len = strlen(name);
	if (len == 0 || len > 200 || strchr(name, '/') != NULL ||
	    strlen(kind) >= 16) {
		return -EINVAL;
	}
	int n = snprintf(path, size, "/mproc.%s.%s", kind, name);
	if (n < 0 || (size_t)n >= size) {
		return -EINVAL;
	}
	return 0;
}

static void
pause_briefly(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
	nanosleep(&ts, NULL);
}

/* Wait until the creator has sized the object; returns its size or -errno. */
static int
wait_sized(int fd, size_t want, int64_t deadline)
{
	for (;;) {
		struct stat st;
		if (fstat(fd, &st) != 0) {
			return -errno;
		}
		if ((size_t)st.st_size == want) {
			return 0;
		}
		if (st.st_size != 0) {
			return -EPROTO;
		}
		if (mp__now_ns() >= deadline) {
			return -ETIMEDOUT;
		}
		pause_briefly();
	}
}

static int
check_ready(struct named_header *h, const char *kind, size_t size,
    int64_t deadline)
{
	while (atomic_load_explicit(&h->ready, memory_order_acquire) !=
	    NAMED_READY) {
		if (mp__now_ns() >= deadline) {
			return -ETIMEDOUT;
		}
		pause_briefly();
	}
	if (h->magic != NAMED_MAGIC || strncmp(h->kind, kind, sizeof(h->kind)) != 0 ||
	    h->size != size) {
		return -EPROTO;
	}
	return 0;
}

int
mp__named_open(const char *kind, const char *name, size_t size,
    bool create, bool excl, void (*init)(void *mem, void *arg), void *arg,
    struct mp__named *out)
{
	struct mp__named n = { 0 };
	int rv = make_path(kind, name, n.path, sizeof(n.path));
	if (rv != 0) {
		return rv;
	}
	n.map_size = NAMED_STATE_OFFSET + size;
	int fd = -1;
	if (create) {
		fd = shm_open(n.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			n.created = true;
		} else if (errno != EEXIST || excl) {
			return -errno;
		}
	}
	if (fd < 0) {
		fd = shm_open(n.path, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0) {
			return -errno;
		}
	}
	int64_t deadline = mp__now_ns() + NAMED_INIT_WAIT_NS;
	if (n.created) {
		rv = ftruncate(fd, (off_t)n.map_size) == 0 ? 0 : -errno;
	} else {
		rv = wait_sized(fd, n.map_size, deadline);
	}
	if (rv != 0) {
		goto out_close;
	}
	n.map = mmap(NULL, n.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (n.map == MAP_FAILED) {
		rv = -errno;
		goto out_close;
	}
	close(fd);
	fd = -1;
	struct named_header *h = n.map;
	n.mem = (uint8_t *)n.map + NAMED_STATE_OFFSET;
	if (n.created) {
		h->magic = NAMED_MAGIC;
		memcpy(h->kind, kind, strlen(kind));
		h->size = size;
		h->creator = (int32_t)getpid();
		h->creator_start = mp__proc_start_time(getpid());
		if (init != NULL) {
			init(n.mem, arg);
		}
		atomic_store_explicit(&h->ready, NAMED_READY, memory_order_release);
	} else {
		rv = check_ready(h, kind, size, deadline);
		if (rv != 0) {
			goto out_unmap;
		}
	}
	*out = n;
	return 0;
out_unmap:
	munmap(n.map, n.map_size);
out_close:
	if (fd >= 0) {
		close(fd);
	}
	if (n.created) {
		shm_unlink(n.path);
	}
	return rv;
}

void
mp__named_close(struct mp__named *n)
{
	if (n != NULL && n->map != NULL) {
		munmap(n->map, n->map_size);
		n->map = NULL;
		n->mem = NULL;
	}
}

int
mp__named_unlink(struct mp__named *n)
{
	if (shm_unlink(n->path) != 0) {
		return -errno;
	}
	return 0;
}

bool
mp__named_read_creator(int fd, pid_t *creator, uint64_t *start)
{
	struct named_header h;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    h.magic != NAMED_MAGIC ||
	    atomic_load_explicit(&h.ready, memory_order_acquire) != NAMED_READY) {
		return false;
	}
	*creator = h.creator;
	*start = h.creator_start;
	return true;
}

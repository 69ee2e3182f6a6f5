/* SPDX-License-Identifier: MIT */
/* shared/shm.c: SharedMemory: named blocks that record their creator, and their listing. */
#include "core/internal.h"
#include "shared/arena.h"

#include <mproc/shared.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR        "/dev/shm"
#define SHM_KIND       "shm"
#define SHM_MAGIC      0x016d6873706d0000ULL  /* "mpshm", version 1 */
#define SHM_READY      1u
#define SHM_HEADER     64
#define SHM_NAME_MAX   200
#define SHM_KIND_MAX   15
/* How long an opener waits for a creator to finish setting a block up. */
#define SHM_INIT_WAIT_NS (2 * 1000000000LL)

/*
 * The header in front of every SharedMemory block. Python's blocks have
 * none; ours records who created the block, so that the blocks of a
 * creator that died without unlinking can be told from live ones. The
 * creator's start time (from /proc/<pid>/stat) guards against the pid
 * having been reused by an unrelated process since.
 */
struct shm_header {
	uint64_t magic;
	uint64_t size;           /* user bytes, after the header */
	int32_t creator;
	uint32_t pad;
	uint64_t creator_start;  /* clock ticks after boot */
	_Atomic uint32_t ready;  /* set last, with release order */
};

_Static_assert(sizeof(struct shm_header) <= SHM_HEADER, "header fits");

struct mp_shm {
	void *map;
	size_t map_size;
	size_t size;
	pid_t creator;          /* getpid() of the creating handle, else 0 */
	bool unlinked;
	dev_t dev;              /* identity of our block, checked at unlink */
	ino_t ino;
	char name[SHM_NAME_MAX + 1];
	char path[sizeof("/mproc." SHM_KIND ".") + SHM_NAME_MAX];
};

static bool
valid_part(const char *s, size_t max)
{
	size_t len = strlen(s);
	return len > 0 && len <= max && strchr(s, '/') == NULL &&
	    strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/*
 * mp__proc_start_time: the start time of pid (field 22 of /proc/<pid>/stat),
 * or 0 when the process does not exist or is a zombie (ended: its blocks
 * are orphans even before it is reaped).
 */
uint64_t
mp__proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	/* The command may hold spaces and ')': fields follow the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ') {
		return 0;
	}
	p += 2;
	if (*p == 'Z' || *p == 'X') {
		return 0;
	}
	/* p is at field 3 (state); starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL) {
			return 0;
		}
		p++;
	}
	return strtoull(p, NULL, 10);
}

static bool
creator_alive(pid_t pid, uint64_t start)
{
	return pid > 0 && start != 0 && mp__proc_start_time(pid) == start;
}

static int
random_name(char *name, size_t size)
{
	uint32_t r;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		return errno != 0 ? -errno : -EIO;
	}
	snprintf(name, size, "psm_%08x", r);
	return 0;
}

static void
pause_briefly(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
	nanosleep(&ts, NULL);
}

/* Create the name, picking random ones until a free one turns up. */
static int
create_name(struct mp_shm *s, const char *name, int flags, int *fd)
{
	for (;;) {
		if (name == NULL) {
			int rv = random_name(s->name, sizeof(s->name));
			if (rv != 0) {
				return rv;
			}
		}
		snprintf(s->path, sizeof(s->path), "/mproc." SHM_KIND ".%s",
		    s->name);
		*fd = shm_open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (*fd >= 0) {
			s->creator = getpid();
			return 0;
		}
		if (errno != EEXIST) {
			return -errno;
		}
		if (name != NULL) {
			return (flags & MP_EXCL) ? -EEXIST : 1;
		}
	}
}

static int
init_block(struct mp_shm *s, int fd, size_t size)
{
	s->map_size = SHM_HEADER + size;
	if (ftruncate(fd, (off_t)s->map_size) != 0) {
		return -errno;
	}
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return -errno;
	}
	struct shm_header *h = s->map;
	h->magic = SHM_MAGIC;
	h->size = size;
	h->creator = (int32_t)s->creator;
	h->creator_start = mp__proc_start_time(s->creator);
	s->size = size;
	atomic_store_explicit(&h->ready, SHM_READY, memory_order_release);
	return 0;
}

/*
 * An opener can arrive between the creator's shm_open and its ftruncate
 * (size 0), or before the header is complete (ready 0): it waits, briefly
 * and for a bounded time, as named.c does.
 */
static int
attach_block(struct mp_shm *s, int fd, size_t want)
{
	int64_t deadline = mp__now_ns() + SHM_INIT_WAIT_NS;
	struct stat st;
	for (;;) {
		if (fstat(fd, &st) != 0) {
			return -errno;
		}
		if (st.st_size != 0) {
			break;
		}
		if (mp__now_ns() >= deadline) {
			return -ETIMEDOUT;
		}
		pause_briefly();
	}
	if (st.st_size < SHM_HEADER) {
		return -EPROTO;
	}
	s->map_size = (size_t)st.st_size;
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return -errno;
	}
	struct shm_header *h = s->map;
	while (atomic_load_explicit(&h->ready, memory_order_acquire) !=
	    SHM_READY) {
		/* Creators write the magic first: other magics are foreign. */
		uint64_t magic = ((volatile struct shm_header *)h)->magic;
		if (magic != 0 && magic != SHM_MAGIC) {
			return -EPROTO;
		}
		if (mp__now_ns() >= deadline) {
			return -ETIMEDOUT;
		}
		pause_briefly();
	}
	if (h->magic != SHM_MAGIC || h->size > s->map_size - SHM_HEADER) {
		return -EPROTO;
	}
	if (want > h->size) {
		return -EINVAL;
	}
	s->size = h->size;
	return 0;
}

int
mp_shm_open(const char *name, int flags, size_t size, mp_shm_t **out)
{
	bool create = (flags & MP_CREATE) != 0;
	if (out == NULL || (flags & ~(MP_CREATE | MP_EXCL)) != 0 ||
	    (name == NULL && !create) || (create && size == 0) ||
	    (name != NULL && !valid_part(name, SHM_NAME_MAX)) ||
	    size > SIZE_MAX - SHM_HEADER) {
		return -EINVAL;
	}
	struct mp_shm *s = mp__calloc(1, sizeof(*s));
	if (s == NULL) {
		return -ENOMEM;
	}
	if (name != NULL) {
		memcpy(s->name, name, strlen(name) + 1);
		snprintf(s->path, sizeof(s->path), "/mproc." SHM_KIND ".%s",
		    name);
	}
	int fd = -1;
	int rv = create ? create_name(s, name, flags, &fd) : 1;
	if (rv == 1) {
		/* Not creating, or the name exists and MP_EXCL is not set. */
		fd = shm_open(s->path, O_RDWR | O_CLOEXEC, 0);
		rv = fd >= 0 ? attach_block(s, fd, size) : -errno;
	} else if (rv == 0) {
		rv = init_block(s, fd, size);
	}
	if (rv != 0) {
		goto out_undo;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rv = -errno;
		goto out_undo;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	close(fd);
	*out = s;
	return 0;
out_undo:
	if (s->map != NULL) {
		munmap(s->map, s->map_size);
	}
	if (fd >= 0) {
		close(fd);
	}
	if (s->creator != 0) {
		shm_unlink(s->path);
	}
	mp__free(s);
	return rv;
}

void *
mp_shm_buf(const mp_shm_t *shm)
{
	return (uint8_t *)shm->map + SHM_HEADER;
}

size_t
mp_shm_size(const mp_shm_t *shm)
{
	return shm->size;
}

const char *
mp_shm_name(const mp_shm_t *shm)
{
	return shm->name;
}

bool
mp_shm_is_creator(const mp_shm_t *shm)
{
	return shm->creator != 0 && shm->creator == getpid();
}

/*
 * The name is removed only while it still names our block: after an
 * `mpshm rm` someone else may have created a new block under it, which is
 * not ours to remove.
 */
int
mp_shm_unlink(mp_shm_t *shm)
{
	if (!mp_shm_is_creator(shm)) {
		return -EPERM;
	}
	if (shm->unlinked) {
		return -ENOENT;
	}
	char file[sizeof(SHM_DIR) + sizeof(shm->path)];
	snprintf(file, sizeof(file), SHM_DIR "%s", shm->path);
	struct stat st;
	if (stat(file, &st) != 0 || st.st_dev != shm->dev ||
	    st.st_ino != shm->ino) {
		shm->unlinked = true;
		return -ENOENT;
	}
	if (shm_unlink(shm->path) != 0) {
		return -errno;
	}
	shm->unlinked = true;
	return 0;
}

void
mp_shm_close(mp_shm_t *shm)
{
	if (shm == NULL) {
		return;
	}
	munmap(shm->map, shm->map_size);
	mp__free(shm);
}

/* ---- Listing and removal, for mpshm(1) ---------------------------------- */

/* Split "mproc.<kind>.<name>"; false for entries that are not ours. */
static bool
split_entry(const char *file, struct mp_shm_info *info)
{
	if (strncmp(file, "mproc.", 6) != 0) {
		return false;
	}
	const char *kind = file + 6;
	const char *dot = strchr(kind, '.');
	if (dot == NULL || dot == kind || (size_t)(dot - kind) > SHM_KIND_MAX ||
	    strlen(dot + 1) >= sizeof(info->name) || dot[1] == '\0') {
		return false;
	}
	memset(info, 0, sizeof(*info));
	memcpy(info->kind, kind, (size_t)(dot - kind));
	memcpy(info->name, dot + 1, strlen(dot + 1) + 1);
	return true;
}

/* Fill size and creator from the file; blocks we cannot read keep 0. */
static void
inspect_entry(int dir, const char *file, struct mp_shm_info *info)
{
	int fd = openat(dir, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		return;
	}
	struct stat st;
	if (fstat(fd, &st) == 0) {
		info->size = (uint64_t)st.st_size;
	}
	struct shm_header h;
	if (strcmp(info->kind, SHM_KIND) == 0 &&
	    pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    h.magic == SHM_MAGIC && atomic_load(&h.ready) == SHM_READY) {
		info->size = h.size;
		info->creator = h.creator;
		info->creator_alive = creator_alive(h.creator, h.creator_start);
	} else if (strcmp(info->kind, SHM_KIND) != 0) {
		/* A named Lock, Event, ...: its block header records the creator. */
		uint64_t start = 0;
		if (mp__named_read_creator(fd, &info->creator, &start)) {
			info->creator_alive = creator_alive(info->creator, start);
		}
	}
	close(fd);
}

static int
compare_info(const void *a, const void *b)
{
	const struct mp_shm_info *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);
	return c != 0 ? c : strcmp(x->name, y->name);
}

int
mp_shm_list(struct mp_shm_info **out, size_t *count)
{
	DIR *d = opendir(SHM_DIR);
	if (d == NULL) {
		return -errno;
	}
	struct mp_shm_info *list = NULL;
	size_t n = 0, cap = 0;
	int rv = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct mp_shm_info info;
		if (!split_entry(e->d_name, &info)) {
			continue;
		}
		if (n == cap) {
			cap = cap * 2 + 16;
			struct mp_shm_info *bigger = mp__realloc(list,
			    cap * sizeof(*list));
			if (bigger == NULL) {
				rv = -ENOMEM;
				break;
			}
			list = bigger;
		}
		inspect_entry(dirfd(d), e->d_name, &info);
		list[n++] = info;
	}
	closedir(d);
	if (rv != 0) {
		mp__free(list);
		return rv;
	}
	if (n > 0) {
		qsort(list, n, sizeof(*list), compare_info);
	}
	*out = list;
	*count = n;
	return 0;
}

int
mp_shm_remove(const char *kind, const char *name)
{
	if (kind == NULL || name == NULL || !valid_part(kind, SHM_KIND_MAX) ||
	    strchr(kind, '.') != NULL || !valid_part(name, SHM_NAME_MAX)) {
		return -EINVAL;
	}
	char path[sizeof("/mproc..") + SHM_KIND_MAX + SHM_NAME_MAX];
	snprintf(path, sizeof(path), "/mproc.%s.%s", kind, name);
	if (shm_unlink(path) != 0) {
		return -errno;
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* test_shm.c: SharedMemory: create and attach by name, unlink rules, the listing, and mpshm on a crashed creator. */
#include "harness/harness.h"

#include "core/internal.h"

#include <mproc/shared.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

MP_TEST_SUITE(shm);

static void
reap_ok(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child %d ended with status 0x%x", (int)pid, status);
}

/* A name no other run uses: the test's pid and a tag. */
static const char *
test_name(const char *tag)
{
	static char buf[4][64];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, sizeof(buf[0]), "test-%s-%d", tag, (int)getpid());
	return b;
}

static bool
exists_in_dev_shm(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "/dev/shm/mproc.shm.%s", name);
	return access(path, F_OK) == 0;
}

/* The listing's entry for a shm block, or NULL; the caller frees *list. */
static const struct mp_shm_info *
find_listed(const char *name, struct mp_shm_info **list)
{
	size_t n;
	expect_ok(mp_shm_list(list, &n));
	for (size_t i = 0; i < n; i++) {
		if (strcmp((*list)[i].kind, "shm") == 0 &&
		    strcmp((*list)[i].name, name) == 0) {
			return &(*list)[i];
		}
	}
	return NULL;
}

Test(shm, create_then_attach_from_a_child_by_name)
{
	const char *name = test_name("attach");
	mp_shm_t *shm;
	expect_ok(mp_shm_open(name, MP_CREATE | MP_EXCL, 1000, &shm));
	cr_assert_str_eq(mp_shm_name(shm), name);
	cr_assert_eq(mp_shm_size(shm), 1000);
	cr_assert(mp_shm_is_creator(shm));
	unsigned char *buf = mp_shm_buf(shm);
	cr_assert_eq((uintptr_t)buf % 64, 0);
	cr_assert(buf[0] == 0 && buf[999] == 0, "a new block is zeroed");
	memcpy(buf, "hello", 5);
	cr_assert(exists_in_dev_shm(name));

	/* The child opens the block by name, as another program would. */
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		mp_shm_t *other;
		int rv = mp_shm_open(name, 0, 0, &other);
		if (rv == 0) {
			unsigned char *b = mp_shm_buf(other);
			bool ok = mp_shm_size(other) == 1000 &&
			    memcmp(b, "hello", 5) == 0 &&
			    !mp_shm_is_creator(other);
			rv = ok ? 0 : -1;
			memcpy(b + 5, " world", 6);
			/* An attacher may not unlink. */
			if (mp_shm_unlink(other) != -EPERM) {
				rv = -2;
			}
			mp_shm_close(other);
		}
		ssize_t w = write(ready[1], &rv, sizeof(rv));
		_exit(w == sizeof(rv) ? 0 : 1);
	}
	int child_rv = -100;
	cr_assert_eq(read(ready[0], &child_rv, sizeof(child_rv)),
	    sizeof(child_rv));
	reap_ok(pid);
	close(ready[0]);
	close(ready[1]);
	cr_assert_eq(child_rv, 0);
	cr_assert_eq(memcmp(buf, "hello world", 11), 0);

	expect_ok(mp_shm_unlink(shm));
	cr_assert(!exists_in_dev_shm(name));
	cr_assert_eq(buf[0], 'h', "the mapping outlives the name");
	expect_err(mp_shm_unlink(shm), -ENOENT);
	mp_shm_t *gone;
	expect_err(mp_shm_open(name, 0, 0, &gone), -ENOENT);
	mp_shm_close(shm);
	mp_shm_close(NULL);
}

Test(shm, open_flags_and_sizes)
{
	const char *name = test_name("flags");
	mp_shm_t *a, *b, *c;
	expect_err(mp_shm_open(name, 0, 0, &a), -ENOENT);
	expect_err(mp_shm_open(name, MP_CREATE, 0, &a), -EINVAL);
	expect_ok(mp_shm_open(name, MP_CREATE, 4096, &a));
	cr_assert(mp_shm_is_creator(a));
	expect_err(mp_shm_open(name, MP_CREATE | MP_EXCL, 4096, &b), -EEXIST);
	/* Create-or-open finds it; a size up to the block's is accepted. */
	expect_ok(mp_shm_open(name, MP_CREATE, 100, &b));
	cr_assert(!mp_shm_is_creator(b));
	cr_assert_eq(mp_shm_size(b), 4096);
	expect_err(mp_shm_open(name, 0, 4097, &c), -EINVAL);
	expect_ok(mp_shm_open(name, 0, 4096, &c));
	((char *)mp_shm_buf(c))[4095] = 'z';
	cr_assert_eq(((char *)mp_shm_buf(a))[4095], 'z');
	expect_err(mp_shm_unlink(b), -EPERM);
	mp_shm_close(b);
	mp_shm_close(c);
	expect_ok(mp_shm_unlink(a));
	mp_shm_close(a);

	const char *bad[] = { "", "a/b", "/x", ".", ".." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_err(mp_shm_open(bad[i], MP_CREATE, 8, &a), -EINVAL);
	}
	char longname[202];
	memset(longname, 'n', 201);
	longname[201] = '\0';
	expect_err(mp_shm_open(longname, MP_CREATE, 8, &a), -EINVAL);
	expect_err(mp_shm_open(NULL, 0, 8, &a), -EINVAL);
	expect_err(mp_shm_open(name, 0x40, 8, &a), -EINVAL);
	expect_err(mp_shm_open(name, MP_CREATE, 8, NULL), -EINVAL);
	cr_assert(!exists_in_dev_shm(name));
}

Test(shm, a_null_name_gets_a_random_one)
{
	mp_shm_t *a, *b;
	expect_ok(mp_shm_open(NULL, MP_CREATE, 10, &a));
	expect_ok(mp_shm_open(NULL, MP_CREATE | MP_EXCL, 10, &b));
	const char *n = mp_shm_name(a);
	cr_assert_eq(strlen(n), 12, "psm_ and 8 hex digits: %s", n);
	cr_assert_eq(strncmp(n, "psm_", 4), 0);
	cr_assert_str_neq(n, mp_shm_name(b));
	cr_assert(exists_in_dev_shm(n));
	expect_ok(mp_shm_unlink(a));
	expect_ok(mp_shm_unlink(b));
	mp_shm_close(a);
	mp_shm_close(b);
}

Test(shm, a_forked_child_of_the_creator_may_not_unlink)
{
	const char *name = test_name("child");
	mp_shm_t *shm;
	expect_ok(mp_shm_open(name, MP_CREATE | MP_EXCL, 64, &shm));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int rv = mp_shm_unlink(shm);
		bool mine = mp_shm_is_creator(shm);
		mp_shm_close(shm);
		_exit(rv == -EPERM && !mine ? 0 : 1);
	}
	reap_ok(pid);
	cr_assert(exists_in_dev_shm(name));
	expect_ok(mp_shm_unlink(shm));
	mp_shm_close(shm);
}

Test(shm, a_foreign_file_is_not_a_block)
{
	const char *name = test_name("foreign");
	char path[128];
	snprintf(path, sizeof(path), "/mproc.shm.%s", name);
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 200), 0);
	cr_assert_eq(pwrite(fd, "garbage!garbage!garbage!garbage!", 32, 0), 32);
	close(fd);
	mp_shm_t *shm;
	expect_err(mp_shm_open(name, 0, 0, &shm), -EPROTO);
	struct mp_shm_info *list;
	const struct mp_shm_info *e = find_listed(name, &list);
	cr_assert_not_null(e, "listed even though foreign");
	cr_assert_eq(e->creator, 0);
	cr_assert_eq(e->size, 200, "its file size");
	mp_free(list);
	expect_ok(mp_shm_remove("shm", name));
	expect_err(mp_shm_remove("shm", name), -ENOENT);
	expect_err(mp_shm_remove("a.b", name), -EINVAL);
	expect_err(mp_shm_remove("shm", "x/y"), -EINVAL);
}

Test(shm, the_listing_shows_the_creator)
{
	const char *name = test_name("list");
	mp_shm_t *shm;
	expect_ok(mp_shm_open(name, MP_CREATE | MP_EXCL, 12345, &shm));
	struct mp_shm_info *list;
	const struct mp_shm_info *e = find_listed(name, &list);
	cr_assert_not_null(e);
	cr_assert_eq(e->size, 12345);
	cr_assert_eq(e->creator, getpid());
	cr_assert(e->creator_alive);
	mp_free(list);

	/* mpshm, an unrelated program (fork + exec), sees it the same way. */
	char *out, *err;
	const char *argv[] = { mp_test_bin("bin/mpshm"), "list", NULL };
	cr_assert_eq(mp_test_run(argv, NULL, 0, &out, NULL, &err), 0, "%s",
	    err);
	char want[256];
	snprintf(want, sizeof(want), "%d alive", (int)getpid());
	const char *line = strstr(out, name);
	cr_assert_not_null(line, "%s", out);
	cr_assert_not_null(strstr(line, want), "%s", out);
	cr_assert_not_null(strstr(line, "12345"), "%s", out);
	free(out);
	free(err);

	/* clean leaves a live creator's block alone. Every clean here names
	 * the test's own blocks: a bare clean would also remove the blocks of
	 * another suite running at the same time. */
	const char *clean[] = { mp_test_bin("bin/mpshm"), "clean", name, NULL };
	cr_assert_eq(mp_test_run(clean, NULL, 0, &out, NULL, &err), 0, "%s",
	    err);
	cr_assert_null(strstr(out, name), "%s", out);
	cr_assert(exists_in_dev_shm(name));
	free(out);
	free(err);
	expect_ok(mp_shm_unlink(shm));
	mp_shm_close(shm);
}

Test(shm, mpshm_clean_removes_the_block_of_a_killed_creator)
{
	const char *name = test_name("crash");
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		mp_shm_t *shm;
		int rv = mp_shm_open(name, MP_CREATE | MP_EXCL, 100, &shm);
		ssize_t w = write(ready[1], &rv, sizeof(rv));
		(void)w;
		for (;;) {
			pause();  /* until SIGKILL */
		}
	}
	int rv = -100;
	cr_assert_eq(read(ready[0], &rv, sizeof(rv)), sizeof(rv));
	close(ready[0]);
	close(ready[1]);
	kill(pid, SIGKILL);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status));
	expect_ok(rv);
	cr_assert(exists_in_dev_shm(name));

	struct mp_shm_info *list;
	const struct mp_shm_info *e = find_listed(name, &list);
	cr_assert_not_null(e);
	cr_assert_eq(e->creator, pid);
	cr_assert(!e->creator_alive);
	mp_free(list);

	char *out, *err;
	/* A dry run over the whole machine lists the block and removes nothing. */
	const char *dry[] = { mp_test_bin("bin/mpshm"), "clean", "-n", NULL };
	cr_assert_eq(mp_test_run(dry, NULL, 0, &out, NULL, &err), 0, "%s", err);
	cr_assert_not_null(strstr(out, name), "%s", out);
	cr_assert(exists_in_dev_shm(name), "-n removes nothing");
	free(out);
	free(err);
	/* Patterns select by name: one that does not match leaves it out,
	 * one with a wildcard that does brings it in. */
	char other[96], wild[96];
	snprintf(other, sizeof(other), "%s-not", name);
	snprintf(wild, sizeof(wild), "%s", name);
	wild[5] = '?';  /* "test-?rash-PID" matches this block alone */
	const char *dry_other[] = { mp_test_bin("bin/mpshm"), "clean", "-n",
		other, NULL };
	cr_assert_eq(mp_test_run(dry_other, NULL, 0, &out, NULL, &err), 0,
	    "%s", err);
	cr_assert_null(strstr(out, name), "%s", out);
	free(out);
	free(err);
	const char *list_wild[] = { mp_test_bin("bin/mpshm"), "list", wild,
		NULL };
	cr_assert_eq(mp_test_run(list_wild, NULL, 0, &out, NULL, &err), 0,
	    "%s", err);
	cr_assert_not_null(strstr(out, name), "%s", out);
	cr_assert_not_null(strstr(out, "dead"), "%s", out);
	free(out);
	free(err);
	const char *clean[] = { mp_test_bin("bin/mpshm"), "clean", wild, NULL };
	cr_assert_eq(mp_test_run(clean, NULL, 0, &out, NULL, &err), 0, "%s",
	    err);
	char want[128];
	snprintf(want, sizeof(want), "removed shm %s (creator %d is dead)",
	    name, (int)pid);
	cr_assert_not_null(strstr(out, want), "%s", out);
	cr_assert(!exists_in_dev_shm(name));
	free(out);
	free(err);
}

Test(shm, mpshm_rm_and_usage)
{
	const char *name = test_name("rm");
	mp_shm_t *shm;
	expect_ok(mp_shm_open(name, MP_CREATE | MP_EXCL, 8, &shm));
	char *out, *err;
	const char *rm[] = { mp_test_bin("bin/mpshm"), "rm", name, NULL };
	cr_assert_eq(mp_test_run(rm, NULL, 0, &out, NULL, &err), 0, "%s", err);
	cr_assert(!exists_in_dev_shm(name));
	free(out);
	free(err);
	cr_assert_eq(mp_test_run(rm, NULL, 0, &out, NULL, &err), 1);
	cr_assert_not_null(strstr(err, "cannot remove shm"), "%s", err);
	free(out);
	free(err);
	/* The creator learns that its block is gone. */
	expect_err(mp_shm_unlink(shm), -ENOENT);
	mp_shm_close(shm);

	const char *help[] = { mp_test_bin("bin/mpshm"), "--help", NULL };
	cr_assert_eq(mp_test_run(help, NULL, 0, &out, NULL, &err), 0);
	cr_assert_not_null(strstr(out, "mpshm clean"));
	free(out);
	free(err);
	const char *bad[] = { mp_test_bin("bin/mpshm"), "frob", NULL };
	cr_assert_eq(mp_test_run(bad, NULL, 0, &out, NULL, &err), 2);
	cr_assert_not_null(strstr(err, "usage"));
	free(out);
	free(err);
	const char *badopt[] = { mp_test_bin("bin/mpshm"), "clean", "-x", NULL };
	cr_assert_eq(mp_test_run(badopt, NULL, 0, &out, NULL, &err), 2);
	cr_assert_not_null(strstr(err, "usage"));
	free(out);
	free(err);
}

Test(shm, unlink_never_removes_a_newer_block_of_the_same_name)
{
	const char *name = test_name("reuse");
	mp_shm_t *old, *young;
	expect_ok(mp_shm_open(name, MP_CREATE | MP_EXCL, 8, &old));
	expect_ok(mp_shm_remove("shm", name));
	expect_ok(mp_shm_open(name, MP_CREATE | MP_EXCL, 8, &young));
	expect_err(mp_shm_unlink(old), -ENOENT);
	cr_assert(exists_in_dev_shm(name));
	expect_ok(mp_shm_unlink(young));
	mp_shm_close(old);
	mp_shm_close(young);
}

Test(shm, failed_allocations_leave_nothing_behind)
{
	const char *name = test_name("nomem");
	mp_shm_t *shm = NULL;
	mp__alloc_fail_after(1);
	expect_err(mp_shm_open(name, MP_CREATE | MP_EXCL, 64, &shm), -ENOMEM);
	mp__alloc_fail_after(0);
	cr_assert_null(shm);
	cr_assert(!exists_in_dev_shm(name));
	struct mp_shm_info *list = NULL;
	size_t n = 0;
	mp__alloc_fail_after(1);
	int rv = mp_shm_list(&list, &n);
	mp__alloc_fail_after(0);
	/* Nothing to list needs no allocation; anything else fails cleanly. */
	cr_assert(rv == -ENOMEM || (rv == 0 && n == 0), "%s", mp_err_name(rv));
}

Test(shm, named_sync_objects_record_their_creator)
{
	const char *name = test_name("lock");
	mp_lock_t *lock;
	expect_ok(mp_lock_open(name, MP_CREATE | MP_EXCL, &lock));
	struct mp_shm_info *list;
	size_t n;
	expect_ok(mp_shm_list(&list, &n));
	const struct mp_shm_info *e = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].kind, "lock") == 0 &&
		    strcmp(list[i].name, name) == 0) {
			e = &list[i];
		}
	}
	cr_assert_not_null(e);
	cr_assert_eq(e->creator, getpid(), "the named block records its creator");
	cr_assert(e->creator_alive);
	cr_assert_gt(e->size, 0);
	mp_free(list);

	char *out, *err;
	const char *clean[] = { mp_test_bin("bin/mpshm"), "clean", name, NULL };
	cr_assert_eq(mp_test_run(clean, NULL, 0, &out, NULL, &err), 0, "%s",
	    err);
	cr_assert_null(strstr(out, name), "a live creator's lock stays: %s", out);
	free(out);
	free(err);
	const char *rm[] = { mp_test_bin("bin/mpshm"), "rm", "-k", "lock", name,
		NULL };
	cr_assert_eq(mp_test_run(rm, NULL, 0, &out, NULL, &err), 0, "%s", err);
	free(out);
	free(err);
	expect_err(mp_lock_unlink(name), -ENOENT);
	mp_lock_close(lock);
}

Test(shm, mpshm_clean_removes_the_named_lock_of_a_killed_creator)
{
	const char *name = test_name("deadlock");
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		mp_lock_t *lock;
		int rv = mp_lock_open(name, MP_CREATE | MP_EXCL, &lock);
		ssize_t w = write(ready[1], &rv, sizeof(rv));
		(void)w;
		for (;;) {
			pause();  /* until SIGKILL */
		}
	}
	int rv = -100;
	cr_assert_eq(read(ready[0], &rv, sizeof(rv)), sizeof(rv));
	close(ready[0]);
	close(ready[1]);
	kill(pid, SIGKILL);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	expect_ok(rv);

	char *out, *err;
	const char *clean[] = { mp_test_bin("bin/mpshm"), "clean", name, NULL };
	cr_assert_eq(mp_test_run(clean, NULL, 0, &out, NULL, &err), 0, "%s",
	    err);
	char want[160];
	snprintf(want, sizeof(want), "removed lock %s (creator %d is dead)",
	    name, (int)pid);
	cr_assert_not_null(strstr(out, want), "%s", out);
	free(out);
	free(err);
	mp_lock_t *lock;
	expect_err(mp_lock_open(name, 0, &lock), -ENOENT);
}

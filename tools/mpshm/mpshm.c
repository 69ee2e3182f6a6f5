/* SPDX-License-Identifier: MIT */
/* mpshm.c: list mproc's named shared memory blocks and remove those of dead creators. */
#include <mproc.h>
#include <mproc/shared.h>

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static const char usage[] =
    "usage: mpshm list [PATTERN...]\n"
    "       mpshm clean [-n] [PATTERN...]\n"
    "       mpshm rm [-k KIND] NAME...\n"
    "       mpshm --help\n"
    "\n"
    "Named blocks of mproc live in /dev/shm as mproc.<kind>.<name>:\n"
    "SharedMemory blocks (kind shm) and named Lock, Event, ... objects.\n"
    "\n"
    "  list   one line per block: kind, name, size in bytes, creator pid\n"
    "         and whether the creator is alive ('-' and '?' when the block\n"
    "         does not record its creator)\n"
    "  clean  remove every block whose creator is dead (it died or exited\n"
    "         without unlinking); -n only prints what would be removed\n"
    "  PATTERN  shell patterns (fnmatch: * ? [...]); with any, list and\n"
    "         clean see only the blocks whose name matches one of them\n"
    "  rm     remove the named blocks whoever created them (kind shm unless\n"
    "         -k is given); processes that map a block keep their memory\n";

static int
list_blocks(struct mp_shm_info **list, size_t *n)
{
	int rv = mp_shm_list(list, n);
	if (rv != 0) {
		fprintf(stderr, "mpshm: cannot read /dev/shm: %s\n",
		    mp_strerror(rv));
	}
	return rv;
}

/* True when no pattern is given or the name matches one of them. */
static bool
selected(const char *name, char **patterns, int n)
{
	if (n == 0) {
		return true;
	}
	for (int i = 0; i < n; i++) {
		if (fnmatch(patterns[i], name, 0) == 0) {
			return true;
		}
	}
	return false;
}

static int
cmd_list(char **patterns, int npatterns)
{
	struct mp_shm_info *list;
	size_t n;
	if (list_blocks(&list, &n) != 0) {
		return EXIT_FAILURE;
	}
	printf("%-8s %-32s %12s %8s %s\n", "KIND", "NAME", "SIZE", "CREATOR",
	    "STATE");
	for (size_t i = 0; i < n; i++) {
		const struct mp_shm_info *b = &list[i];
		if (!selected(b->name, patterns, npatterns)) {
			continue;
		}
		if (b->creator != 0) {
			printf("%-8s %-32s %12llu %8d %s\n", b->kind, b->name,
			    (unsigned long long)b->size, (int)b->creator,
			    b->creator_alive ? "alive" : "dead");
		} else {
			printf("%-8s %-32s %12llu %8s %s\n", b->kind, b->name,
			    (unsigned long long)b->size, "-", "?");
		}
	}
	mp_free(list);
	return EXIT_SUCCESS;
}

static int
cmd_clean(bool dry_run, char **patterns, int npatterns)
{
	struct mp_shm_info *list;
	size_t n;
	if (list_blocks(&list, &n) != 0) {
		return EXIT_FAILURE;
	}
	int status = EXIT_SUCCESS;
	for (size_t i = 0; i < n; i++) {
		const struct mp_shm_info *b = &list[i];
		if (b->creator == 0 || b->creator_alive ||
		    !selected(b->name, patterns, npatterns)) {
			continue;
		}
		int rv = dry_run ? 0 : mp_shm_remove(b->kind, b->name);
		if (rv == 0) {
			printf("%s %s %s (creator %d is dead)\n",
			    dry_run ? "would remove" : "removed", b->kind,
			    b->name, (int)b->creator);
		} else if (rv != -ENOENT) {
			/* -ENOENT: removed meanwhile by someone else: fine. */
			fprintf(stderr, "mpshm: cannot remove %s %s: %s\n",
			    b->kind, b->name, mp_strerror(rv));
			status = EXIT_FAILURE;
		}
	}
	mp_free(list);
	return status;
}

static int
cmd_rm(const char *kind, char **names, int n)
{
	int status = EXIT_SUCCESS;
	for (int i = 0; i < n; i++) {
		int rv = mp_shm_remove(kind, names[i]);
		if (rv != 0) {
			fprintf(stderr, "mpshm: cannot remove %s %s: %s\n",
			    kind, names[i], mp_strerror(rv));
			status = EXIT_FAILURE;
		}
	}
	return status;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return EXIT_SUCCESS;
	}
	if (strcmp(cmd, "list") == 0) {
		return cmd_list(argv + 2, argc - 2);
	}
	if (strcmp(cmd, "clean") == 0) {
		bool dry_run = argc > 2 && strcmp(argv[2], "-n") == 0;
		int first = dry_run ? 3 : 2;
		for (int i = first; i < argc; i++) {
			if (argv[i][0] == '-') {  /* an unknown option */
				fputs(usage, stderr);
				return EXIT_USAGE;
			}
		}
		return cmd_clean(dry_run, argv + first, argc - first);
	}
	if (strcmp(cmd, "rm") == 0) {
		const char *kind = "shm";
		int first = 2;
		if (argc > 3 && strcmp(argv[2], "-k") == 0) {
			kind = argv[3];
			first = 4;
		}
		if (first < argc) {
			return cmd_rm(kind, argv + first, argc - first);
		}
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}

/* SPDX-License-Identifier: MIT */
/* python.c: find the CPython interpreters the interop tests run against. */
#include "harness/harness.h"

#include <dirent.h>
#include <sys/stat.h>

#define MAX_PYTHONS 16

static struct mp_test_python pythons[MAX_PYTHONS];
static size_t n_pythons;
static bool scanned;

static bool
is_executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, X_OK) == 0;
}

/* $(pyenv root): PYENV_ROOT, else what `pyenv root` prints, else ~/.pyenv. */
static void
pyenv_root(char *buf, size_t size)
{
	const char *env = getenv("PYENV_ROOT");
	if (env != NULL && env[0] != '\0') {
		snprintf(buf, size, "%s", env);
		return;
	}
	buf[0] = '\0';
	const char *argv[] = { "pyenv", "root", NULL };
	char *out = NULL;
	char *err = NULL;
	if (mp_test_run(argv, NULL, 0, &out, NULL, &err) == 0) {
		out[strcspn(out, "\n")] = '\0';
		snprintf(buf, size, "%s", out);
	}
	free(out);
	free(err);
	if (buf[0] == '\0' && getenv("HOME") != NULL) {
		snprintf(buf, size, "%s/.pyenv", getenv("HOME"));
	}
}

static void
add(const char *label, const char *path)
{
	if (n_pythons < MAX_PYTHONS) {
		struct mp_test_python *p = &pythons[n_pythons++];
		snprintf(p->label, sizeof(p->label), "%s", label);
		snprintf(p->path, sizeof(p->path), "%s", path);
	}
}

static void
scan(void)
{
	char root[1024];
	pyenv_root(root, sizeof(root));
	for (int minor = 8; minor <= 13; minor++) {
		/* The newest patch release of 3.<minor> installed under pyenv. */
		char best[64] = "";
		int best_patch = -1;
		char dir[1200];
		snprintf(dir, sizeof(dir), "%s/versions", root);
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL) {
			int maj, min, patch;
			char rest;
			if (sscanf(e->d_name, "%d.%d.%d%c", &maj, &min, &patch,
			    &rest) == 3 && maj == 3 && min == minor &&
			    patch > best_patch) {
				char exe[1400];
				snprintf(exe, sizeof(exe), "%s/%s/bin/python3", dir,
				    e->d_name);
				if (is_executable(exe)) {
					best_patch = patch;
					snprintf(best, sizeof(best), "%s", e->d_name);
				}
			}
		}
		if (d != NULL) {
			closedir(d);
		}
		if (best_patch < 0) {
			fprintf(stderr, "SKIP python 3.%d: not installed under %s/versions\n",
			    minor, root);
			continue;
		}
		char exe[1400];
		snprintf(exe, sizeof(exe), "%s/%s/bin/python3", dir, best);
		add(best, exe);
	}
	if (is_executable("/usr/bin/python3")) {
		const char *argv[] = { "/usr/bin/python3", "-c",
			"import platform; print(platform.python_version())", NULL };
		char *out = NULL;
		if (mp_test_run(argv, NULL, 0, &out, NULL, NULL) == 0) {
			out[strcspn(out, "\n")] = '\0';
			char label[32];
			snprintf(label, sizeof(label), "system %.20s", out);
			add(label, "/usr/bin/python3");
		}
		free(out);
	} else {
		fprintf(stderr, "SKIP system python3: /usr/bin/python3 not installed\n");
	}
}

size_t
mp_test_pythons(const struct mp_test_python **list)
{
	if (!scanned) {
		scan();
		scanned = true;
		for (size_t i = 0; i < n_pythons; i++) {
			fprintf(stderr, "TEST python %s (%s)\n", pythons[i].label,
			    pythons[i].path);
		}
	}
	*list = pythons;
	return n_pythons;
}

int
mp_test_run_py(const struct mp_test_python *py, const char *script,
    const char *const args[], const char *input, size_t input_len,
    char **out, size_t *out_len, char **err)
{
	const char *argv[32];
	size_t n = 0;
	char script_path[4096];
	snprintf(script_path, sizeof(script_path), "%s/tests/py/%s",
	    MP_TEST_SRCDIR, script);
	argv[n++] = py->path;
	argv[n++] = "-S";
	argv[n++] = script_path;
	for (size_t i = 0; args != NULL && args[i] != NULL && n < 31; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return mp_test_run(argv, input, input_len, out, out_len, err);
}

/* SPDX-License-Identifier: MIT */
/* test_install.c: install mproc into a temporary prefix and build consumers. */
#include "harness/harness.h"

#include <stdlib.h>

MP_TEST_SUITE(install);

static char prefix[256];
static char work[256];

static void
run_ok(const char *const argv[])
{
	char *out = NULL;
	char *err = NULL;
	int rv = mp_test_run(argv, NULL, 0, &out, NULL, &err);
	cr_assert_eq(rv, 0, "%s failed (%d):\n%s\n%s", argv[0], rv, out, err);
	free(out);
	free(err);
}

/* In the sanitizer build the library needs the sanitizer runtimes. */
#ifdef MP_TEST_SANITIZE
#define SAN_FLAGS "-fsanitize=address,undefined"
#else
#define SAN_FLAGS ""
#endif

static void
install_into_temp_prefix(void)
{
	setenv("CFLAGS", SAN_FLAGS, 1);
	setenv("LDFLAGS", SAN_FLAGS, 1);
	snprintf(prefix, sizeof(prefix), "/tmp/mproc-install-XXXXXX");
	cr_assert_not_null(mkdtemp(prefix));
	snprintf(work, sizeof(work), "/tmp/mproc-consumer-XXXXXX");
	cr_assert_not_null(mkdtemp(work));
	const char *argv[] = { "cmake", "--install", MP_TEST_BINDIR,
		"--prefix", prefix, NULL };
	run_ok(argv);
}

static void
remove_temp_dirs(void)
{
	const char *argv[] = { "rm", "-rf", prefix, work, NULL };
	run_ok(argv);
}

/* Run a consumer binary and check what it printed. */
static void
expect_consumer_output(const char *exe)
{
	const char *argv[] = { exe, NULL };
	char *out = NULL;
	int rv = mp_test_run(argv, NULL, 0, &out, NULL, NULL);
	cr_assert_eq(rv, 0, "%s exited with %d", exe, rv);
	cr_assert_str_eq(out, "ETIMEDOUT end of file\n");
	free(out);
}

Test(install, find_package_consumer_builds_and_runs, .timeout = 300)
{
	install_into_temp_prefix();
	char build[300];
	snprintf(build, sizeof(build), "%s/build", work);
	char prefix_arg[300];
	snprintf(prefix_arg, sizeof(prefix_arg), "-DCMAKE_PREFIX_PATH=%s", prefix);
	const char *configure[] = { "cmake", "-S", mp_test_src("tests/consumer"),
		"-B", build, prefix_arg, NULL };
	run_ok(configure);
	const char *compile[] = { "cmake", "--build", build, NULL };
	run_ok(compile);
	char exe[400];
	snprintf(exe, sizeof(exe), "%s/consumer_shared", build);
	expect_consumer_output(exe);
	snprintf(exe, sizeof(exe), "%s/consumer_static", build);
	expect_consumer_output(exe);
	remove_temp_dirs();
}

Test(install, pkg_config_consumer_builds_and_runs, .timeout = 300)
{
	install_into_temp_prefix();
	char pc_path[400];
	snprintf(pc_path, sizeof(pc_path), "%s/lib/pkgconfig", prefix);
	/* GNUInstallDirs may pick lib/<multiarch>: look for the .pc file. */
	const char *find[] = { "sh", "-c", "dirname \"$(find \"$0\" -name mproc.pc | head -n1)\"",
		prefix, NULL };
	char *out = NULL;
	cr_assert_eq(mp_test_run(find, NULL, 0, &out, NULL, NULL), 0);
	out[strcspn(out, "\n")] = '\0';
	cr_assert(out[0] != '\0' && strcmp(out, ".") != 0, "mproc.pc not installed");
	setenv("PKG_CONFIG_PATH", out, 1);
	free(out);
	char out_arg[300];
	snprintf(out_arg, sizeof(out_arg), "OUT=%s", work);
	const char *make[] = { "make", "-s", "-C", mp_test_src("tests/consumer"),
		"-f", "Makefile", out_arg, "consumer_pkgconfig", NULL };
	run_ok(make);
	char exe[400];
	snprintf(exe, sizeof(exe), "%s/consumer_pkgconfig", work);
	expect_consumer_output(exe);
	remove_temp_dirs();
}

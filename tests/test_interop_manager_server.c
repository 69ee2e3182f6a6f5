/* SPDX-License-Identifier: MIT */
/* test_interop_manager_server.c: CPython's BaseManager and SyncManager clients against mpmanager. */
#include "harness/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

MP_TEST_SUITE(interop_manager_server);

#define WAIT_MS 60000

/* Start mpmanager with extra arguments; *port gets its TCP port. */
static void
start_mpmanager(const char *const extra[], struct mp_test_child *ch,
    char *port, size_t size)
{
	const char *argv[16];
	size_t n = 0;
	argv[n++] = mp_test_bin("bin/mpmanager");
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--quiet";
	for (size_t i = 0; extra[i] != NULL && n < 15; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	mp_test_spawn(argv, ch);
	char line[128];
	ssize_t len = mp_test_read_line(ch->out_fd, line, sizeof(line),
	    WAIT_MS);
	cr_assert(len > 0, "mpmanager printed no address");
	char *colon = strrchr(line, ':');
	cr_assert_not_null(colon, "mpmanager printed \"%s\"", line);
	snprintf(port, size, "%s", colon + 1);
}

/* SIGTERM stops mpmanager cleanly (exit status 0). */
static void
stop_mpmanager(struct mp_test_child *ch)
{
	cr_assert_eq(kill(ch->pid, SIGTERM), 0);
	int st = mp_test_wait(ch, WAIT_MS);
	cr_assert_eq(st, 0, "mpmanager exited with %d", st);
}

/* The lecture's client: run 1 puts 'hello', run 2 prints it. */
static void
lecture_clients(const struct mp_test_python *py, const char *port)
{
	const char *put[] = { "1", port, NULL };
	const char *get[] = { "2", port, NULL };
	char *out = NULL;
	char *err = NULL;
	int st = mp_test_run_py(py, "lecture_basemanager_client.py", put, NULL,
	    0, &out, NULL, &err);
	cr_assert_eq(st, 0, "python %s client 1: status %d\n%s", py->label,
	    st, err);
	free(out);
	free(err);
	st = mp_test_run_py(py, "lecture_basemanager_client.py", get, NULL, 0,
	    &out, NULL, &err);
	cr_assert_eq(st, 0, "python %s client 2: status %d\n%s", py->label,
	    st, err);
	cr_assert_str_eq(out, "hello\n", "python %s client 2 printed \"%s\"",
	    py->label, out);
	free(out);
	free(err);
}

Test(interop_manager_server, lecture_client_against_mpmanager)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		struct mp_test_child ch;
		char port[16];
		const char *extra[] = { "--authkey", "abc", "--register",
			"get_queue=Queue", NULL };
		start_mpmanager(extra, &ch, port, sizeof(port));
		lecture_clients(&pys[i], port);
		stop_mpmanager(&ch);
	}
}

/* Run the transcript script against 127.0.0.1:port; returns stdout. */
static char *
transcript(const struct mp_test_python *py, const char *port,
    const char *server)
{
	const char *args[] = { port, "secret", NULL };
	char *out = NULL;
	char *err = NULL;
	int st = mp_test_run_py(py, "mgr_sync_transcript.py", args, NULL, 0,
	    &out, NULL, &err);
	cr_assert_eq(st, 0, "python %s against %s: status %d\n%s\n%s",
	    py->label, server, st, out, err);
	free(err);
	return out;
}

/* The first line where a and b differ, for the failure message. */
static void
first_difference(const char *a, const char *b, char *buf, size_t size)
{
	int line = 1;
	const char *la = a;
	const char *lb = b;
	while (*a != '\0' && *a == *b) {
		if (*a == '\n') {
			line++;
			la = a + 1;
			lb = b + 1;
		}
		a++;
		b++;
	}
	snprintf(buf, size, "line %d:\n  CPython: %.*s\n  mproc:   %.*s", line,
	    (int)strcspn(la, "\n"), la, (int)strcspn(lb, "\n"), lb);
}

/*
 * SyncManager's proxies, every exposed method, against a real CPython
 * SyncManager server and against mpmanager: the transcripts must match.
 */
Test(interop_manager_server, sync_manager_transcripts_match_cpython)
{
	char keyfile[64];
	snprintf(keyfile, sizeof(keyfile), "/tmp/mp-mgr-key-%d", (int)getpid());
	FILE *f = fopen(keyfile, "w");
	cr_assert_not_null(f);
	fputs("secret", f);
	fclose(f);
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		const struct mp_test_python *py = &pys[i];
		const char *args[] = { "secret", NULL };
		struct mp_test_child ref;
		mp_test_spawn_py(py->path, "mgr_sync_server.py", args, &ref);
		char pport[16];
		cr_assert(mp_test_read_line(ref.out_fd, pport, sizeof(pport),
		    WAIT_MS) > 0, "python %s server printed no port",
		    py->label);
		char *want = transcript(py, pport, "CPython");
		mp_test_wait(&ref, WAIT_MS);

		struct mp_test_child ch;
		char port[16];
		const char *extra[] = { "--authkey-file", keyfile, NULL };
		start_mpmanager(extra, &ch, port, sizeof(port));
		char *got = transcript(py, port, "mpmanager");
		stop_mpmanager(&ch);
		/* The same over a Unix socket. */
		char path[64];
		snprintf(path, sizeof(path), "/tmp/mp-mgr-%d.sock",
		    (int)getpid());
		const char *uargv[] = { mp_test_bin("bin/mpmanager"),
			"--listen", path, "--authkey-file", keyfile, "-q",
			NULL };
		mp_test_spawn(uargv, &ch);
		char line[128];
		cr_assert(mp_test_read_line(ch.out_fd, line, sizeof(line),
		    WAIT_MS) > 0);
		cr_assert_str_eq(line, path);
		char *got_unix = transcript(py, path, "mpmanager (Unix)");
		stop_mpmanager(&ch);
		cr_assert_eq(access(path, F_OK), -1, "socket left behind");
		cr_assert_str_eq(got_unix, got, "python %s: the Unix socket "
		    "transcript differs from the TCP one", py->label);
		free(got_unix);
		char diff[512] = "";
		if (strcmp(want, got) != 0) {
			first_difference(want, got, diff, sizeof(diff));
		}
		cr_assert_str_eq(got, want,
		    "python %s: transcripts differ at %s", py->label, diff);
		cr_assert(strstr(got, "\ndone\n") != NULL);
		fprintf(stderr, "python %s: %zu bytes of transcript match\n",
		    py->label, strlen(got));
		free(want);
		free(got);
	}
	unlink(keyfile);
}

static int
raw_connect(const char *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_port = htons((uint16_t)atoi(port));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/*
 * Garbage, oversized and half frames from raw sockets, before and after
 * the handshake, while a CPython client does its work.
 */
Test(interop_manager_server, bad_peers_do_not_disturb_python_clients)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	struct mp_test_child ch;
	char port[16];
	const char *extra[] = { "--authkey", "abc", "--register",
		"get_queue=Queue", "--max-message", "65536", NULL };
	start_mpmanager(extra, &ch, port, sizeof(port));
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%s", port);
	int garbage = raw_connect(port);
	cr_assert_eq(write(garbage, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	int half = raw_connect(port);
	cr_assert_eq(write(half, "\x00\x00\x00\x40#CHAL", 9), 9);
	mp_conn_t *big;
	expect_ok(mp_client_connect(addr, "abc", 3, WAIT_MS, &big));
	uint8_t hdr[4] = { 0x10, 0, 0, 0 };
	cr_assert_eq(write(mp_conn_fileno(big), hdr, 4), 4);
	mp_conn_t *junk;
	expect_ok(mp_client_connect(addr, "abc", 3, WAIT_MS, &junk));
	expect_ok(mp_conn_send_bytes(junk, "\x80\x04\x93\x93\x93", 5));
	mp_conn_t *part;
	expect_ok(mp_client_connect(addr, "abc", 3, WAIT_MS, &part));
	cr_assert_eq(write(mp_conn_fileno(part), "\x00\x00\x00\x30\x80\x04",
	    6), 6);
	for (size_t i = 0; i < n; i++) {
		lecture_clients(&pys[i], port);
	}
	close(garbage);
	close(half);
	mp_conn_close(big);
	mp_conn_close(junk);
	mp_conn_close(part);
	stop_mpmanager(&ch);
}

// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration: the command line and the process.
 *
 * Bad command lines (a table): exit code 2, one line on stderr naming
 * the problem, nothing on stdout, and nothing created or changed in the
 * directory (no socket, the backing file neither created nor
 * truncated).  --print-capabilities prints the JSON QEMU expects of a
 * block back-end; --help documents every option.  Several disks in one
 * process (--disk) serve I/O each on its own socket and file.  The
 * listening socket (SECURITY.md D.28): owner-only by default, a socket
 * another daemon listens on is left alone, a stale one replaced, a file
 * that is not a socket never removed, and the socket is gone after a
 * clean shutdown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blk_test.h"
#include "vu_util.h"

#define FILE_BYTES (1u << 20)
#define FILE_SEED 3
#define RUN_MS 5000

/* ---- a small strict JSON parser, capturing what the test looks at ---- */

struct json {
	const char *p;
	char type[32];
	char features[16][32];
	unsigned int nfeatures;
};

static bool js_value(struct json *j, int depth, const char *key);

static void js_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

/* A string; its first out_size - 1 bytes (unescaped ASCII) into out if not NULL. */
static bool js_string(struct json *j, char *out, size_t out_size)
{
	size_t n = 0;

	if (*j->p != '"')
		return false;
	j->p++;
	while (*j->p != '"') {
		char c = *j->p;

		if ((unsigned char)c < 0x20)
			return false;
		if (c == '\\') {
			j->p++;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i])
						return false;
				j->p += 4;
				c = '?';
			} else if (*j->p && strchr("\"\\/bfnrt", *j->p)) {
				c = *j->p;
			} else {
				return false;
			}
		}
		if (out && n + 1 < out_size)
			out[n++] = c;
		j->p++;
	}
	j->p++;
	if (out)
		out[n] = '\0';
	return true;
}

static bool js_digits(struct json *j)
{
	const char *s = j->p;

	while (*j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

static bool js_number(struct json *j)
{
	if (*j->p == '-')
		j->p++;
	if (*j->p == '0')
		j->p++;
	else if (!js_digits(j))
		return false;
	if (*j->p == '.') {
		j->p++;
		if (!js_digits(j))
			return false;
	}
	if (*j->p == 'e' || *j->p == 'E') {
		j->p++;
		if (*j->p == '+' || *j->p == '-')
			j->p++;
		if (!js_digits(j))
			return false;
	}
	return true;
}

static bool js_object(struct json *j, int depth)
{
	j->p++;
	js_ws(j);
	if (*j->p == '}') {
		j->p++;
		return true;
	}
	for (;;) {
		char key[32];

		js_ws(j);
		if (!js_string(j, key, sizeof(key)))
			return false;
		js_ws(j);
		if (*j->p++ != ':')
			return false;
		if (!js_value(j, depth + 1, depth == 0 ? key : NULL))
			return false;
		js_ws(j);
		if (*j->p == '}') {
			j->p++;
			return true;
		}
		if (*j->p++ != ',')
			return false;
	}
}

static bool js_array(struct json *j, int depth, const char *key)
{
	bool features = key && !strcmp(key, "features");

	j->p++;
	js_ws(j);
	if (*j->p == ']') {
		j->p++;
		return true;
	}
	for (;;) {
		js_ws(j);
		if (features && *j->p == '"' && j->nfeatures < VU_ARRAY_SIZE(j->features)) {
			if (!js_string(j, j->features[j->nfeatures++], sizeof(j->features[0])))
				return false;
		} else if (!js_value(j, depth + 1, NULL)) {
			return false;
		}
		js_ws(j);
		if (*j->p == ']') {
			j->p++;
			return true;
		}
		if (*j->p++ != ',')
			return false;
	}
}

static bool js_value(struct json *j, int depth, const char *key)
{
	if (depth > 32)
		return false;
	js_ws(j);
	switch (*j->p) {
	case '{':
		return js_object(j, depth);
	case '[':
		return js_array(j, depth, key);
	case '"':
		if (key && !strcmp(key, "type"))
			return js_string(j, j->type, sizeof(j->type));
		return js_string(j, NULL, 0);
	case 't':
		return !strncmp(j->p, "true", 4) && (j->p += 4);
	case 'f':
		return !strncmp(j->p, "false", 5) && (j->p += 5);
	case 'n':
		return !strncmp(j->p, "null", 4) && (j->p += 4);
	default:
		return js_number(j);
	}
}

/* The whole text is one JSON object. */
static bool json_parse(struct json *j, const char *text)
{
	memset(j, 0, sizeof(*j));
	j->p = text;
	js_ws(j);
	if (*j->p != '{' || !js_value(j, 0, NULL))
		return false;
	js_ws(j);
	return *j->p == '\0';
}

/* ---- running the daemon to its exit ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/*
 * Expand "@S" (t->sock), "@F" (t->file) and "@/" (t->dir + "/") in each
 * argument; the results live in store.
 */
static void expand(const struct blkt *t, const char *const *in, const char **out,
		   char store[][256])
{
	unsigned int i;

	for (i = 0; in[i]; i++) {
		char *d = store[i];
		size_t left = 256;

		for (const char *s = in[i]; *s; s++) {
			const char *rep = NULL;
			int n;

			if (s[0] == '@' && s[1] == 'S')
				rep = t->sock;
			else if (s[0] == '@' && s[1] == 'F')
				rep = t->file;
			else if (s[0] == '@' && s[1] == '/')
				rep = t->dir;
			if (rep) {
				n = snprintf(d, left, "%s%s", rep, s[1] == '/' ? "/" : "");
				s++;
			} else {
				n = snprintf(d, left, "%c", *s);
			}
			assert_true(n >= 0 && (size_t)n < left);
			d += n;
			left -= (size_t)n;
		}
		out[i] = store[i];
	}
	out[i] = NULL;
}

struct run {
	int status;
	char *out;
	char *err;
};

static void run_daemon(struct blkt *t, const char *const *args, struct run *r)
{
	static char store[32][256];
	const char *argv[32];
	char out[160], err[160];

	expand(t, args, argv, store);
	blkt_path(t, out, sizeof(out), "stdout");
	blkt_path(t, err, sizeof(err), "stderr");
	unlink(out);
	unlink(err);
	r->status = blkt_run(argv, out, err, RUN_MS);
	r->out = slurp(out);
	r->err = slurp(err);
	unlink(out);
	unlink(err);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Names in t->dir, sorted, comma-separated. */
static void dir_listing(const struct blkt *t, char *buf, size_t size)
{
	struct dirent **names;
	int n = scandir(t->dir, &names, NULL, alphasort);

	assert_true(n >= 0);
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			if (buf[0])
				strncat(buf, ",", size - strlen(buf) - 1);
			strncat(buf, names[i]->d_name, size - strlen(buf) - 1);
		}
		free(names[i]);
	}
	free(names);
}

/* ---- bad command lines ---- */

struct cli_case {
	const char *name;
	const char *args[12];     /* after argv[0]; @S @F @/ expanded */
	const char *needle;       /* the error line names this */
};

#define SERIAL21 "ABCDEFGHIJ0123456789X"

static const struct cli_case bad_cases[] = {
	{ "missing backing file", { "--socket-path", "@S", "--blk-file", "@/missing.img" },
	  "missing.img" },
	{ "unknown option", { "--socket-path", "@S", "--blk-file", "@F", "--bogus" }, "--bogus" },
	{ "option without its value", { "--socket-path", "@S", "--blk-file", "@F", "--serial" },
	  "needs a value" },
	{ "unusable CPU", { "--socket-path", "@S", "--blk-file", "@F", "--cpus", "99" }, "99" },
	{ "CPU list that is no list", { "--socket-path", "@S", "--blk-file", "@F", "--cpus", "0-x" },
	  "CPU 'x'" },
	{ "serial longer than 20 bytes",
	  { "--socket-path", "@S", "--blk-file", "@F", "--serial", SERIAL21 }, "serial" },
	{ "socket in a directory that does not exist",
	  { "--socket-path", "@/nodir/blk.sock", "--blk-file", "@F" }, "nodir" },
	{ "zero queues", { "--socket-path", "@S", "--blk-file", "@F", "--num-queues", "0" },
	  "num-queues" },
	{ "too many queues", { "--socket-path", "@S", "--blk-file", "@F", "--num-queues", "100000" },
	  "100000" },
	{ "unknown engine", { "--socket-path", "@S", "--blk-file", "@F", "--engine", "aio" }, "aio" },
	{ "bad --direct", { "--socket-path", "@S", "--blk-file", "@F", "--direct", "maybe" }, "maybe" },
	{ "bad --poll", { "--socket-path", "@S", "--blk-file", "@F", "--poll", "sometimes" },
	  "sometimes" },
	{ "no disk", { NULL }, "disk" },
	{ "no backing store", { "--socket-path", "@S" }, "blk-file" },
	{ "no socket", { "--blk-file", "@F" }, "socket-path" },
	{ "stray argument", { "--socket-path", "@S", "--blk-file", "@F", "stray" }, "stray" },
	{ "backing file is a directory", { "--socket-path", "@S", "--blk-file", "@/subdir" },
	  "subdir" },
	{ "socket path is a regular file", { "--socket-path", "@/not-a-socket", "--blk-file", "@F" },
	  "not-a-socket" },
	{ "--disk with an unknown key", { "--disk", "socket-path=@S,blk-file=@F,colour=red" },
	  "colour" },
	{ "both a file and an image", { "--socket-path", "@S", "--blk-file", "@F", "--rbd", "rbd/x" },
	  "either --blk-file or --rbd" },
	{ "Ceph options without --rbd", { "--socket-path", "@S", "--blk-file", "@F", "--ceph-id", "x" },
	  "go with --rbd" },
	{ "file options with --rbd", { "--socket-path", "@S", "--rbd", "rbd/x", "--direct", "off" },
	  "apply to files" },
	{ "--rbd with another engine", { "--socket-path", "@S", "--rbd", "rbd/x", "--engine", "null" },
	  "needs the rbd engine" },
	{ "rbd engine without an image", { "--socket-path", "@S", "--blk-file", "@F", "--engine", "rbd" },
	  "needs --rbd" },
	{ "malformed image name", { "--socket-path", "@S", "--rbd", "no-pool" }, "no-pool" },
	{ "--disk with an image and a file",
	  { "--disk", "socket-path=@S,blk-file=@F,rbd=rbd/x" }, "not both" },
	{ "second --disk with a missing file",
	  { "--disk", "socket-path=@S,blk-file=@F", "--disk", "socket-path=@/b.sock,blk-file=@/gone.img" },
	  "gone.img" },
};

static void test_bad_command_lines(void **state)
{
	struct blkt *t = *state;
	char before[512], after[512], subdir[160], notsock[160];
	struct stat st;
	int fd;

	blkt_make_file(t->file, FILE_BYTES, FILE_SEED);
	blkt_path(t, subdir, sizeof(subdir), "subdir");
	assert_int_equal(mkdir(subdir, 0700), 0);
	blkt_path(t, notsock, sizeof(notsock), "not-a-socket");
	fd = open(notsock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep me", 7), 7);
	close(fd);
	dir_listing(t, before, sizeof(before));

	for (unsigned int i = 0; i < VU_ARRAY_SIZE(bad_cases); i++) {
		const struct cli_case *c = &bad_cases[i];
		const char *args[16] = { "vhost-blk" };
		const char *nl;
		struct run r;
		unsigned int n = 1;

		for (unsigned int k = 0; c->args[k]; k++)
			args[n++] = c->args[k];
		args[n] = NULL;
		run_daemon(t, args, &r);
		if (!(r.status != -1 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2))
			fail_msg("%s: %s %d, stderr: %s", c->name,
				 r.status == -1 ? "still running after" :
				 WIFEXITED(r.status) ? "exit code" : "signal",
				 r.status == -1 ? RUN_MS :
				 WIFEXITED(r.status) ? WEXITSTATUS(r.status) : WTERMSIG(r.status), r.err);
		/* One line naming the problem, nothing else. */
		nl = strchr(r.err, '\n');
		if (!nl || nl[1] != '\0')
			fail_msg("%s: stderr is not one line: \"%s\"", c->name, r.err);
		if (!strstr(r.err, c->needle))
			fail_msg("%s: the error \"%.*s\" does not name \"%s\"", c->name,
				 (int)(nl - r.err), r.err, c->needle);
		if (r.out[0])
			fail_msg("%s: printed on stdout: %s", c->name, r.out);
		if (getenv("BLKT_VERBOSE"))
			print_message("%-45s %s", c->name, r.err);
		/* Nothing created, removed or changed. */
		dir_listing(t, after, sizeof(after));
		if (strcmp(before, after))
			fail_msg("%s: directory was [%s], is [%s]", c->name, before, after);
		assert_int_equal(stat(t->file, &st), 0);
		assert_int_equal(st.st_size, FILE_BYTES);
		blkt_check_file(t->file, 0, FILE_BYTES, FILE_SEED);
		run_free(&r);
	}
	{
		char buf[16] = { 0 };

		fd = open(notsock, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, buf, sizeof(buf)), 7);
		assert_string_equal(buf, "keep me");
		close(fd);
	}
	t->passed = true;
}

static void test_print_capabilities(void **state)
{
	struct blkt *t = *state;
	bool ro = false, file = false;
	struct json j;
	struct run r;

	run_daemon(t, (const char *[]){ "vhost-blk", "--print-capabilities", NULL }, &r);
	assert_true(r.status != -1 && WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_string_equal(r.err, "");
	if (!json_parse(&j, r.out))
		fail_msg("not valid JSON at \"%.20s\": %s", j.p, r.out);
	assert_string_equal(j.type, "block");
	for (unsigned int i = 0; i < j.nfeatures; i++) {
		ro |= !strcmp(j.features[i], "read-only");
		file |= !strcmp(j.features[i], "blk-file");
	}
	assert_true(ro && file);
	run_free(&r);
	t->passed = true;
}

static void test_help(void **state)
{
	struct blkt *t = *state;
	static const char *const options[] = {
		"--socket-path", "--fd", "--client", "--blk-file", "--read-only", "--num-queues",
		"--serial", "--engine", "--direct", "--fixed-buffers", "--write-cache", "--cpus",
		"--poll", "--socket-mode", "--disk", "--verbose", "--print-capabilities", "--help",
	};
	struct run r;

	run_daemon(t, (const char *[]){ "vhost-blk", "--help", NULL }, &r);
	assert_true(r.status != -1 && WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_string_equal(r.err, "");
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(options); i++)
		if (!strstr(r.out, options[i]))
			fail_msg("--help does not document %s", options[i]);
	run_free(&r);
	t->passed = true;
}

/* ---- several disks in one process ---- */

static void get_serial(struct blkt *t, char *out)
{
	uint64_t gpa;
	uint32_t len;
	char *p = blkt_data(t, VIRTIO_BLK_ID_BYTES, 8, &gpa);

	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, gpa, VIRTIO_BLK_ID_BYTES, &len),
			 VIRTIO_BLK_S_OK);
	memcpy(out, p, VIRTIO_BLK_ID_BYTES);
	out[VIRTIO_BLK_ID_BYTES] = '\0';
}

static void test_several_disks(void **state)
{
	struct blkt *t = *state;
	struct blkt *t2 = calloc(1, sizeof(*t2));
	char spec1[400], spec2[400], serial[VIRTIO_BLK_ID_BYTES + 1];
	struct virtio_blk_config c;

	assert_non_null(t2);
	memcpy(t2->dir, t->dir, sizeof(t->dir));
	blkt_path(t, t2->sock, sizeof(t2->sock), "two.sock");
	blkt_path(t, t2->file, sizeof(t2->file), "two.img");
	blkt_make_file(t->file, 4u << 20, 0);
	blkt_make_file(t2->file, 8u << 20, 0);
	snprintf(spec1, sizeof(spec1), "socket-path=%s,blk-file=%s,serial=disk-one", t->sock, t->file);
	snprintf(spec2, sizeof(spec2), "socket-path=%s,blk-file=%s,serial=disk-two,num-queues=2,direct=off",
		 t2->sock, t2->file);
	blkt_spawn_argv(t, (const char *[]){ "vhost-blk", "--disk", spec1, "--disk", spec2,
					     "--cpus", "0", "--poll", "adaptive", NULL });
	blkt_connect(t, NULL);
	blkt_connect(t2, &(struct blkt_conn_opts){ .nq = 2, .packed = true });

	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), (4u << 20) / 512);
	blkt_get_config(t2, &c);
	assert_int_equal(le64toh(c.capacity), (8u << 20) / 512);
	assert_int_equal(le16toh(c.num_queues), 2);
	get_serial(t, serial);
	assert_string_equal(serial, "disk-one");
	get_serial(t2, serial);
	assert_string_equal(serial, "disk-two");

	/* Interleaved I/O on both, each into its own file. */
	for (unsigned int i = 0; i < 8; i++) {
		assert_int_equal(blkt_write_pattern(t, 0, i * 64, 32, 61), VIRTIO_BLK_S_OK);
		assert_int_equal(blkt_write_pattern(t2, i % 2, i * 64, 32, 62), VIRTIO_BLK_S_OK);
	}
	for (unsigned int i = 0; i < 8; i++) {
		blkt_check_read(t, 0, i * 64, 32, 61);
		blkt_check_read(t2, i % 2, i * 64, 32, 62);
		blkt_check_file(t->file, i * 64 * 512, 32 * 512, 61);
		blkt_check_file(t2->file, i * 64 * 512, 32 * 512, 62);
	}
	/* One front-end leaving does not disturb the other disk. */
	blkt_disconnect(t);
	assert_int_equal(blkt_write_pattern(t2, 1, 4096, 8, 63), VIRTIO_BLK_S_OK);
	blkt_check_read(t2, 1, 4096, 8, 63);
	blkt_connect(t, NULL);
	blkt_check_read(t, 0, 0, 32, 61);

	t2->pid = t->pid;         /* for blkt_pass's liveness check */
	blkt_pass(t2);
	t2->pid = 0;
	blkt_pass(t);
	vuf_close(t2->vuf);
	free(t2);
}

/* ---- the listening socket (SECURITY.md D.28) ---- */

static void test_socket(void **state)
{
	struct blkt *t = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char other_sock[160];
	struct stat st;
	struct run r;
	int fd;

	blkt_make_file(t->file, 1u << 20, 0);

	/* A stale socket (nothing listens) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_true(strlen(t->sock) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, t->sock, strlen(t->sock) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(stat(t->sock, &st), 0);

	blkt_spawn(t, NULL);
	blkt_connect(t, NULL);
	/* Owner-only permissions. */
	assert_int_equal(stat(t->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(blkt_write_pattern(t, 0, 0, 8, 71), VIRTIO_BLK_S_OK);

	/* A second daemon on the same socket: refused, the first untouched. */
	run_daemon(t, (const char *[]){ "vhost-blk", "--socket-path", "@S", "--blk-file", "@F",
					"--cpus", "0", NULL }, &r);
	assert_true(r.status != -1 && WIFEXITED(r.status));
	assert_int_not_equal(WEXITSTATUS(r.status), 0);
	assert_non_null(strstr(r.err, t->sock));
	run_free(&r);
	assert_int_equal(stat(t->sock, &st), 0);
	blkt_check_read(t, 0, 0, 8, 71);
	blkt_disconnect(t);
	blkt_connect(t, NULL);
	blkt_check_read(t, 0, 0, 8, 71);
	blkt_pass(t);

	/* Clean shutdown removes the socket. */
	blkt_disconnect(t);
	assert_int_equal(blkt_stop(t, 10000), 0);
	assert_int_equal(stat(t->sock, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* --socket-mode. */
	blkt_path(t, other_sock, sizeof(other_sock), "shared.sock");
	blkt_spawn_argv(t, (const char *[]){ "vhost-blk", "--socket-path", other_sock,
					     "--blk-file", t->file, "--socket-mode", "0660",
					     "--cpus", "0", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .sock = other_sock });
	assert_int_equal(stat(other_sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	blkt_pass(t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_command_lines, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_print_capabilities, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_help, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_several_disks, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_socket, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

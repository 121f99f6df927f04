// SPDX-License-Identifier: MIT
/*
 * vhost-blk: serves virtual machines' disks over vhost-user, with I/O on
 * io_uring or on Ceph RBD images.  This file is the program: command line, pollers on pinned
 * threads, one vhost-user device and socket per disk, the control loop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"
#include "vu_server.h"
#include "vu_util.h"

#define MAX_DISKS 64
#define MAX_CPUS 64
#define EXIT_USAGE 2

struct options {
	struct blk_disk_config disks[MAX_DISKS];
	unsigned int ndisks;
	int cpus[MAX_CPUS];
	unsigned int ncpus;
	enum vu_poll_mode poll_mode;
	bool poll_given;          /* --poll was on the command line */
	uint32_t idle_us;
	mode_t socket_mode;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vhost-blk --socket-path PATH (--blk-file FILE | --rbd POOL/IMAGE) [options]\n"
"       vhost-blk --disk socket-path=PATH,blk-file=FILE[,...] [--disk ...] [options]\n"
"       vhost-blk --print-capabilities\n"
"\n"
"Serves a virtio-blk disk to a vhost-user front-end (QEMU, DPDK virtio-user)\n"
"with its I/O on io_uring, or on a Ceph RBD image through librbd.\n"
"\n"
"Disk options (the first disk; --disk takes the same as KEY=VALUE):\n"
"  --socket-path PATH    listen on this Unix socket (owner-only permissions)\n"
"  --fd FD               use this inherited socket instead (listening or connected)\n"
"  --client              connect to PATH instead (front-end started with server=on),\n"
"                        and reconnect after a disconnect\n"
"  --blk-file FILE       the backing file or block device (never created or truncated)\n"
"  --rbd POOL[/NAMESPACE]/IMAGE[@SNAP]\n"
"                        serve this RBD image instead (a snapshot: read-only)\n"
"  --ceph-conf FILE      Ceph configuration of --rbd (default: Ceph's own search,\n"
"                        /etc/ceph/ceph.conf; $CEPH_CONF)\n"
"  --ceph-id NAME        Ceph client name without \"client.\" (default admin); its\n"
"                        keyring is found as the configuration says\n"
"  --read-only           refuse writes, discards and write-zeroes (VIRTIO_BLK_F_RO)\n"
"  --num-queues N        request queues offered (1..%d, default 1)\n"
"  --serial ID           the disk's serial (GET_ID), at most 20 bytes\n"
"  --engine io_uring|null|rbd  null completes requests without I/O (default\n"
"                        io_uring; --rbd selects rbd)\n"
"  --direct on|off       files: O_DIRECT on the backing store (default on; falls\n"
"                        back to the page cache where the filesystem refuses it)\n"
"  --fixed-buffers auto|on|off  files: register guest memory with io_uring as fixed\n"
"                        buffers: auto = hugepage-backed memory only (resident\n"
"                        anyway), on = all of it (pins the guest's memory)\n"
"  --write-cache on|off  initial guest-visible write cache (default on: the guest\n"
"                        flushes; off: every write is durable before completing)\n"
"Process options:\n"
"  --cpus LIST           CPUs of the pollers, one poller per CPU, e.g. 1 or 0,2-3\n"
"                        (default: the first CPU the process may use); queue i of\n"
"                        every disk runs on poller i %% npollers\n"
"  --poll always|adaptive[:IDLE_US]|never\n"
"                        busy-poll, poll then sleep after IDLE_US (default %u) idle\n"
"                        microseconds, or sleep whenever idle (default adaptive;\n"
"                        never when every disk is --rbd)\n"
"  --socket-mode OCTAL   permissions of listening sockets (default 0600)\n"
"  --verbose             log more\n"
"  --print-capabilities  print the vhost-user backend capabilities (JSON) and exit\n"
"  --help                this text\n"
"\n"
"Resize: grow the file or device, then send SIGHUP: the new capacity reaches\n"
"the guest as a config change.  An RBD image's resize (rbd resize) reaches the\n"
"guest by itself.  An unreachable cluster fails the start within Ceph's\n"
"client_mount_timeout (vhost-blk's default 10 s; the configuration may set it).\n",
		VU_DEV_MAX_QUEUES, VU_POLL_DEFAULT_IDLE_US);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhost-blk: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	exit(EXIT_USAGE);
}

static unsigned long parse_num(const char *what, const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s || v < min || v > max || s[0] == '-')
		die_usage("invalid %s '%s' (expected %lu..%lu)", what, s, min, max);
	return v;
}

static bool parse_bool(const char *what, const char *s)
{
	if (!strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "1"))
		return true;
	if (!strcmp(s, "off") || !strcmp(s, "false") || !strcmp(s, "0"))
		return false;
	die_usage("invalid %s '%s' (expected on or off)", what, s);
}

static enum blk_engine_kind parse_engine(const char *s)
{
	if (!strcmp(s, "io_uring"))
		return BLK_ENGINE_URING;
	if (!strcmp(s, "null"))
		return BLK_ENGINE_NULL;
	if (!strcmp(s, "rbd"))
		return BLK_ENGINE_RBD;
	die_usage("unknown engine '%s' (expected io_uring, null or rbd)", s);
}

static enum blk_fixed_mode parse_fixed(const char *s)
{
	if (!strcmp(s, "auto"))
		return BLK_FIXED_AUTO;
	if (!strcmp(s, "on"))
		return BLK_FIXED_ON;
	if (!strcmp(s, "off"))
		return BLK_FIXED_OFF;
	die_usage("invalid fixed-buffers '%s' (expected auto, on or off)", s);
}

static void parse_cpus(struct options *o, const char *list)
{
	cpu_set_t allowed;
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		exit(1);
	sched_getaffinity(0, sizeof(allowed), &allowed);
	o->ncpus = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned long lo, hi;

		if (dash)
			*dash = '\0';
		lo = parse_num("CPU", tok, 0, CPU_SETSIZE - 1);
		hi = dash ? parse_num("CPU", dash + 1, lo, CPU_SETSIZE - 1) : lo;
		for (unsigned long c = lo; c <= hi; c++) {
			if (!CPU_ISSET(c, &allowed))
				die_usage("CPU %lu is not available to this process", c);
			if (o->ncpus == MAX_CPUS)
				die_usage("more than %d CPUs", MAX_CPUS);
			o->cpus[o->ncpus++] = (int)c;
		}
	}
	free(copy);
	if (!o->ncpus)
		die_usage("empty CPU list '%s'", list);
}

static void disk_defaults(struct blk_disk_config *d)
{
	memset(d, 0, sizeof(*d));
	d->socket_fd = -1;
	d->direct = true;
	d->writeback = true;
	d->num_queues = 1;
	d->engine = BLK_ENGINE_URING;
}

/* --disk socket-path=PATH,blk-file=FILE,... */
static void parse_disk(struct blk_disk_config *d, char *spec)
{
	char *save = NULL;

	disk_defaults(d);
	for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (v)
			*v++ = '\0';
		if (!strcmp(kv, "read-only") || !strcmp(kv, "client")) {
			bool b = v ? parse_bool(kv, v) : true;

			if (kv[0] == 'r')
				d->read_only = b;
			else
				d->client = b;
			continue;
		}
		if (!v)
			die_usage("--disk: '%s' needs a value", kv);
		if (!strcmp(kv, "socket-path"))
			d->socket_path = v;
		else if (!strcmp(kv, "fd"))
			d->socket_fd = (int)parse_num("fd", v, 0, INT_MAX);
		else if (!strcmp(kv, "blk-file"))
			d->file = v;
		else if (!strcmp(kv, "rbd"))
			d->rbd = v;
		else if (!strcmp(kv, "ceph-conf"))
			d->ceph_conf = v;
		else if (!strcmp(kv, "ceph-id"))
			d->ceph_id = v;
		else if (!strcmp(kv, "num-queues"))
			d->num_queues = (uint16_t)parse_num("num-queues", v, 1, VU_DEV_MAX_QUEUES);
		else if (!strcmp(kv, "serial"))
			d->serial = v;
		else if (!strcmp(kv, "engine"))
			d->engine = parse_engine(v), d->engine_given = true;
		else if (!strcmp(kv, "direct"))
			d->direct = parse_bool(kv, v), d->file_options = true;
		else if (!strcmp(kv, "write-cache"))
			d->writeback = parse_bool(kv, v);
		else if (!strcmp(kv, "fixed-buffers"))
			d->fixed = parse_fixed(v), d->file_options = true;
		else
			die_usage("--disk: unknown key '%s'", kv);
	}
}

/* Which store and engine: --rbd selects rbd, which takes no file options. */
static void check_store(struct blk_disk_config *d, unsigned int i)
{
	if (d->file && d->rbd)
		die_usage("disk %u: give either --blk-file or --rbd, not both", i);
	if (!d->file && !d->rbd)
		die_usage("disk %u: no backing store (--blk-file or --rbd)", i);
	if (d->rbd) {
		if (d->engine_given && d->engine != BLK_ENGINE_RBD)
			die_usage("disk %u: --rbd needs the rbd engine", i);
		if (d->file_options)
			die_usage("disk %u: --direct and --fixed-buffers apply to files, not to --rbd", i);
		d->engine = BLK_ENGINE_RBD;
	} else {
		if (d->engine == BLK_ENGINE_RBD)
			die_usage("disk %u: the rbd engine needs --rbd", i);
		if (d->ceph_conf || d->ceph_id)
			die_usage("disk %u: --ceph-conf and --ceph-id go with --rbd", i);
	}
}

static void check_disk(struct blk_disk_config *d, unsigned int i)
{
	check_store(d, i);
	if (!d->socket_path == (d->socket_fd < 0))
		die_usage("disk %u: give exactly one of --socket-path and --fd", i);
	if (d->client && !d->socket_path)
		die_usage("disk %u: --client needs --socket-path", i);
	if (d->serial && strlen(d->serial) > BLK_SERIAL_LEN)
		die_usage("disk %u: serial '%s' is longer than %d bytes", i, d->serial, BLK_SERIAL_LEN);
	if (d->socket_path && !d->client) {
		char *dir = strdup(d->socket_path), *slash = strrchr(dir, '/');
		struct stat st;

		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		if (slash && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
			die_usage("disk %u: socket directory %s does not exist", i, dir);
		free(dir);
	}
}

static void parse_args(struct options *o, int argc, char **argv)
{
	enum { O_SOCKET = 256, O_FD, O_CLIENT, O_FILE, O_RBD, O_CEPH_CONF, O_CEPH_ID, O_RO, O_NQ,
	       O_SERIAL, O_ENGINE, O_DIRECT, O_WCE, O_FIXED, O_CPUS, O_POLL, O_DISK, O_MODE, O_VERBOSE, O_CAPS, O_HELP };
	static const struct option longopts[] = {
		{ "socket-path", required_argument, NULL, O_SOCKET },
		{ "fd", required_argument, NULL, O_FD },
		{ "client", no_argument, NULL, O_CLIENT },
		{ "blk-file", required_argument, NULL, O_FILE },
		{ "rbd", required_argument, NULL, O_RBD },
		{ "ceph-conf", required_argument, NULL, O_CEPH_CONF },
		{ "ceph-id", required_argument, NULL, O_CEPH_ID },
		{ "read-only", no_argument, NULL, O_RO },
		{ "num-queues", required_argument, NULL, O_NQ },
		{ "serial", required_argument, NULL, O_SERIAL },
		{ "engine", required_argument, NULL, O_ENGINE },
		{ "direct", required_argument, NULL, O_DIRECT },
		{ "write-cache", required_argument, NULL, O_WCE },
		{ "fixed-buffers", required_argument, NULL, O_FIXED },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "poll", required_argument, NULL, O_POLL },
		{ "disk", required_argument, NULL, O_DISK },
		{ "socket-mode", required_argument, NULL, O_MODE },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "print-capabilities", no_argument, NULL, O_CAPS },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct blk_disk_config first;
	bool have_first = false, extra_disks = false;
	int c;

	disk_defaults(&first);
	o->poll_mode = VU_POLL_ADAPTIVE;
	o->idle_us = VU_POLL_DEFAULT_IDLE_US;
	o->socket_mode = 0600;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c >= O_SOCKET && c <= O_FIXED)
			have_first = true;
		switch (c) {
		case O_SOCKET: first.socket_path = optarg; break;
		case O_FD: first.socket_fd = (int)parse_num("--fd", optarg, 0, INT_MAX); break;
		case O_CLIENT: first.client = true; break;
		case O_FILE: first.file = optarg; break;
		case O_RBD: first.rbd = optarg; break;
		case O_CEPH_CONF: first.ceph_conf = optarg; break;
		case O_CEPH_ID: first.ceph_id = optarg; break;
		case O_RO: first.read_only = true; break;
		case O_NQ: first.num_queues = (uint16_t)parse_num("--num-queues", optarg, 1, VU_DEV_MAX_QUEUES); break;
		case O_SERIAL: first.serial = optarg; break;
		case O_ENGINE:
			first.engine = parse_engine(optarg);
			first.engine_given = true;
			break;
		case O_DIRECT:
			first.direct = parse_bool("--direct", optarg);
			first.file_options = true;
			break;
		case O_WCE: first.writeback = parse_bool("--write-cache", optarg); break;
		case O_FIXED:
			first.fixed = parse_fixed(optarg);
			first.file_options = true;
			break;
		case O_CPUS: parse_cpus(o, optarg); break;
		case O_POLL:
			if (vu_poll_mode_parse(optarg, &o->poll_mode, &o->idle_us))
				die_usage("invalid --poll '%s'", optarg);
			o->poll_given = true;
			break;
		case O_DISK:
			if (o->ndisks + 1 >= MAX_DISKS)
				die_usage("more than %d disks", MAX_DISKS - 1);
			parse_disk(&o->disks[1 + o->ndisks++], optarg);
			extra_disks = true;
			break;
		case O_MODE: o->socket_mode = (mode_t)parse_num("--socket-mode", optarg, 0, 0777); break;
		case O_VERBOSE: vu_log_set_level(VU_LOG_DEBUG); break;
		case O_CAPS:
			printf("{\n  \"type\": \"block\",\n  \"features\": [\n    \"read-only\",\n    \"blk-file\",\n    \"rbd\"\n  ]\n}\n");
			exit(0);
		case O_HELP: usage(stdout); exit(0);
		default:
			/* getopt_long sets optopt to the option's value when
			 * its argument is missing, to 0 for an unknown one. */
			if (optopt >= O_SOCKET)
				die_usage("option '%s' needs a value", argv[optind - 1]);
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	/* disks[0] is the top-level disk, if any; the --disk ones follow. */
	if (have_first) {
		o->disks[0] = first;
		o->ndisks++;
	} else if (extra_disks) {
		memmove(&o->disks[0], &o->disks[1], o->ndisks * sizeof(o->disks[0]));
	} else {
		die_usage("no disk given");
	}
	bool all_rbd = true;

	for (unsigned int i = 0; i < o->ndisks; i++) {
		check_disk(&o->disks[i], i);
		all_rbd = all_rbd && o->disks[i].engine == BLK_ENGINE_RBD;
	}
	/* librbd's threads share the pollers' CPUs and do the work: a poller
	 * spinning while it waits for them only slows them (bench/README.md,
	 * rbd-compare), so rbd-only processes sleep whenever idle. */
	if (all_rbd && !o->poll_given)
		o->poll_mode = VU_POLL_NEVER;
	if (!o->ncpus) {
		int cpu = vu_first_allowed_cpu();

		if (cpu >= 0)
			o->cpus[o->ncpus++] = cpu;
	}
}

struct program {
	struct options opt;
	struct vu_poller *poller_list[MAX_CPUS];   /* one per opt.cpus[] */
	pthread_t poller_threads[MAX_CPUS];       /* running poller_list[0 .. nstarted) */
	unsigned int nstarted;
	struct blk_engine *engines[BLK_ENGINE_COUNT][MAX_CPUS];
	struct blk_device *devices[MAX_DISKS];
	unsigned int ndevices;
	struct vu_loop *loop;
};

static const struct blk_engine_ops *engine_ops(enum blk_engine_kind k)
{
	static const struct blk_engine_ops *const ops[BLK_ENGINE_COUNT] = {
		[BLK_ENGINE_URING] = &blk_engine_uring_ops,
		[BLK_ENGINE_NULL] = &blk_engine_null_ops,
		[BLK_ENGINE_RBD] = &blk_engine_rbd_ops,
	};

	return ops[k];
}

/* Re-read a disk's size; a new one reaches the guest as a config change. */
static void refresh_disk(struct blk_device *bd)
{
	if (bd->eops->refresh_size(&bd->disk) && vu_dev_notify_config_change(bd->vdev))
		vu_warn("%s: the front-end could not be told of the new size", bd->vdev->name);
}

static void on_sighup(void *arg)
{
	struct program *prog = arg;

	for (unsigned int i = 0; i < prog->ndevices; i++)
		refresh_disk(prog->devices[i]);
}

/* The store saw its size change (an RBD image's update watch). */
static void on_disk_change(struct vu_loop *loop, int fd, uint32_t events, void *arg)
{
	uint64_t v;

	(void)loop;
	(void)events;
	if (read(fd, &v, sizeof(v)) == sizeof(v))
		refresh_disk(arg);
}

/*
 * Every backing store is opened before any device or socket is created,
 * so that a bad file leaves nothing behind, not even for a moment.
 */
static int open_disk(struct program *prog, const struct blk_disk_config *cfg)
{
	struct blk_device *bd = calloc(1, sizeof(*bd));

	if (!bd)
		return -ENOMEM;
	bd->disk.fd = bd->disk.fd_buffered = bd->disk.change_fd = -1;
	prog->devices[prog->ndevices++] = bd;
	bd->eops = engine_ops(cfg->engine);
	return bd->eops->open_disk(&bd->disk, cfg);
}

static int setup_device(struct program *prog, unsigned int idx)
{
	struct blk_device *bd = prog->devices[idx];
	const struct blk_disk_config *cfg = &bd->disk.cfg;
	unsigned int np = prog->opt.ncpus;
	char name[64];
	int ret;

	bd->engines = prog->engines[cfg->engine];
	bd->disk_handles = calloc(np, sizeof(int));
	bd->fixed = calloc(np, sizeof(*bd->fixed));
	if (!bd->disk_handles || !bd->fixed)
		return -ENOMEM;
	for (unsigned int p = 0; p < np; p++) {
		if (!bd->engines[p]) {
			bd->engines[p] = bd->eops->create(prog->poller_list[p]);
			if (!bd->engines[p])
				return -ENOMEM;
		}
		ret = bd->eops->attach_disk ? bd->eops->attach_disk(bd->engines[p], &bd->disk) : 0;
		if (ret < 0) {
			vu_err("%s: cannot register with the %s engine: %s", bd->disk.name, bd->eops->name,
			       strerror(-ret));
			return ret;
		}
		bd->disk_handles[p] = ret;
	}
	bd->ops = blk_dev_ops;
	bd->ops.features = blk_device_features(&bd->disk);
	snprintf(name, sizeof(name), "blk%u", idx);
	struct vu_dev_config dcfg = {
		.name = name,
		.num_queues = cfg->num_queues,
		.pollers = prog->poller_list,
		.npollers = np,
		.ops = &bd->ops,
		.priv = bd,
	};
	bd->vdev = vu_dev_create(&dcfg);
	if (!bd->vdev)
		return -errno;
	struct vu_endpoint_config ecfg = {
		.mode = cfg->client ? VU_EP_CLIENT : cfg->socket_fd >= 0 ? VU_EP_FD : VU_EP_SERVER,
		.path = cfg->socket_path,
		.fd = cfg->socket_fd,
		.socket_mode = prog->opt.socket_mode,
	};
	bd->ep = vu_endpoint_create(prog->loop, bd->vdev, &ecfg);
	if (!bd->ep)
		return -errno;
	if (bd->disk.change_fd >= 0)
		return vu_loop_add(prog->loop, bd->disk.change_fd, EPOLLIN, on_disk_change, bd);
	return 0;
}

/* Once every disk is up: the line saying what each one serves. */
static void report_device(const struct blk_device *bd)
{
	const struct blk_disk_config *cfg = &bd->disk.cfg;

	vu_info("%s: %s (%llu sectors%s%s, %s engine) on %s%s", bd->vdev->name, bd->disk.name,
		(unsigned long long)bd->disk.capacity, cfg->read_only ? ", read-only" : "",
		bd->disk.direct ? ", O_DIRECT" : "", bd->eops->name,
		cfg->socket_path ? cfg->socket_path : "an inherited fd", cfg->client ? " (client)" : "");
}

static void teardown(struct program *prog)
{
	for (unsigned int i = 0; i < prog->ndevices; i++) {
		struct blk_device *bd = prog->devices[i];

		if (bd->ep && bd->disk.change_fd >= 0)
			vu_loop_del(prog->loop, bd->disk.change_fd);
		vu_endpoint_destroy(bd->ep);
		vu_dev_destroy(bd->vdev);
	}
	for (unsigned int p = 0; p < prog->nstarted; p++) {
		vu_poller_stop(prog->poller_list[p]);
		pthread_join(prog->poller_threads[p], NULL);
	}
	for (unsigned int i = 0; i < prog->ndevices; i++) {
		prog->devices[i]->eops->close_disk(&prog->devices[i]->disk);
		free(prog->devices[i]->disk_handles);
		free(prog->devices[i]->fixed);
		free(prog->devices[i]);
	}
	for (unsigned int k = 0; k < BLK_ENGINE_COUNT; k++)
		for (unsigned int p = 0; p < prog->opt.ncpus; p++)
			if (prog->engines[k][p])
				engine_ops(k)->destroy(prog->engines[k][p]);
	for (unsigned int p = 0; p < prog->opt.ncpus; p++)
		vu_poller_destroy(prog->poller_list[p]);
	vu_loop_destroy(prog->loop);
}

int main(int argc, char **argv)
{
	static struct program prog;
	int ret = 0;

	parse_args(&prog.opt, argc, argv);
	prog.loop = vu_loop_create();
	if (!prog.loop)
		return 1;
	for (unsigned int p = 0; p < prog.opt.ncpus; p++) {
		char name[32];

		snprintf(name, sizeof(name), "poller%u", p);
		struct vu_poller_config pc = {
			.name = name, .mode = prog.opt.poll_mode, .idle_us = prog.opt.idle_us,
			.cpu = prog.opt.cpus[p],
		};
		prog.poller_list[p] = vu_poller_create(&pc);
		if (!prog.poller_list[p]) {
			vu_err("cannot create a poller: %s", strerror(errno));
			ret = 1;
			goto out;
		}
	}
	for (unsigned int i = 0; i < prog.opt.ndisks; i++) {
		ret = open_disk(&prog, &prog.opt.disks[i]);
		if (ret) {
			ret = EXIT_USAGE;
			goto out;
		}
	}
	for (unsigned int i = 0; i < prog.opt.ndisks; i++) {
		ret = setup_device(&prog, i);
		if (ret) {
			ret = EXIT_USAGE;
			goto out;
		}
	}
	for (unsigned int i = 0; i < prog.ndevices; i++)
		report_device(prog.devices[i]);
	for (; prog.nstarted < prog.opt.ncpus; prog.nstarted++) {
		if (pthread_create(&prog.poller_threads[prog.nstarted], NULL, vu_poller_thread,
				   prog.poller_list[prog.nstarted])) {
			vu_err("cannot start a poller thread");
			ret = 1;
			goto out;
		}
	}
	ret = vu_loop_run(prog.loop, on_sighup, &prog) ? 1 : 0;
out:
	teardown(&prog);
	return ret;
}

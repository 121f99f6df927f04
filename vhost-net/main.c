// SPDX-License-Identifier: MIT
/*
 * vhost-net: serves virtual machines' NICs over vhost-user and switches
 * their packets with each other and with DPDK ports.  This file is the
 * program: command line, DPDK's EAL (hugepages when there are any,
 * anonymous memory otherwise, never files), one worker (poller) per DPDK
 * lcore pinned to the CPUs given, the ports, and the control loop on the
 * main lcore, which also prints the ports' counters on SIGUSR1 and at exit.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "net.h"
#include "switch.h"
#include "vu_util.h"

#define EXIT_USAGE 2
#define MAX_EAL_ARGS 256
/* MAC table: 2^12 buckets of NET_MAC_WAYS addresses. */
#define MAC_TABLE_ORDER 12
/* Memory EAL takes without hugepages. */
#define NOHUGE_MEM_MB "512"

struct options {
	struct net_vport_config vports[NET_MAX_PORTS];
	unsigned int nvports;
	struct rte_ether_addr macs[NET_MAX_PORTS];
	unsigned int nmacs;
	const char *uplinks[NET_MAX_PORTS];
	unsigned int nuplinks;
	int cpus[NET_MAX_WORKERS];
	unsigned int ncpus;
	enum vu_poll_mode poll_mode;
	uint32_t idle_us;
	enum net_mode mode;
	bool client;
	uint16_t npairs;
	mode_t socket_mode;
	bool verbose;
	char **user_eal;
	int nuser_eal;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vhost-net --socket-path PATH [--socket-path PATH ...] [options] [-- EAL-ARGS]\n"
"       vhost-net --print-capabilities\n"
"\n"
"Serves virtio-net devices to vhost-user front-ends (QEMU, DPDK virtio-user) and\n"
"switches their packets with each other and with DPDK ports, on DPDK.\n"
"\n"
"Ports (port numbers: the sockets in order, then the uplinks):\n"
"  --socket-path PATH    a guest port listening on this Unix socket (owner-only\n"
"                        permissions); repeat for more ports\n"
"  --client              connect to the PATHs instead (front-end started with\n"
"                        server=on) and reconnect after a disconnect\n"
"  --mac MAC             MAC address offered to a guest port, in the order of the\n"
"                        --socket-path options (default: a locally administered\n"
"                        address derived from the socket path)\n"
"  --num-queues N        queue pairs of each guest port (1..%d, default 1)\n"
"  --uplink DEVARGS      a DPDK ethdev as a port: net_tap0,iface=vtap0, net_null0,\n"
"                        net_af_packet0,iface=eth0, a PCI address...; repeatable\n"
"  --mode switch|xconnect  a MAC learning switch between all ports (default), or\n"
"                        port 0 wired to port 1 (exactly two ports)\n"
"Process:\n"
"  --cpus LIST           CPUs of the workers, one DPDK lcore each, e.g. 1 or 0,2-3\n"
"                        (default: the first CPU the process may use); queue pair k\n"
"                        of port p is polled on worker (p + k) %% workers, uplink RX\n"
"                        queue q on worker q %% workers\n"
"  --poll always|adaptive[:IDLE_US]|never\n"
"                        busy-poll, poll then sleep after IDLE_US (default %u) idle\n"
"                        microseconds, or sleep whenever idle (default adaptive);\n"
"                        an uplink without RX interrupts (net_null) keeps the\n"
"                        worker polling it awake\n"
"  --socket-mode OCTAL   permissions of listening sockets (default 0600)\n"
"  --verbose             log more (also DPDK's own messages)\n"
"  --print-capabilities  print the vhost-user backend capabilities (JSON) and exit\n"
"  --help                this text\n"
"  -- EAL-ARGS           more DPDK EAL arguments; without memory options vhost-net\n"
"                        uses hugepages when some are free, else --no-huge -m %s,\n"
"                        and always --in-memory (no files)\n"
"\n"
"Counters of every port are printed on SIGUSR1 and at exit: rx is what entered\n"
"the switch from the port, tx what the switch delivered to it, then drops by\n"
"reason; on SIGUSR1 a port with several queue pairs adds a line of its rx and\n"
"tx packets per pair.\n",
		NET_MAX_PAIRS, VU_POLL_DEFAULT_IDLE_US, NOHUGE_MEM_MB);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhost-net: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	exit(EXIT_USAGE);
}

static unsigned long parse_ulong(const char *what, const char *s, unsigned long min,
				 unsigned long max, int base)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		die_usage("invalid %s '%s' (expected %lu..%lu)", what, s, min, max);
	return v;
}

static void parse_cpus(struct options *o, const char *list)
{
	cpu_set_t allowed, seen;
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		exit(1);
	CPU_ZERO(&seen);
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		die_usage("cannot read the CPUs this process may use: %s", strerror(errno));
	o->ncpus = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned long lo, hi;

		if (dash)
			*dash = '\0';
		lo = parse_ulong("CPU", tok, 0, CPU_SETSIZE - 1, 10);
		hi = dash ? parse_ulong("CPU", dash + 1, lo, CPU_SETSIZE - 1, 10) : lo;
		for (unsigned long c = lo; c <= hi; c++) {
			if (!CPU_ISSET(c, &allowed))
				die_usage("CPU %lu is not available to this process", c);
			if (CPU_ISSET(c, &seen))
				die_usage("CPU %lu is listed twice", c);
			if (o->ncpus == NET_MAX_WORKERS || o->ncpus + 1 >= RTE_MAX_LCORE)
				die_usage("more than %d CPUs", NET_MAX_WORKERS);
			CPU_SET(c, &seen);
			o->cpus[o->ncpus++] = (int)c;
		}
	}
	free(copy);
	if (!o->ncpus)
		die_usage("empty CPU list '%s'", list);
}

/* A locally administered unicast address from the socket path (FNV-1a). */
static void default_mac(const char *path, struct rte_ether_addr *mac)
{
	uint32_t h = 2166136261u;

	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	mac->addr_bytes[0] = 0x02;
	mac->addr_bytes[1] = 0x76;
	mac->addr_bytes[2] = 0x6e;
	mac->addr_bytes[3] = (uint8_t)(h >> 16);
	mac->addr_bytes[4] = (uint8_t)(h >> 8);
	mac->addr_bytes[5] = (uint8_t)h;
}

static void check_socket_dir(const char *path, bool client)
{
	char *dir, *slash;
	struct stat st;

	if (client)
		return;
	dir = strdup(path);
	if (!dir)
		exit(1);
	slash = strrchr(dir, '/');
	if (slash) {
		*(slash == dir ? slash + 1 : slash) = '\0';
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			die_usage("socket directory %s does not exist", dir);
	}
	free(dir);
}

static void parse_args(struct options *o, int argc, char **argv)
{
	enum { O_SOCKET = 256, O_MAC, O_NQ, O_UPLINK, O_CPUS, O_MODE, O_POLL, O_CLIENT,
	       O_SOCKMODE, O_VERBOSE, O_CAPS, O_HELP };
	static const struct option longopts[] = {
		{ "socket-path", required_argument, NULL, O_SOCKET },
		{ "mac", required_argument, NULL, O_MAC },
		{ "num-queues", required_argument, NULL, O_NQ },
		{ "uplink", required_argument, NULL, O_UPLINK },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "mode", required_argument, NULL, O_MODE },
		{ "poll", required_argument, NULL, O_POLL },
		{ "client", no_argument, NULL, O_CLIENT },
		{ "socket-mode", required_argument, NULL, O_SOCKMODE },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "print-capabilities", no_argument, NULL, O_CAPS },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->poll_mode = VU_POLL_ADAPTIVE;
	o->idle_us = VU_POLL_DEFAULT_IDLE_US;
	o->mode = NET_MODE_SWITCH;
	o->npairs = 1;
	o->socket_mode = 0600;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case O_SOCKET:
			if (o->nvports == NET_MAX_PORTS)
				die_usage("more than %d ports", NET_MAX_PORTS);
			o->vports[o->nvports++].socket_path = optarg;
			break;
		case O_MAC:
			if (o->nmacs == NET_MAX_PORTS)
				die_usage("more than %d MAC addresses", NET_MAX_PORTS);
			if (rte_ether_unformat_addr(optarg, &o->macs[o->nmacs]) < 0 ||
			    !rte_is_valid_assigned_ether_addr(&o->macs[o->nmacs]))
				die_usage("invalid MAC address '%s' (expected a unicast xx:xx:xx:xx:xx:xx)",
					  optarg);
			o->nmacs++;
			break;
		case O_NQ:
			o->npairs = (uint16_t)parse_ulong("--num-queues", optarg, 1, NET_MAX_PAIRS, 10);
			break;
		case O_UPLINK:
			if (o->nuplinks == NET_MAX_PORTS)
				die_usage("more than %d uplinks", NET_MAX_PORTS);
			if (!*optarg)
				die_usage("empty --uplink");
			o->uplinks[o->nuplinks++] = optarg;
			break;
		case O_CPUS:
			parse_cpus(o, optarg);
			break;
		case O_MODE:
			if (!strcmp(optarg, "switch"))
				o->mode = NET_MODE_SWITCH;
			else if (!strcmp(optarg, "xconnect"))
				o->mode = NET_MODE_XCONNECT;
			else
				die_usage("invalid --mode '%s' (expected switch or xconnect)", optarg);
			break;
		case O_POLL:
			if (vu_poll_mode_parse(optarg, &o->poll_mode, &o->idle_us))
				die_usage("invalid --poll '%s'", optarg);
			break;
		case O_CLIENT:
			o->client = true;
			break;
		case O_SOCKMODE:
			o->socket_mode = (mode_t)parse_ulong("--socket-mode", optarg, 0, 0777, 8);
			break;
		case O_VERBOSE:
			o->verbose = true;
			vu_log_set_level(VU_LOG_DEBUG);
			break;
		case O_CAPS:
			printf("{\n  \"type\": \"net\"\n}\n");
			exit(0);
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--"))
			die_usage("unexpected argument '%s'", argv[optind]);
		o->user_eal = argv + optind;
		o->nuser_eal = argc - optind;
	}
	if (!o->nvports)
		die_usage("no --socket-path given");
	if (o->nmacs > o->nvports)
		die_usage("%u MAC addresses for %u ports", o->nmacs, o->nvports);
	if (o->nvports + o->nuplinks > NET_MAX_PORTS)
		die_usage("more than %d ports", NET_MAX_PORTS);
	if (o->mode == NET_MODE_XCONNECT && o->nvports + o->nuplinks != 2)
		die_usage("xconnect needs exactly two ports (it has %u)", o->nvports + o->nuplinks);
	for (unsigned int i = 0; i < o->nvports; i++) {
		struct net_vport_config *v = &o->vports[i];

		for (unsigned int j = 0; j < i; j++)
			if (!strcmp(o->vports[j].socket_path, v->socket_path))
				die_usage("socket %s given twice", v->socket_path);
		check_socket_dir(v->socket_path, o->client);
		v->client = o->client;
		v->npairs = o->npairs;
		v->socket_mode = o->socket_mode;
		if (i < o->nmacs)
			v->mac = o->macs[i];
		else
			default_mac(v->socket_path, &v->mac);
	}
	if (!o->ncpus) {
		int cpu = vu_first_allowed_cpu();

		if (cpu >= 0)
			o->cpus[o->ncpus++] = cpu;
	}
}

/* ---- EAL arguments ---- */

struct eal_args {
	char *argv[MAX_EAL_ARGS];
	int argc;
	char *owned[MAX_EAL_ARGS];     /* argv as built: EAL may permute argv */
};

static void eal_args_free(struct eal_args *a)
{
	for (int i = 0; i < a->argc; i++)
		free(a->owned[i]);
	a->argc = 0;
}

static void eal_add(struct eal_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void eal_add(struct eal_args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->argc + 1 >= MAX_EAL_ARGS)
		die_usage("too many EAL arguments");
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		exit(1);
	va_end(ap);
	a->owned[a->argc] = s;
	a->argv[a->argc++] = s;
}

/* Whether the user's EAL arguments contain one of the options in names. */
static bool user_has(const struct options *o, const char *const *names)
{
	for (int i = 0; i < o->nuser_eal; i++)
		for (const char *const *n = names; *n; n++) {
			size_t l = strlen(*n);

			if (!strncmp(o->user_eal[i], *n, l) &&
			    (o->user_eal[i][l] == '\0' || o->user_eal[i][l] == '=' ||
			     ((*n)[1] != '-' && o->user_eal[i][l])))
				return true;
		}
	return false;
}

/* Free hugepages of any size (they may be used anonymously with --in-memory). */
static bool hugepages_free(void)
{
	DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *e;
	bool any = false;

	if (!d)
		return false;
	while (!any && (e = readdir(d))) {
		char path[512];
		unsigned long n = 0;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/free_hugepages", e->d_name);
		f = fopen(path, "r");
		if (f) {
			any = fscanf(f, "%lu", &n) == 1 && n > 0;
			fclose(f);
		}
	}
	closedir(d);
	return any;
}

static bool is_pci_address(const char *s)
{
	unsigned int a, b, c, d;
	char tail;

	return sscanf(s, "%x:%x:%x.%x%c", &a, &b, &c, &d, &tail) >= 4 ||
	       sscanf(s, "%x:%x.%x%c", &b, &c, &d, &tail) >= 3;
}

/* "0,2-3" of a CPU set. */
static void format_cpuset(const cpu_set_t *set, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE && n < len; c++) {
		int e = c;

		if (!CPU_ISSET(c, set))
			continue;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		n += (size_t)snprintf(buf + n, len - n, "%s%d", n ? "," : "", c);
		if (e > c && n < len)
			n += (size_t)snprintf(buf + n, len - n, "-%d", e);
		c = e;
	}
}

static void build_eal_args(const struct options *o, struct eal_args *a)
{
	static const char *const lcore_opts[] = { "-l", "-c", "--lcores", "--main-lcore", NULL };
	static const char *const mem_opts[] = { "--no-huge", "-m", "--socket-mem", "--huge-dir",
						"--legacy-mem", NULL };
	static const char *const file_opts[] = { "--in-memory", "--file-prefix", "--no-shconf", NULL };
	static const char *const nohuge_opts[] = { "--no-huge", NULL };
	static const char *const tele_opts[] = { "--telemetry", "--no-telemetry", NULL };
	static const char *const log_opts[] = { "--log-level", NULL };
	static const char *const pci_opts[] = { "--no-pci", "-a", "-b", "--allow", "--block", NULL };
	char cpus[1024], lcores[4096];
	cpu_set_t allowed;
	size_t n;
	bool pci = false, nohuge = user_has(o, nohuge_opts);

	if (user_has(o, lcore_opts))
		die_usage("lcores are set with --cpus, not with EAL options");
	eal_add(a, "vhost-net");
	/* The main lcore (control thread) may float; workers are pinned. */
	sched_getaffinity(0, sizeof(allowed), &allowed);
	format_cpuset(&allowed, cpus, sizeof(cpus));
	n = (size_t)snprintf(lcores, sizeof(lcores), "0@(%s)", cpus);
	for (unsigned int i = 0; i < o->ncpus && n < sizeof(lcores); i++)
		n += (size_t)snprintf(lcores + n, sizeof(lcores) - n, ",%u@%d", i + 1, o->cpus[i]);
	eal_add(a, "--lcores=%s", lcores);
	eal_add(a, "--main-lcore=0");
	if (!user_has(o, mem_opts) && !hugepages_free()) {
		eal_add(a, "--no-huge");
		eal_add(a, "-m");
		eal_add(a, NOHUGE_MEM_MB);
		nohuge = true;
	}
	/* No files: --in-memory, which DPDK 22.11 refuses with --no-huge (its
	 * legacy memory mode); there --no-shconf, and a runtime directory of
	 * our own, removed at exit. */
	if (!user_has(o, file_opts)) {
		eal_add(a, "%s", nohuge ? "--no-shconf" : "--in-memory");
		eal_add(a, "--file-prefix=vhost-net-%d", (int)getpid());
	}
	if (!user_has(o, tele_opts))
		eal_add(a, "--no-telemetry");
	if (!user_has(o, log_opts) && !o->verbose)
		eal_add(a, "--log-level=notice");
	if (!user_has(o, pci_opts)) {
		/* Probe exactly the PCI uplinks, not every NIC bound to DPDK. */
		for (unsigned int i = 0; i < o->nuplinks; i++) {
			if (is_pci_address(o->uplinks[i])) {
				eal_add(a, "-a");
				eal_add(a, "%s", o->uplinks[i]);
				pci = true;
			}
		}
		if (!pci)
			eal_add(a, "--no-pci");
	}
	for (int i = 0; i < o->nuser_eal; i++)
		eal_add(a, "%s", o->user_eal[i]);
	a->argv[a->argc] = NULL;
}

/* ---- the program ---- */

static struct options opt;
static struct vu_loop *loop;

/*
 * EAL makes a runtime directory even when it shares nothing; remove ours
 * (named after our pid) once EAL is done with it, and its parent if that
 * is left empty.
 */
static void remove_runtime_dir(void)
{
	char dir[PATH_MAX], *slash;
	char mine[64];

	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	snprintf(mine, sizeof(mine), "/vhost-net-%d", (int)getpid());
	rte_eal_cleanup();
	slash = strrchr(dir, '/');
	if (!slash || strcmp(slash, mine))
		return;
	rmdir(dir);
	*slash = '\0';
	rmdir(dir);
}

static int worker_main(void *arg)
{
	struct net_worker *w = arg;

	vu_poller_run(w->poller);
	return 0;
}

/* A guest port with several queue pairs: its rx and tx packets per pair,
 * comma-separated in pair order (rx of pair k: the guest's TX queue 2k + 1;
 * tx: its RX queue 2k). */
static void print_pair_stats(const struct net_port *p)
{
	const struct net_vport *vp = p->vport;
	char rx[NET_MAX_PAIRS * 21], tx[NET_MAX_PAIRS * 21];
	size_t nr = 0, nt = 0;

	for (uint16_t k = 0; k < vp->npairs; k++) {
		nr += (size_t)snprintf(rx + nr, sizeof(rx) - nr, "%s%llu", k ? "," : "",
				       (unsigned long long)__atomic_load_n(&vp->txq[k].packets,
									   __ATOMIC_RELAXED));
		nt += (size_t)snprintf(tx + nt, sizeof(tx) - nt, "%s%llu", k ? "," : "",
				       (unsigned long long)__atomic_load_n(&vp->rxq[k].packets,
									   __ATOMIC_RELAXED));
	}
	fprintf(stderr, "vhost-net: queues port=%u name=%s rx_packets=%s tx_packets=%s\n", p->id,
		p->name, rx, tx);
}

static void print_stats(void)
{
	for (unsigned int i = 0; i < net_ctx.nports; i++) {
		const struct net_port *p = net_ctx.ports[i];
		struct net_port_stats s;
		char drops[512];
		uint64_t total = 0;
		size_t n = 0;

		net_port_stats_sum(p, &s);
		for (unsigned int d = 0; d < NET_DROP_COUNT; d++) {
			total += s.drops[d];
			n += (size_t)snprintf(drops + n, sizeof(drops) - n, " drop_%s=%llu",
					      net_drop_names[d], (unsigned long long)s.drops[d]);
		}
		fprintf(stderr,
			"vhost-net: stats port=%u name=%s rx_packets=%llu rx_bytes=%llu tx_packets=%llu tx_bytes=%llu flooded=%llu drops=%llu%s\n",
			p->id, p->name, (unsigned long long)s.rx_packets,
			(unsigned long long)s.rx_bytes, (unsigned long long)s.tx_packets,
			(unsigned long long)s.tx_bytes, (unsigned long long)s.flooded,
			(unsigned long long)total, drops);
		/* (Not at exit: the ports are gone by then.) */
		if (p->vport && p->vport->npairs > 1)
			print_pair_stats(p);
	}
	fflush(stderr);
}

static void on_sigusr1(struct vu_loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		print_stats();
}

static struct rte_mempool *pool_for_socket(unsigned int socket, unsigned int n)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct rte_mempool *mp;

	if (socket >= RTE_MAX_NUMA_NODES)
		socket = 0;
	if (net_ctx.pools[socket])
		return net_ctx.pools[socket];
	snprintf(name, sizeof(name), "net_mbuf_%u", socket);
	mp = rte_pktmbuf_pool_create(name, n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)socket);
	if (!mp)
		mp = rte_pktmbuf_pool_create(name, n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	net_ctx.pools[socket] = mp;
	return mp;
}

static struct net_port *new_port(const char *kind, unsigned int ordinal)
{
	struct net_port *p = rte_zmalloc("net_port", sizeof(*p), RTE_CACHE_LINE_SIZE);

	if (!p)
		return NULL;
	p->stats = rte_zmalloc("net_stats", sizeof(*p->stats) * (net_ctx.nworkers + 1),
			       RTE_CACHE_LINE_SIZE);
	if (!p->stats) {
		rte_free(p);
		return NULL;
	}
	snprintf(p->name, sizeof(p->name), "%s%u", kind, ordinal);
	return p;
}

static int setup_workers(void)
{
	/* Mbufs: each guest RX queue's backlog, the uplinks' rings, caches. */
	unsigned int nbufs = 8192 + opt.nvports * opt.npairs * (NET_RING_SIZE + NET_BURST) +
			     opt.nuplinks * (opt.ncpus * 2 + 1) * 1024 + opt.ncpus * 2 * NET_GSO_MAX_SEGS;

	if (nbufs > 65535)
		nbufs = 65535;
	net_ctx.indirect_pool = rte_pktmbuf_pool_create("net_indirect", 8191, 256, 0, 0, SOCKET_ID_ANY);
	if (!net_ctx.indirect_pool) {
		fprintf(stderr, "vhost-net: cannot create the mbuf pools: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < opt.ncpus; i++) {
		unsigned int lcore = i + 1, socket = rte_lcore_to_socket_id(lcore);
		struct net_worker *w;
		char name[32];

		if (!rte_lcore_is_enabled(lcore)) {
			fprintf(stderr, "vhost-net: lcore %u (CPU %d) is not enabled\n", lcore, opt.cpus[i]);
			return -EINVAL;
		}
		w = rte_zmalloc_socket("net_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, (int)socket);
		if (!w)
			w = rte_zmalloc("net_worker", sizeof(*w), RTE_CACHE_LINE_SIZE);
		if (!w)
			return -ENOMEM;
		net_ctx.workers[net_ctx.nworkers++] = w;
		w->index = i;
		w->lcore = lcore;
		w->cpu = opt.cpus[i];
		w->pool = pool_for_socket(socket, nbufs);
		if (!w->pool) {
			fprintf(stderr, "vhost-net: cannot create the mbuf pool (%u mbufs): %s\n", nbufs,
				rte_strerror(rte_errno));
			return -ENOMEM;
		}
		snprintf(name, sizeof(name), "worker%u", i);
		struct vu_poller_config pc = {
			.name = name, .mode = opt.poll_mode, .idle_us = opt.idle_us, .cpu = w->cpu,
		};
		w->poller = vu_poller_create(&pc);
		if (!w->poller) {
			fprintf(stderr, "vhost-net: cannot create a poller: %s\n", strerror(errno));
			return -errno;
		}
		w->ring_src.poll = net_ring_src_poll;
		w->ring_src.prepare_sleep = net_ring_src_prepare_sleep;
		w->ring_src.fd = -1;
		vu_poller_add_source(w->poller, &w->ring_src);
		w->gso.direct_pool = w->pool;
		w->gso.indirect_pool = net_ctx.indirect_pool;
		w->gso.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
		net_ctx.by_lcore[lcore] = w;
	}
	return 0;
}

static int setup_ports(void)
{
	char why[512];
	int ret;

	net_ctx.nports = opt.nvports + opt.nuplinks;
	for (unsigned int i = 0; i < net_ctx.nports; i++) {
		bool up = i >= opt.nvports;

		net_ctx.ports[i] = new_port(up ? "uplink" : "vhost", up ? i - opt.nvports : i);
		if (!net_ctx.ports[i]) {
			net_ctx.nports = i;
			return -ENOMEM;
		}
		net_ctx.ports[i]->id = (uint16_t)i;
		net_ctx.ports[i]->is_uplink = up;
	}
	/* Uplinks first: a bad one stops us before any socket exists. */
	for (unsigned int i = 0; i < opt.nuplinks; i++) {
		ret = net_uplink_create(net_ctx.ports[opt.nvports + i], opt.uplinks[i], why, sizeof(why));
		if (ret) {
			fprintf(stderr, "vhost-net: uplink '%s': %s\n", opt.uplinks[i], why);
			return ret;
		}
	}
	for (unsigned int i = 0; i < opt.nvports; i++) {
		ret = net_vport_create(net_ctx.ports[i], &opt.vports[i], loop);
		if (ret) {
			fprintf(stderr, "vhost-net: socket %s: %s\n", opt.vports[i].socket_path,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void teardown(bool launched)
{
	for (unsigned int i = 0; i < net_ctx.nworkers; i++)
		if (net_ctx.workers[i]->poller)
			vu_poller_stop(net_ctx.workers[i]->poller);
	if (launched)
		rte_eal_mp_wait_lcore();
	for (unsigned int i = 0; i < net_ctx.nports; i++)
		net_vport_destroy(net_ctx.ports[i]);
	for (unsigned int i = 0; i < net_ctx.nports; i++)
		net_uplink_destroy(net_ctx.ports[i]);
	if (launched)
		print_stats();
	for (unsigned int i = 0; i < net_ctx.nports; i++) {
		rte_free(net_ctx.ports[i]->stats);
		rte_free(net_ctx.ports[i]);
	}
	for (unsigned int i = 0; i < net_ctx.nworkers; i++) {
		vu_poller_destroy(net_ctx.workers[i]->poller);
		free(net_ctx.workers[i]->rxqs);
		rte_free(net_ctx.workers[i]);
	}
	net_mac_table_destroy(net_ctx.macs);
	for (unsigned int s = 0; s < RTE_MAX_NUMA_NODES; s++)
		rte_mempool_free(net_ctx.pools[s]);
	rte_mempool_free(net_ctx.indirect_pool);
	vu_loop_destroy(loop);
}

int main(int argc, char **argv)
{
	struct eal_args eal = { 0 };
	bool launched = false;
	sigset_t sigs;
	int ret, sfd = -1;

	parse_args(&opt, argc, argv);
	net_ctx.mode = opt.mode;
	/* Every thread EAL creates inherits this mask: the signals reach the
	 * control loop's signalfds only, never a worker's default action. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* A log reader that went away must not kill us before we clean up. */
	signal(SIGPIPE, SIG_IGN);

	build_eal_args(&opt, &eal);
	if (opt.verbose) {
		fprintf(stderr, "vhost-net: EAL arguments:");
		for (int i = 1; i < eal.argc; i++)
			fprintf(stderr, " %s", eal.argv[i]);
		fprintf(stderr, "\n");
	}
	if (rte_eal_init(eal.argc, eal.argv) < 0) {
		fprintf(stderr, "vhost-net: cannot initialise DPDK: %s\n", rte_strerror(rte_errno));
		eal_args_free(&eal);
		return EXIT_USAGE;
	}
	loop = vu_loop_create();
	net_ctx.macs = net_mac_table_create(MAC_TABLE_ORDER, NET_MAC_AGING_S);
	if (!loop || !net_ctx.macs) {
		fprintf(stderr, "vhost-net: out of memory\n");
		ret = 1;
		goto out;
	}
	ret = setup_workers();
	if (ret) {
		ret = 1;
		goto out;
	}
	ret = setup_ports();
	if (ret) {
		ret = EXIT_USAGE;
		goto out;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || vu_loop_add(loop, sfd, EPOLLIN, on_sigusr1, NULL)) {
		fprintf(stderr, "vhost-net: cannot watch SIGUSR1: %s\n", strerror(errno));
		ret = 1;
		goto out;
	}
	for (unsigned int i = 0; i < net_ctx.nworkers; i++) {
		ret = rte_eal_remote_launch(worker_main, net_ctx.workers[i], net_ctx.workers[i]->lcore);
		if (ret) {
			fprintf(stderr, "vhost-net: cannot start worker %u: %s\n", i, rte_strerror(-ret));
			ret = 1;
			goto out;
		}
		launched = true;
	}
	vu_info("vhost-net: %u port%s, %u worker%s, %s mode", net_ctx.nports,
		net_ctx.nports > 1 ? "s" : "", net_ctx.nworkers, net_ctx.nworkers > 1 ? "s" : "",
		opt.mode == NET_MODE_XCONNECT ? "xconnect" : "switch");
	ret = vu_loop_run(loop, NULL, NULL) ? 1 : 0;
out:
	if (sfd >= 0) {
		vu_loop_del(loop, sfd);
		close(sfd);
	}
	teardown(launched);
	remove_runtime_dir();
	eal_args_free(&eal);
	return ret;
}

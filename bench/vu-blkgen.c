// SPDX-License-Identifier: MIT
/*
 * vu-blkgen: a virtio-blk load generator that is a userspace vhost-user
 * front-end (the QEMU role, on tests/frontend/vuf).  It connects to any
 * vhost-user-blk back-end socket (vhost-blk, qemu-storage-daemon's
 * vhost-user-blk export, bench/vu-nullblk), negotiates only what the
 * back-end offers, reads the capacity from GET_CONFIG and runs one job:
 *
 *   vu-blkgen --socket PATH --rw randread --bs 4096 --iodepth 32 --runtime 5
 *
 * The data path makes no system call per request: requests are
 * preallocated in shared guest memory with their three segments
 * (header, data, status) fixed, a pass reaps every completion the device
 * published, takes one clock reading, and refills the queue up to the
 * depth in one batch, kicking only when the back-end has not suppressed
 * notifications.  Completions are busy-polled (calls are suppressed).
 * Latency is post-to-reap, measured with the TSC (calibrated against
 * CLOCK_MONOTONIC) into a log-linear histogram (1/64 relative precision).
 *
 * Output: a human summary and one line "JSON: {...}" for scripts.
 * Exit status: 0, 1 on I/O or verification errors, 2 on usage errors,
 * 3 when the back-end cannot be driven (connection, negotiation, stall).
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_blk.h>

#include "vu_util.h"
#include "vuf.h"

#define EXIT_IOERR 1
#define EXIT_USAGE 2
#define EXIT_SETUP 3

#define MAX_QUEUES 64
#define MAX_DEPTH 1024
#define MAX_BS (1u << 20)
#define REAP_BATCH 64
/* A request area: header (16 bytes) and status byte, padded. */
#define HDR_AREA 64
/* No completion for this long: the back-end is stuck. */
#define STALL_NS (10ull * 1000000000ull)

/* ------------------------------------------------------------------ */
/* Clock                                                              */
/* ------------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool use_tsc;
static double ns_per_tick = 1.0;

#if defined(__x86_64__) || defined(__i386__)
static inline uint64_t ticks(void)
{
	uint32_t lo, hi;

	if (!use_tsc)
		return mono_ns();
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static bool tsc_usable(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool constant = false, nonstop = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop;
}
#else
static inline uint64_t ticks(void)
{
	return mono_ns();
}

static bool tsc_usable(void)
{
	return false;
}
#endif

/* Decide the clock; with the TSC, measure its rate over 50 ms. */
static void clock_init(bool allow_tsc)
{
	use_tsc = allow_tsc && tsc_usable();
	if (!use_tsc) {
		ns_per_tick = 1.0;
		return;
	}
	uint64_t n0 = mono_ns(), t0 = ticks();
	struct timespec ts = { 0, 50000000 };

	nanosleep(&ts, NULL);
	uint64_t n1 = mono_ns(), t1 = ticks();

	if (t1 <= t0 || n1 <= n0) {
		use_tsc = false;
		ns_per_tick = 1.0;
		return;
	}
	ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
}

static inline uint64_t ticks_to_ns(uint64_t t)
{
	return (uint64_t)((double)t * ns_per_tick);
}

static inline uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((double)ns / ns_per_tick);
}

/* ------------------------------------------------------------------ */
/* Log-linear histogram: 64 linear buckets per power of two           */
/* ------------------------------------------------------------------ */

#define H_SUB_BITS 6
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS ((64 - H_SUB_BITS + 1) * H_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t b[H_BUCKETS];
};

static inline unsigned int h_index(uint64_t v)
{
	unsigned int msb, shift;

	if (v < H_SUB)
		return (unsigned int)v;
	msb = 63u - (unsigned int)__builtin_clzll(v);
	shift = msb - H_SUB_BITS;
	return (shift + 1) * H_SUB + (unsigned int)((v >> shift) & (H_SUB - 1));
}

/* Middle of the values of bucket i. */
static uint64_t h_value(unsigned int i)
{
	unsigned int shift;

	if (i < H_SUB)
		return i;
	shift = i / H_SUB - 1;
	return (((uint64_t)(H_SUB + i % H_SUB)) << shift) + ((1ull << shift) >> 1);
}

static inline void h_add(struct hist *h, uint64_t v)
{
	h->b[h_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static void h_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static void h_merge(struct hist *d, const struct hist *s)
{
	for (unsigned int i = 0; i < H_BUCKETS; i++)
		d->b[i] += s->b[i];
	d->count += s->count;
	d->sum += s->sum;
	if (s->min < d->min)
		d->min = s->min;
	if (s->max > d->max)
		d->max = s->max;
}

/* The value at quantile q (0..1), in ticks. */
static uint64_t h_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned int i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = h_value(i);

			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

/* ------------------------------------------------------------------ */
/* Options                                                            */
/* ------------------------------------------------------------------ */

enum rw_kind { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW, RW_RW };

struct options {
	const char *socket;
	enum rw_kind rw;
	unsigned int read_pct;       /* mixes: percentage of reads */
	uint32_t bs;
	unsigned int iodepth;        /* per queue */
	unsigned int queues;
	double runtime;              /* seconds; 0 with number */
	uint64_t number;             /* requests in total; 0 with runtime */
	double ramp;                 /* seconds not counted */
	int cpu;                     /* -1: not pinned */
	bool verify;
	bool packed;
	bool event_idx;
	bool indirect;
	bool hugepages;
	bool inflight;               /* INFLIGHT_SHMFD, as QEMU does */
	unsigned int qsize;          /* 0: from the depth */
	uint64_t size;               /* bytes of the disk used; 0: all */
	uint64_t seed;
	double idle;                 /* seconds idle after setup (idle-cost) */
	unsigned int probes;         /* single requests after short idle gaps */
	double probe_gap;            /* seconds */
	int timeout_ms;
	bool tsc;
	bool quiet;
	const char *label;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vu-blkgen --socket PATH [options]\n"
"\n"
"A vhost-user-blk front-end that drives any vhost-user-blk back-end\n"
"(vhost-blk, qemu-storage-daemon, vu-nullblk) and measures it.\n"
"\n"
"Job:\n"
"  --rw KIND          read, write, randread, randwrite, rw[:READ%%], randrw[:READ%%]\n"
"                     (default randread; mixes default to 50%% reads)\n"
"  --bs BYTES         block size, a multiple of 512 up to 1M (default 4096; k/m suffixes)\n"
"  --iodepth N        requests in flight per queue (default 32, at most %d)\n"
"  --queues N         request queues (default 1; needs VIRTIO_BLK_F_MQ above 1)\n"
"  --runtime SECS     run this long (default 5)\n"
"  --number N         or issue exactly N requests in total\n"
"  --ramp SECS        run this long first without counting (default 0)\n"
"  --size BYTES       use only the first BYTES of the disk (default: all of it)\n"
"  --seed N           random seed (default 1)\n"
"  --verify           write a pattern (block number + seed in every 8-byte word)\n"
"                     over the range first, check every read, read it all back at\n"
"                     the end; needs a back-end that stores data (not null engines)\n"
"Transport:\n"
"  --ring split|packed     ring layout (default split; packed needs RING_PACKED)\n"
"  --event-idx on|off      negotiate VIRTIO_RING_F_EVENT_IDX if offered (default on)\n"
"  --indirect on|off       one indirect descriptor per request (default off)\n"
"  --qsize N               ring size (default: 256, or larger to fit 3 x iodepth)\n"
"  --inflight on|off       share an inflight area (INFLIGHT_SHMFD) as QEMU does (default off)\n"
"  --hugepages on|off      guest memory on hugetlbfs (default off)\n"
"  --timeout MS            control-message and connection timeout (default 10000)\n"
"Process:\n"
"  --cpu N            pin to this CPU\n"
"  --clock tsc|mono   latency clock (default tsc when constant and nonstop)\n"
"  --idle SECS        after setup, stay idle this long, then time one request\n"
"                     (the first request after idling), before the job\n"
"  --probes N         then N more single requests, each after --probe-gap (default 0.2 s)\n"
"  --label TEXT       copied into the JSON line\n"
"  --quiet            print only the JSON line\n"
"  --help\n", MAX_DEPTH);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vu-blkgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	exit(EXIT_USAGE);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die_setup(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vu-blkgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(EXIT_SETUP);
}

static uint64_t parse_size(const char *what, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || s[0] == '-')
		die_usage("invalid %s '%s'", what, s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		die_usage("invalid %s '%s'", what, s);
	return v;
}

static double parse_secs(const char *what, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1e6)
		die_usage("invalid %s '%s'", what, s);
	return v;
}

static bool parse_onoff(const char *what, const char *s)
{
	if (!strcmp(s, "on") || !strcmp(s, "1") || !strcmp(s, "true"))
		return true;
	if (!strcmp(s, "off") || !strcmp(s, "0") || !strcmp(s, "false"))
		return false;
	die_usage("invalid %s '%s' (on or off)", what, s);
}

static void parse_rw(struct options *o, const char *s)
{
	static const struct { const char *name; enum rw_kind k; } kinds[] = {
		{ "read", RW_READ }, { "write", RW_WRITE }, { "randread", RW_RANDREAD },
		{ "randwrite", RW_RANDWRITE }, { "randrw", RW_RANDRW }, { "rw", RW_RW },
		{ "readwrite", RW_RW },
	};
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	for (unsigned int i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].name) != len || strncmp(kinds[i].name, s, len))
			continue;
		o->rw = kinds[i].k;
		o->read_pct = 50;
		if (colon) {
			uint64_t p;

			if (o->rw != RW_RANDRW && o->rw != RW_RW)
				die_usage("--rw %s takes no mix", kinds[i].name);
			p = parse_size("read percentage", colon + 1);
			if (p > 100)
				die_usage("read percentage %" PRIu64 " above 100", p);
			o->read_pct = (unsigned int)p;
		}
		return;
	}
	die_usage("unknown --rw '%s'", s);
}

static const char *rw_name(const struct options *o)
{
	static char buf[32];

	switch (o->rw) {
	case RW_READ: return "read";
	case RW_WRITE: return "write";
	case RW_RANDREAD: return "randread";
	case RW_RANDWRITE: return "randwrite";
	case RW_RANDRW: snprintf(buf, sizeof(buf), "randrw:%u", o->read_pct); return buf;
	case RW_RW: snprintf(buf, sizeof(buf), "rw:%u", o->read_pct); return buf;
	}
	return "?";
}

static void parse_args(struct options *o, int argc, char **argv)
{
	enum { O_SOCKET = 256, O_RW, O_BS, O_DEPTH, O_QUEUES, O_RUNTIME, O_NUMBER, O_RAMP,
	       O_SIZE, O_SEED, O_VERIFY, O_RING, O_EVIDX, O_INDIRECT, O_QSIZE, O_INFLIGHT,
	       O_HUGE, O_TIMEOUT, O_CPU, O_CLOCK, O_IDLE, O_PROBES, O_GAP, O_LABEL, O_QUIET,
	       O_HELP };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "rw", required_argument, NULL, O_RW },
		{ "bs", required_argument, NULL, O_BS },
		{ "iodepth", required_argument, NULL, O_DEPTH },
		{ "queues", required_argument, NULL, O_QUEUES },
		{ "runtime", required_argument, NULL, O_RUNTIME },
		{ "number", required_argument, NULL, O_NUMBER },
		{ "ramp", required_argument, NULL, O_RAMP },
		{ "size", required_argument, NULL, O_SIZE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "ring", required_argument, NULL, O_RING },
		{ "event-idx", required_argument, NULL, O_EVIDX },
		{ "indirect", required_argument, NULL, O_INDIRECT },
		{ "qsize", required_argument, NULL, O_QSIZE },
		{ "inflight", required_argument, NULL, O_INFLIGHT },
		{ "hugepages", required_argument, NULL, O_HUGE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "clock", required_argument, NULL, O_CLOCK },
		{ "idle", required_argument, NULL, O_IDLE },
		{ "probes", required_argument, NULL, O_PROBES },
		{ "probe-gap", required_argument, NULL, O_GAP },
		{ "label", required_argument, NULL, O_LABEL },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool have_runtime = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->rw = RW_RANDREAD;
	o->read_pct = 50;
	o->bs = 4096;
	o->iodepth = 32;
	o->queues = 1;
	o->runtime = 5;
	o->cpu = -1;
	o->event_idx = true;
	o->seed = 1;
	o->probe_gap = 0.2;
	o->timeout_ms = 10000;
	o->tsc = true;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_SOCKET: o->socket = optarg; break;
		case O_RW: parse_rw(o, optarg); break;
		case O_BS: {
			uint64_t v = parse_size("--bs", optarg);

			if (v == 0 || v % 512 || v > MAX_BS)
				die_usage("--bs %s: a multiple of 512 up to 1M", optarg);
			o->bs = (uint32_t)v;
			break;
		}
		case O_DEPTH: {
			uint64_t v = parse_size("--iodepth", optarg);

			if (v < 1 || v > MAX_DEPTH)
				die_usage("--iodepth %s: 1..%d", optarg, MAX_DEPTH);
			o->iodepth = (unsigned int)v;
			break;
		}
		case O_QUEUES: {
			uint64_t v = parse_size("--queues", optarg);

			if (v < 1 || v > MAX_QUEUES)
				die_usage("--queues %s: 1..%d", optarg, MAX_QUEUES);
			o->queues = (unsigned int)v;
			break;
		}
		case O_RUNTIME: o->runtime = parse_secs("--runtime", optarg); have_runtime = true; break;
		case O_NUMBER: o->number = parse_size("--number", optarg); break;
		case O_RAMP: o->ramp = parse_secs("--ramp", optarg); break;
		case O_SIZE: o->size = parse_size("--size", optarg); break;
		case O_SEED: o->seed = parse_size("--seed", optarg); break;
		case O_VERIFY: o->verify = true; break;
		case O_RING:
			if (!strcmp(optarg, "split"))
				o->packed = false;
			else if (!strcmp(optarg, "packed"))
				o->packed = true;
			else
				die_usage("--ring %s: split or packed", optarg);
			break;
		case O_EVIDX: o->event_idx = parse_onoff("--event-idx", optarg); break;
		case O_INDIRECT: o->indirect = parse_onoff("--indirect", optarg); break;
		case O_QSIZE: {
			uint64_t v = parse_size("--qsize", optarg);

			if (v < 4 || v > VUF_VQ_MAX_SIZE)
				die_usage("--qsize %s: 4..%d", optarg, VUF_VQ_MAX_SIZE);
			o->qsize = (unsigned int)v;
			break;
		}
		case O_INFLIGHT: o->inflight = parse_onoff("--inflight", optarg); break;
		case O_HUGE: o->hugepages = parse_onoff("--hugepages", optarg); break;
		case O_TIMEOUT: o->timeout_ms = (int)parse_size("--timeout", optarg); break;
		case O_CPU: o->cpu = (int)parse_size("--cpu", optarg); break;
		case O_CLOCK:
			if (!strcmp(optarg, "tsc"))
				o->tsc = true;
			else if (!strcmp(optarg, "mono"))
				o->tsc = false;
			else
				die_usage("--clock %s: tsc or mono", optarg);
			break;
		case O_IDLE: o->idle = parse_secs("--idle", optarg); break;
		case O_PROBES: o->probes = (unsigned int)parse_size("--probes", optarg); break;
		case O_GAP: o->probe_gap = parse_secs("--probe-gap", optarg); break;
		case O_LABEL: o->label = optarg; break;
		case O_QUIET: o->quiet = true; break;
		case O_HELP: usage(stdout); exit(0);
		default: die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->socket)
		die_usage("no --socket");
	if (o->number && have_runtime)
		die_usage("give --runtime or --number, not both");
	if (o->number)
		o->runtime = 0;
	if (!o->number && o->runtime <= 0)
		die_usage("nothing to do: --runtime 0 and no --number");
	if (o->label && strpbrk(o->label, "\"\\"))
		die_usage("--label may not contain quotes or backslashes");
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

struct req {
	struct virtio_blk_outhdr *hdr;   /* guest memory */
	volatile uint8_t *status;        /* guest memory */
	uint8_t *data;                   /* guest memory */
	struct vuf_seg segs[3];
	uint64_t t_post;                 /* ticks */
	uint64_t block;
	bool write;
	bool check;                      /* verify the data on completion */
};

struct queue {
	struct vuf_vq *vq;
	struct req *reqs;
	uint16_t *free;                  /* stack of free request indexes */
	unsigned int nfree;
	unsigned int depth;
	uint64_t completed;
	struct hist h;
};

struct job {
	struct options o;
	struct vuf *vuf;
	uint64_t features;
	uint64_t capacity;               /* sectors */
	uint64_t nblocks;                /* of bs in the range */
	unsigned int nq;
	struct queue q[MAX_QUEUES];
	/* Issue control. */
	uint64_t rng;
	uint64_t seq_next;
	uint64_t issued;
	uint64_t to_issue;               /* UINT64_MAX with a runtime */
	bool stop_issue;
	/* Results. */
	uint64_t io_errors;
	uint64_t verify_errors;
	uint64_t bad_len;
	bool record;                     /* past the ramp */
	uint64_t record_from;            /* ticks */
	/* Verification phase overrides. */
	int phase_kind;                  /* 0 job, 1 fill, 2 check */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Map a 64-bit random number to [0, n) without division. */
static inline uint64_t range_of(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Verification pattern: word 0 the block number, word 1 the seed, then a
 * sequence that depends on both (a misdirected block fails word 0). */
static void pattern_fill(uint8_t *buf, uint32_t bs, uint64_t block, uint64_t seed)
{
	uint64_t *w = (uint64_t *)buf, k = mix64(block ^ (seed * 0x9e3779b97f4a7c15ull));

	w[0] = block;
	w[1] = seed;
	for (uint32_t i = 2; i < bs / 8; i++)
		w[i] = k + i * 0x9e3779b97f4a7c15ull;
}

static bool pattern_check(const uint8_t *buf, uint32_t bs, uint64_t block, uint64_t seed,
			  uint64_t *bad_word, uint64_t *got, uint64_t *want)
{
	const uint64_t *w = (const uint64_t *)buf;
	uint64_t k = mix64(block ^ (seed * 0x9e3779b97f4a7c15ull));

	for (uint32_t i = 0; i < bs / 8; i++) {
		uint64_t e = i == 0 ? block : i == 1 ? seed : k + i * 0x9e3779b97f4a7c15ull;

		if (w[i] != e) {
			*bad_word = i;
			*got = w[i];
			*want = e;
			return false;
		}
	}
	return true;
}

/* Choose the next request's block and direction; false when done. */
static inline bool next_io(struct job *j, uint64_t *block, bool *write)
{
	const struct options *o = &j->o;

	if (j->stop_issue || j->issued >= j->to_issue)
		return false;
	j->issued++;
	if (j->phase_kind) {
		/* Fill or check pass: every block once, in order. */
		*block = j->seq_next++;
		*write = j->phase_kind == 1;
		return true;
	}
	switch (o->rw) {
	case RW_READ:
	case RW_WRITE:
		*block = j->seq_next;
		if (++j->seq_next >= j->nblocks)
			j->seq_next = 0;
		*write = o->rw == RW_WRITE;
		return true;
	case RW_RW:
		*block = j->seq_next;
		if (++j->seq_next >= j->nblocks)
			j->seq_next = 0;
		*write = range_of(xorshift(&j->rng), 100) >= o->read_pct;
		return true;
	case RW_RANDREAD:
	case RW_RANDWRITE:
		*block = range_of(xorshift(&j->rng), j->nblocks);
		*write = o->rw == RW_RANDWRITE;
		return true;
	case RW_RANDRW: {
		uint64_t r = xorshift(&j->rng);

		*block = range_of(r, j->nblocks);
		*write = range_of(mix64(r), 100) >= o->read_pct;
		return true;
	}
	}
	return false;
}

static inline void prepare(struct job *j, struct req *r, uint64_t block, bool write)
{
	r->block = block;
	r->write = write;
	r->hdr->type = htole32(write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN);
	r->hdr->sector = htole64(block * (j->o.bs >> 9));
	*r->status = 0xff;
	r->segs[1].writable = !write;
	r->check = false;
	if (j->o.verify) {
		if (write)
			pattern_fill(r->data, j->o.bs, block, j->o.seed);
		else
			r->check = true;
	}
}

static void complete(struct job *j, struct queue *q, struct req *r, uint32_t len, uint64_t now)
{
	uint8_t st = *r->status;

	if (vu_unlikely(st != VIRTIO_BLK_S_OK)) {
		if (j->io_errors < 10)
			fprintf(stderr, "vu-blkgen: %s of block %" PRIu64 " completed with status %u%s\n",
				r->write ? "write" : "read", r->block, st,
				st == 0xff ? " (status byte not written)" : "");
		j->io_errors++;
	} else if (vu_unlikely(!r->write && len != j->o.bs + 1)) {
		j->bad_len++;
	}
	if (r->check && st == VIRTIO_BLK_S_OK) {
		uint64_t word, got, want;

		if (!pattern_check(r->data, j->o.bs, r->block, j->o.seed, &word, &got, &want)) {
			if (j->verify_errors < 10)
				fprintf(stderr, "vu-blkgen: verify: block %" PRIu64 " word %" PRIu64
					": 0x%016" PRIx64 ", expected 0x%016" PRIx64 "\n",
					r->block, word, got, want);
			j->verify_errors++;
		}
	}
	if (j->record && r->t_post >= j->record_from) {
		h_add(&q->h, now - r->t_post);
		q->completed++;
	}
}

/* ------------------------------------------------------------------ */
/* Setup                                                              */
/* ------------------------------------------------------------------ */

static unsigned int pow2_at_least(unsigned int v)
{
	unsigned int p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static void setup(struct job *j)
{
	struct options *o = &j->o;
	uint64_t offered, poffered = 0, want, pwant, qnum = 1;
	struct virtio_blk_config cfg;
	unsigned int per_req, qsize;
	size_t mem;
	int ret;

	j->vuf = vuf_connect(o->socket, o->timeout_ms);
	if (!j->vuf)
		die_setup("cannot connect to %s: %s", o->socket, strerror(errno));
	vuf_set_timeout(j->vuf, o->timeout_ms);

	ret = vuf_get_features(j->vuf, &offered);
	if (ret)
		die_setup("GET_FEATURES: %s", strerror(-ret));
	want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
	       (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_SIZE_MAX) |
	       (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_CONFIG_WCE);
	if (o->queues > 1)
		want |= 1ull << VIRTIO_BLK_F_MQ;
	if (o->packed)
		want |= 1ull << VIRTIO_F_RING_PACKED;
	if (o->event_idx)
		want |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (o->indirect)
		want |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (o->packed && !(offered & (1ull << VIRTIO_F_RING_PACKED)))
		die_setup("the back-end does not offer VIRTIO_F_RING_PACKED (features 0x%" PRIx64 ")",
			  offered);
	if (o->indirect && !(offered & (1ull << VIRTIO_RING_F_INDIRECT_DESC)))
		die_setup("the back-end does not offer VIRTIO_RING_F_INDIRECT_DESC");
	if (o->queues > 1 && !(offered & (1ull << VIRTIO_BLK_F_MQ)))
		die_setup("the back-end does not offer VIRTIO_BLK_F_MQ");
	if (!(offered & (1ull << VIRTIO_F_VERSION_1)))
		die_setup("the back-end does not offer VIRTIO_F_VERSION_1");
	pwant = (1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |
		(1ull << VU_PROTOCOL_F_CONFIG);
	if (o->inflight)
		pwant |= 1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD;
	ret = vuf_negotiate(j->vuf, want, pwant, &j->features);
	if (ret)
		die_setup("negotiation failed: %s", strerror(-ret));
	poffered = vuf_protocol_features(j->vuf);
	if (!(poffered & (1ull << VU_PROTOCOL_F_CONFIG)))
		die_setup("the back-end does not offer VHOST_USER_PROTOCOL_F_CONFIG (no capacity)");
	if (o->inflight && !(poffered & (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD)))
		die_setup("the back-end does not offer INFLIGHT_SHMFD");
	if (poffered & (1ull << VU_PROTOCOL_F_MQ)) {
		ret = vuf_get_queue_num(j->vuf, &qnum);
		if (ret)
			die_setup("GET_QUEUE_NUM: %s", strerror(-ret));
	}
	memset(&cfg, 0, sizeof(cfg));
	ret = vuf_get_config(j->vuf, 0, &cfg, offsetof(struct virtio_blk_config, num_queues) + 2);
	if (ret)
		die_setup("GET_CONFIG: %s", strerror(-ret));
	j->capacity = le64toh(cfg.capacity);
	if ((j->features & (1ull << VIRTIO_BLK_F_MQ)) && o->queues > le16toh(cfg.num_queues))
		die_setup("%u queues asked, the device has %u", o->queues, le16toh(cfg.num_queues));
	if (o->queues > qnum)
		die_setup("%u queues asked, the back-end supports %" PRIu64, o->queues, qnum);
	if ((j->features & (1ull << VIRTIO_BLK_F_BLK_SIZE)) && le32toh(cfg.blk_size) > o->bs)
		die_setup("--bs %u is below the device's block size %u", o->bs, le32toh(cfg.blk_size));
	{
		uint64_t bytes = j->capacity << 9;

		if (o->size && o->size < bytes)
			bytes = o->size;
		j->nblocks = bytes / o->bs;
		if (!j->nblocks)
			die_setup("the disk (%" PRIu64 " bytes) holds no block of %u bytes",
				  j->capacity << 9, o->bs);
	}

	/* Guest memory: rings, indirect tables, headers and data buffers. */
	per_req = o->indirect ? 1 : 3;
	qsize = o->qsize ? o->qsize : pow2_at_least(per_req * o->iodepth);
	if (!o->qsize && qsize < 256)
		qsize = 256;
	if (qsize < per_req * o->iodepth)
		die_setup("--qsize %u cannot hold %u requests of %u descriptors", qsize, o->iodepth,
			  per_req);
	j->nq = o->queues;
	mem = (size_t)j->nq * (size_t)o->iodepth * (VU_ALIGN_UP((size_t)o->bs, 4096) + HDR_AREA);
	mem += (size_t)j->nq * ((size_t)qsize * (16 + 8 + 4) + 4096 * 4);
	if (o->indirect)
		mem += (size_t)j->nq * qsize * VUF_INDIRECT_MAX_DEFAULT * 16;
	mem = VU_ALIGN_UP(mem + (1u << 20), (size_t)(2u << 20));
	ret = vuf_mem_add(j->vuf, 0x100000, mem,
			  VUF_MEM_POPULATE | (o->hugepages ? VUF_MEM_HUGETLB : 0));
	if (ret)
		die_setup("cannot allocate %zu bytes of guest memory%s: %s", mem,
			  o->hugepages ? " on hugetlbfs" : "", strerror(-ret));
	ret = vuf_mem_commit(j->vuf);
	if (ret)
		die_setup("SET_MEM_TABLE: %s", strerror(-ret));
	if (o->inflight) {
		ret = vuf_get_inflight(j->vuf, (uint16_t)j->nq, (uint16_t)qsize, NULL, NULL);
		if (!ret)
			ret = vuf_set_inflight(j->vuf, -1, NULL);
		if (ret)
			die_setup("GET/SET_INFLIGHT_FD: %s", strerror(-ret));
	}

	for (unsigned int qi = 0; qi < j->nq; qi++) {
		struct queue *q = &j->q[qi];
		struct vuf_vq_opts vo = { .index = qi, .size = qsize, .packed = o->packed };

		q->vq = vuf_vq_create(j->vuf, &vo);
		if (!q->vq)
			die_setup("queue %u: %s", qi, strerror(errno));
		q->depth = o->iodepth;
		q->reqs = calloc(o->iodepth, sizeof(*q->reqs));
		q->free = calloc(o->iodepth, sizeof(*q->free));
		if (!q->reqs || !q->free)
			die_setup("out of memory");
		for (unsigned int i = 0; i < o->iodepth; i++) {
			struct req *r = &q->reqs[i];
			uint64_t hgpa, dgpa;
			uint8_t *area = vuf_alloc(j->vuf, HDR_AREA, 64, &hgpa);

			r->data = vuf_alloc(j->vuf, o->bs, 4096, &dgpa);
			if (!area || !r->data)
				die_setup("guest memory too small");
			r->hdr = (struct virtio_blk_outhdr *)area;
			r->status = area + 32;
			r->segs[0] = (struct vuf_seg){ .gpa = hgpa, .len = 16, .writable = false };
			r->segs[1] = (struct vuf_seg){ .gpa = dgpa, .len = o->bs, .writable = true };
			r->segs[2] = (struct vuf_seg){ .gpa = hgpa + 32, .len = 1, .writable = true };
			q->free[q->nfree++] = (uint16_t)(o->iodepth - 1 - i);
		}
		/* Busy-polling: no calls wanted. */
		vuf_vq_disable_cb(q->vq);
		ret = vuf_vq_start(q->vq);
		if (ret)
			die_setup("starting queue %u: %s", qi, strerror(-ret));
	}
	if (vuf_protocol_features(j->vuf) & (1ull << VU_PROTOCOL_F_STATUS)) {
		/* Not negotiated (not in pwant); kept for clarity. */
	}
}

/* ------------------------------------------------------------------ */
/* The data path                                                      */
/* ------------------------------------------------------------------ */

/* Fill queue q up to its depth.  Returns how many were posted. */
static inline unsigned int fill(struct job *j, struct queue *q, uint64_t now)
{
	unsigned int n = 0;
	/* The batch becomes visible at the kick below, in one index store. */
	unsigned int pflags = VUF_POST_BATCH | (j->o.indirect ? VUF_POST_INDIRECT : 0);

	while (q->nfree) {
		uint16_t idx = q->free[q->nfree - 1];
		struct req *r = &q->reqs[idx];
		uint64_t block;
		bool write;
		int ret;

		if (!next_io(j, &block, &write))
			break;
		prepare(j, r, block, write);
		r->t_post = now;
		ret = vuf_vq_post_flags(q->vq, r->segs, 3, idx, pflags);
		if (vu_unlikely(ret)) {
			fprintf(stderr, "vu-blkgen: post on queue %u: %s%s%s\n", vuf_vq_index(q->vq),
				strerror(-ret), vuf_vq_error(q->vq) ? ": " : "",
				vuf_vq_error(q->vq) ? vuf_vq_error(q->vq) : "");
			exit(EXIT_SETUP);
		}
		q->nfree--;
		n++;
	}
	if (n) {
		int ret = vuf_vq_kick(q->vq);

		if (vu_unlikely(ret < 0)) {
			fprintf(stderr, "vu-blkgen: kick: %s\n", strerror(-ret));
			exit(EXIT_SETUP);
		}
	}
	return n;
}

static unsigned int inflight_total(const struct job *j)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < j->nq; i++)
		n += j->q[i].depth - j->q[i].nfree;
	return n;
}

/*
 * Run requests until `count` are issued (or until `end` ticks with a
 * runtime) and all of them completed.  Returns the ticks of the last
 * completion.
 */
static uint64_t run(struct job *j, uint64_t count, uint64_t end_ticks, uint64_t ramp_ticks)
{
	struct vuf_completion comp[REAP_BATCH];
	uint64_t now = ticks(), last_progress = now, stall = ns_to_ticks(STALL_NS);
	uint64_t start = now, last_done = now;
	unsigned int spins = 0;

	j->issued = 0;
	j->to_issue = count;
	j->stop_issue = false;
	j->record = true;
	j->record_from = start + ramp_ticks;
	for (unsigned int i = 0; i < j->nq; i++)
		fill(j, &j->q[i], now);
	for (;;) {
		bool any = false;

		for (unsigned int qi = 0; qi < j->nq; qi++) {
			struct queue *q = &j->q[qi];
			int n = vuf_vq_reap(q->vq, comp, REAP_BATCH);

			if (n == 0)
				continue;
			if (vu_unlikely(n < 0)) {
				fprintf(stderr, "vu-blkgen: queue %u broken: %s\n", qi,
					vuf_vq_error(q->vq) ? vuf_vq_error(q->vq) : "?");
				exit(EXIT_SETUP);
			}
			now = ticks();
			any = true;
			for (int k = 0; k < n; k++) {
				uint16_t idx = (uint16_t)comp[k].cookie;

				complete(j, q, &q->reqs[idx], comp[k].len, now);
				q->free[q->nfree++] = idx;
			}
			last_done = now;
			if (vu_unlikely(end_ticks && now >= end_ticks))
				j->stop_issue = true;
			fill(j, q, now);
		}
		if (any) {
			last_progress = now;
			spins = 0;
			continue;
		}
		if (++spins < 256)
			continue;
		spins = 0;
		now = ticks();
		if (end_ticks && now >= end_ticks)
			j->stop_issue = true;
		if (interrupted)
			j->stop_issue = true;
		if (!inflight_total(j)) {
			if (j->stop_issue || j->issued >= j->to_issue)
				break;
			/* Nothing in flight but more to issue (cannot happen
			 * unless every post failed): post again. */
			for (unsigned int i = 0; i < j->nq; i++)
				fill(j, &j->q[i], now);
			continue;
		}
		if (now - last_progress > stall) {
			fprintf(stderr, "vu-blkgen: no completion for %llu s with %u requests in flight\n",
				(unsigned long long)(STALL_NS / 1000000000ull), inflight_total(j));
			exit(EXIT_SETUP);
		}
	}
	return last_done;
}

static void reset_stats(struct job *j)
{
	for (unsigned int i = 0; i < j->nq; i++) {
		h_reset(&j->q[i].h);
		j->q[i].completed = 0;
	}
}

/* The verification fill or check pass over the whole range. */
static void verify_pass(struct job *j, int kind)
{
	j->phase_kind = kind;
	j->seq_next = 0;
	run(j, j->nblocks, 0, 0);
	j->phase_kind = 0;
	j->seq_next = 0;
}

/* One request alone after idling for secs; returns its latency in ns. */
static uint64_t probe(struct job *j, double secs)
{
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	struct queue *q = &j->q[0];
	uint64_t before = q->h.count;

	nanosleep(&ts, NULL);
	h_reset(&q->h);
	run(j, 1, 0, 0);
	(void)before;
	return ticks_to_ns(q->h.max);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static struct job j;
	struct options *o = &j.o;
	uint64_t start, end, count, ramp_ticks = 0, end_ticks = 0, first_ns = 0;
	uint64_t *probe_ns = NULL;
	struct hist all;
	double secs, iops, mibps;
	struct sigaction sa;
	uint64_t kicks = 0, suppressed = 0;

	parse_args(o, argc, argv);
	if (o->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die_usage("cannot pin to CPU %d: %s", o->cpu, strerror(errno));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	clock_init(o->tsc);
	j.rng = mix64(o->seed) | 1;
	setup(&j);
	reset_stats(&j);

	if (o->verify) {
		verify_pass(&j, 1);
		if (!o->quiet)
			printf("verify: wrote %" PRIu64 " blocks of %u bytes\n", j.nblocks, o->bs);
	}
	if (o->idle > 0) {
		if (!o->quiet)
			printf("IDLE: begin %.1f s\n", o->idle);
		fflush(stdout);
		first_ns = probe(&j, o->idle);
		if (!o->quiet)
			printf("IDLE: end; first request after %.1f s idle: %.1f us\n", o->idle,
			       first_ns / 1000.0);
		if (o->probes) {
			probe_ns = calloc(o->probes, sizeof(*probe_ns));
			for (unsigned int i = 0; i < o->probes && probe_ns; i++)
				probe_ns[i] = probe(&j, o->probe_gap);
		}
		fflush(stdout);
	}
	reset_stats(&j);
	j.seq_next = 0;

	if (o->ramp > 0)
		ramp_ticks = ns_to_ticks((uint64_t)(o->ramp * 1e9));
	if (o->number) {
		count = o->number;
	} else {
		count = UINT64_MAX;
		end_ticks = ticks() + ramp_ticks + ns_to_ticks((uint64_t)(o->runtime * 1e9));
	}
	for (unsigned int i = 0; i < j.nq; i++) {
		const struct vuf_vq_stats *s = vuf_vq_stats(j.q[i].vq);

		kicks -= s->kicks;
		suppressed -= s->kicks_suppressed;
	}
	start = ticks();
	end = run(&j, count, end_ticks, ramp_ticks);
	for (unsigned int i = 0; i < j.nq; i++) {
		const struct vuf_vq_stats *s = vuf_vq_stats(j.q[i].vq);

		kicks += s->kicks;
		suppressed += s->kicks_suppressed;
	}
	if (o->verify) {
		verify_pass(&j, 2);
		if (!o->quiet)
			printf("verify: read back and checked %" PRIu64 " blocks\n", j.nblocks);
	}

	h_reset(&all);
	for (unsigned int i = 0; i < j.nq; i++)
		h_merge(&all, &j.q[i].h);
	{
		uint64_t t0 = start + ramp_ticks;

		secs = end > t0 ? (double)ticks_to_ns(end - t0) / 1e9 : 0;
	}
	iops = secs > 0 ? (double)all.count / secs : 0;
	mibps = iops * o->bs / (1024.0 * 1024.0);
	uint64_t p50 = ticks_to_ns(h_quantile(&all, 0.50)), p99 = ticks_to_ns(h_quantile(&all, 0.99));
	uint64_t p999 = ticks_to_ns(h_quantile(&all, 0.999)), lmax = ticks_to_ns(all.max);
	uint64_t lmin = all.count ? ticks_to_ns(all.min) : 0;
	double mean = all.count ? (double)ticks_to_ns(all.sum) / (double)all.count : 0;
	uint64_t probe_med = 0;

	if (probe_ns && o->probes) {
		qsort(probe_ns, o->probes, sizeof(*probe_ns), cmp_u64);
		probe_med = probe_ns[o->probes / 2];
	}
	if (!o->quiet) {
		printf("%s: %s bs=%u iodepth=%u queues=%u ring=%s event_idx=%s%s, capacity %" PRIu64
		       " sectors\n", o->socket, rw_name(o), o->bs, o->iodepth, j.nq,
		       o->packed ? "packed" : "split",
		       (j.features & (1ull << VIRTIO_RING_F_EVENT_IDX)) ? "on" : "off",
		       o->indirect ? " indirect" : "", j.capacity);
		printf("  %" PRIu64 " requests in %.3f s: %.0f IOPS, %.1f MiB/s\n", all.count, secs,
		       iops, mibps);
		printf("  latency (us): min %.2f mean %.2f p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
		       lmin / 1e3, mean / 1e3, p50 / 1e3, p99 / 1e3, p999 / 1e3, lmax / 1e3);
		printf("  kicks %" PRIu64 " (%.3f per request), suppressed %" PRIu64 "; clock %s\n",
		       kicks, all.count ? (double)kicks / (double)all.count : 0, suppressed,
		       use_tsc ? "tsc" : "monotonic");
		if (probe_ns)
			printf("  idle probes: median %.1f us of %u (after %.3f s gaps)\n",
			       probe_med / 1e3, o->probes, o->probe_gap);
		if (j.io_errors || j.verify_errors || j.bad_len)
			printf("  ERRORS: %" PRIu64 " I/O, %" PRIu64 " verification, %" PRIu64
			       " wrong used lengths\n", j.io_errors, j.verify_errors, j.bad_len);
	}
	printf("JSON: {\"label\":\"%s\",\"rw\":\"%s\",\"bs\":%u,\"iodepth\":%u,\"queues\":%u,"
	       "\"ring\":\"%s\",\"event_idx\":%s,\"indirect\":%s,\"requests\":%" PRIu64
	       ",\"seconds\":%.6f,\"iops\":%.1f,\"mibps\":%.2f,"
	       "\"lat_ns\":{\"min\":%" PRIu64 ",\"mean\":%.1f,\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
	       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "},\"kicks\":%" PRIu64
	       ",\"first_after_idle_ns\":%" PRIu64 ",\"idle_probe_p50_ns\":%" PRIu64
	       ",\"io_errors\":%" PRIu64 ",\"verify_errors\":%" PRIu64 ",\"verified\":%s}\n",
	       o->label ? o->label : "", rw_name(o), o->bs, o->iodepth, j.nq,
	       o->packed ? "packed" : "split",
	       (j.features & (1ull << VIRTIO_RING_F_EVENT_IDX)) ? "true" : "false",
	       o->indirect ? "true" : "false", all.count, secs, iops, mibps, lmin, mean, p50, p99,
	       p999, lmax, kicks, first_ns, probe_med, j.io_errors, j.verify_errors,
	       o->verify ? "true" : "false");
	fflush(stdout);
	free(probe_ns);
	/* Closing the socket is the disconnect; the back-end resets the device. */
	vuf_close(j.vuf);
	return (j.io_errors || j.verify_errors) ? EXIT_IOERR : 0;
}

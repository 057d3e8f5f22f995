/*
 * The C baseline and self-check of the gpio-sim test bed (scripts/gpio-vm-test --probe).
 *
 * Runs as PID 1's child inside the qemu VM that scripts/vm/gpio-init sets up, with libgpiod v1 (linked
 * statically, so it needs nothing from the system disk), against the two simulated chips:
 *   chip A, label "vouch-sim", 16 lines door, motion, run, pulse, tamper, siren, status_led, spare7..15
 *   chip B, label "vouch-sim-b", 4 lines b0..b3.
 * Environment (set by gpio-init): VOUCH_GPIOSIM_A / VOUCH_GPIOSIM_B, the sysfs directories holding
 * sim_gpio<N>/{pull,value}; VOUCH_GPIOSIM_A_CHIP / VOUCH_GPIOSIM_B_CHIP, the /dev/gpiochipN nodes.
 *
 * Checks: chips found by label, lines by name; both-edge events on "door" driven by writing
 * pull-up/pull-down to sysfs (10 edges, alternating, kernel timestamps increasing and inside the
 * write..read window), the edge latency (sysfs write -> event read); 200 toggles without reading
 * (how many events the kernel queued: the v1 uAPI keeps 16); a second request of a held line (EBUSY);
 * an output ("siren") read back from sysfs.
 *
 * Prints the VMTEST protocol on stdout: `VMTEST PASS|FAIL <name> <detail>`, `VMTEST FIGURE <name>
 * <value> <unit>`, then `VMTEST DONE`. Exit status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONSUMER "vouch-gpio-probe"
#define TOGGLES 5
#define FLOOD 200

static int failures;

static void result(int ok, const char *name, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("VMTEST %s %s %s\n", ok ? "PASS" : "FAIL", name, detail);
	fflush(stdout);
	if (!ok)
		failures++;
}

static void figure(const char *name, double value, const char *unit)
{
	printf("VMTEST FIGURE %s %.3f %s\n", name, value, unit);
	fflush(stdout);
}

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* Writes `text` to <dir>/sim_gpio<offset>/<attr>; 0 or an errno. */
static int sim_write(const char *dir, unsigned offset, const char *attr, const char *text)
{
	char path[512];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/sim_gpio%u/%s", dir, offset, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	if (write(fd, text, strlen(text)) < 0)
		err = errno;
	close(fd);
	return err;
}

/* Reads <dir>/sim_gpio<offset>/<attr> into buf (newline stripped); 0 or an errno. */
static int sim_read(const char *dir, unsigned offset, const char *attr, char *buf, size_t size)
{
	char path[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/sim_gpio%u/%s", dir, offset, attr);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const char *const names_a[16] = {
	"door", "motion", "run", "pulse", "tamper", "siren", "status_led", "spare7",
	"spare8", "spare9", "spare10", "spare11", "spare12", "spare13", "spare14", "spare15",
};

static void check_chip(const char *label, unsigned expected_lines, const char *const *names,
		       const char *env_chip)
{
	struct gpiod_chip *chip = gpiod_chip_open_by_label(label);
	char name[64], want[64], bad[256] = "";
	const char *dev = getenv(env_chip);
	unsigned i, n;

	snprintf(name, sizeof(name), "chip-%s", label);
	if (!chip) {
		result(0, name, "gpiod_chip_open_by_label(\"%s\") failed: %s", label, strerror(errno));
		return;
	}
	n = gpiod_chip_num_lines(chip);
	for (i = 0; i < n && i < expected_lines; i++) {
		struct gpiod_line *line = gpiod_chip_get_line(chip, i);
		const char *got = line ? gpiod_line_name(line) : NULL;

		if (names)
			snprintf(want, sizeof(want), "%s", names[i]);
		else
			snprintf(want, sizeof(want), "b%u", i);
		if (!got || strcmp(got, want) != 0) {
			size_t len = strlen(bad);

			snprintf(bad + len, sizeof(bad) - len, " %u=%s(want %s)", i, got ? got : "(none)", want);
		}
	}
	snprintf(want, sizeof(want), "/dev/%s", gpiod_chip_name(chip));
	result(n == expected_lines && bad[0] == '\0' && dev && strcmp(dev, want) == 0, name,
	       "%s label=%s lines=%u (want %u) names%s %s=%s", want, gpiod_chip_label(chip), n,
	       expected_lines, bad[0] ? bad : " ok", env_chip, dev ? dev : "(unset)");
	gpiod_chip_close(chip);
}

int main(void)
{
	const char *sim = getenv("VOUCH_GPIOSIM_A");
	struct timespec wait = { .tv_sec = 5 };
	struct timespec zero = { 0 };
	struct gpiod_chip *chip, *other;
	struct gpiod_line *door, *door2, *siren, *b3;
	struct gpiod_line_event ev, events[64];
	uint64_t latency[2 * TOGGLES], to_kernel[2 * TOGGLES], last_ts = 0;
	int got = 0, ordered = 1, alternating = 1, bracketed = 1, err, i, n;
	char detail[256];

	if (!sim || !getenv("VOUCH_GPIOSIM_B")) {
		result(0, "setup", "VOUCH_GPIOSIM_A/VOUCH_GPIOSIM_B not set (run by scripts/vm/gpio-init)");
		printf("VMTEST DONE\n");
		return 1;
	}

	check_chip("vouch-sim", 16, names_a, "VOUCH_GPIOSIM_A_CHIP");
	check_chip("vouch-sim-b", 4, NULL, "VOUCH_GPIOSIM_B_CHIP");

	chip = gpiod_chip_open_by_label("vouch-sim");
	if (!chip) {
		result(0, "open", "vouch-sim: %s", strerror(errno));
		printf("VMTEST DONE\n");
		return 1;
	}
	door = gpiod_chip_find_line(chip, "door");
	result(door && gpiod_line_offset(door) == 0, "find-line-by-name", "door -> offset %d",
	       door ? (int)gpiod_line_offset(door) : -1);
	if (!door) {
		printf("VMTEST DONE\n");
		return 1;
	}
	errno = 0;
	door2 = gpiod_chip_find_line(chip, "no-such-line");
	err = errno;
	result(door2 == NULL && err == ENOENT, "find-line-missing", "no-such-line -> %s (errno %s)",
	       door2 ? "a line" : "NULL", strerror(err));

	/* Start from a known low level, then ask for both edges. */
	err = sim_write(sim, 0, "pull", "pull-down");
	if (gpiod_line_request_both_edges_events(door, CONSUMER) < 0) {
		result(0, "request-events", "door: %s", strerror(errno));
		printf("VMTEST DONE\n");
		return 1;
	}
	result(err == 0 && strcmp(gpiod_line_consumer(door) ?: "", CONSUMER) == 0, "request-events",
	       "door both edges, consumer=%s (pull-down write: %s)", gpiod_line_consumer(door) ?: "(none)",
	       err ? strerror(err) : "ok");

	/* 5 toggles: up, down, ... = 10 edges, each read before the next write. */
	for (i = 0; i < 2 * TOGGLES; i++) {
		int rising = (i % 2 == 0);
		uint64_t t0 = now_ns(CLOCK_MONOTONIC), t1, ts;

		err = sim_write(sim, 0, "pull", rising ? "pull-up" : "pull-down");
		if (err) {
			result(0, "edges", "writing pull of sim_gpio0: %s", strerror(err));
			break;
		}
		n = gpiod_line_event_wait(door, &wait);
		if (n != 1) {
			result(0, "edges", "edge %d: %s", i + 1, n == 0 ? "no event within 5 s" : strerror(errno));
			break;
		}
		if (gpiod_line_event_read(door, &ev) < 0) {
			result(0, "edges", "edge %d: read: %s", i + 1, strerror(errno));
			break;
		}
		t1 = now_ns(CLOCK_MONOTONIC);
		ts = ts_ns(&ev.ts);
		if (ev.event_type != (rising ? GPIOD_LINE_EVENT_RISING_EDGE : GPIOD_LINE_EVENT_FALLING_EDGE))
			alternating = 0;
		if (ts <= last_ts)
			ordered = 0;
		if (ts < t0 || ts > t1)
			bracketed = 0;
		last_ts = ts;
		latency[got] = t1 - t0;
		to_kernel[got] = ts > t0 ? ts - t0 : 0;
		got++;
	}
	/* Nothing more may come. */
	n = gpiod_line_event_wait(door, &(struct timespec){ .tv_nsec = 100000000 });
	result(got == 2 * TOGGLES && n == 0, "edges", "%d of %d edges, %s after them", got, 2 * TOGGLES,
	       n == 0 ? "none" : "an extra event");
	result(got > 0 && alternating, "edges-alternate", "rising/falling alternate as driven");
	result(got > 0 && ordered, "edges-timestamps-ordered", "kernel timestamps strictly increasing");
	result(got > 0 && bracketed, "edges-timestamps-monotonic",
	       "each kernel timestamp lies between the sysfs write and the read on CLOCK_MONOTONIC");
	if (got > 0) {
		qsort(latency, got, sizeof(latency[0]), cmp_u64);
		qsort(to_kernel, got, sizeof(to_kernel[0]), cmp_u64);
		figure("probe-edge-latency-median", latency[got / 2] / 1e6, "ms");
		figure("probe-edge-latency-max", latency[got - 1] / 1e6, "ms");
		figure("probe-write-to-kernel-timestamp-median", to_kernel[got / 2] / 1e6, "ms");
	}

	/* The kernel's queue: 200 toggles without reading, then read what is there. */
	{
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);
		int queued = 0, first_type = -1, last_type = -1, write_err = 0;

		for (i = 0; i < FLOOD; i++)
			write_err |= sim_write(sim, 0, "pull", i % 2 == 0 ? "pull-up" : "pull-down");
		figure("probe-sysfs-toggle-rate", FLOOD / ((now_ns(CLOCK_MONOTONIC) - t0) / 1e9), "writes/s");
		usleep(200000);
		while (gpiod_line_event_wait(door, queued ? &zero : &wait) == 1) {
			n = gpiod_line_event_read_multiple(door, events, 64);
			if (n <= 0)
				break;
			if (first_type < 0)
				first_type = events[0].event_type;
			last_type = events[n - 1].event_type;
			queued += n;
		}
		figure("probe-events-queued-after-200-toggles", queued, "events");
		result(queued == 16 && !write_err, "event-queue-depth",
		       "%d toggles unread left %d events queued (v1 uAPI keeps 16), first %s, last %s", FLOOD, queued,
		       first_type == GPIOD_LINE_EVENT_RISING_EDGE ? "rising" : "falling",
		       last_type == GPIOD_LINE_EVENT_RISING_EDGE ? "rising" : "falling");
	}

	/* A second holder: another open of the chip asks for the same line. */
	other = gpiod_chip_open_by_label("vouch-sim");
	door2 = other ? gpiod_chip_find_line(other, "door") : NULL;
	errno = 0;
	n = door2 ? gpiod_line_request_input(door2, "second-holder") : -1;
	err = errno;
	result(door2 && n < 0 && err == EBUSY, "busy-line", "second request of a held line: %s",
	       n < 0 ? strerror(err) : "succeeded (expected EBUSY)");
	if (door2 && n == 0)
		gpiod_line_release(door2);
	if (other)
		gpiod_chip_close(other);
	gpiod_line_release(door);

	/* An output, read back from the simulator. */
	siren = gpiod_chip_find_line(chip, "siren");
	if (!siren || gpiod_line_request_output(siren, CONSUMER, 0) < 0) {
		result(0, "output", "siren: %s", strerror(errno));
	} else {
		char low[16] = "?", high[16] = "?";

		sim_read(sim, 5, "value", low, sizeof(low));
		gpiod_line_set_value(siren, 1);
		sim_read(sim, 5, "value", high, sizeof(high));
		result(strcmp(low, "0") == 0 && strcmp(high, "1") == 0, "output",
		       "siren set 0 -> sim value %s, set 1 -> %s", low, high);
		gpiod_line_set_value(siren, 0);
		gpiod_line_release(siren);
	}
	gpiod_chip_close(chip);

	/* Chip B's sysfs and a plain read. */
	other = gpiod_chip_open_by_label("vouch-sim-b");
	b3 = other ? gpiod_chip_find_line(other, "b3") : NULL;
	if (b3 && gpiod_line_request_input(b3, CONSUMER) == 0) {
		int v0, v1;

		err = sim_write(getenv("VOUCH_GPIOSIM_B"), 3, "pull", "pull-up");
		v1 = gpiod_line_get_value(b3);
		err |= sim_write(getenv("VOUCH_GPIOSIM_B"), 3, "pull", "pull-down");
		v0 = gpiod_line_get_value(b3);
		snprintf(detail, sizeof(detail), "b3 pull-up -> %d, pull-down -> %d%s", v1, v0, err ? " (sysfs write failed)" : "");
		result(v1 == 1 && v0 == 0 && !err, "chip-b-input", "%s", detail);
		gpiod_line_release(b3);
	} else {
		result(0, "chip-b-input", "b3 on vouch-sim-b: %s", strerror(errno));
	}
	if (other)
		gpiod_chip_close(other);

	printf("VMTEST DONE\n");
	fflush(stdout);
	return failures ? 1 : 0;
}

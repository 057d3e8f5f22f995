/*
 * modbus_loop: the C baseline of the Modbus poll-throughput benchmark (scripts/bench-modbus).
 *
 *   modbus_loop tcp HOST PORT UNIT ADDRESS COUNT SECONDS
 *   modbus_loop rtu DEVICE BAUD UNIT ADDRESS COUNT SECONDS
 *
 * Reads COUNT holding registers (FC 3) at ADDRESS as fast as libmodbus allows for SECONDS, one request
 * at a time, with a 1 s response timeout, and prints one JSON line:
 *   {"tool":"c-libmodbus","reads":N,"errors":E,"seconds":S,"reads_per_s":R}
 * reads counts successful reads only; reads_per_s = reads / seconds (seconds as measured).
 *
 * It is deliberately the plainest libmodbus loop a C programmer would write, so the ratio
 * vouch/c measures what the Swift poller costs over libmodbus itself. The one addition is the recovery
 * a long run needs: after a system error (connection reset, EBADF) the connection is reopened, and after
 * a timeout or a bad frame the serial line is flushed so a late reply cannot poison the next request.
 *
 * Build: cc -O2 -o modbus_loop modbus_loop.c $(pkg-config --cflags --libs libmodbus)
 */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_long(const char *text, const char *what, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < min || v > max) {
        fprintf(stderr, "modbus_loop: %s must be an integer in %ld..%ld, got \"%s\"\n", what, min, max, text);
        exit(2);
    }
    return v;
}

static void usage(void) {
    fprintf(stderr,
            "usage: modbus_loop tcp HOST PORT UNIT ADDRESS COUNT SECONDS\n"
            "       modbus_loop rtu DEVICE BAUD UNIT ADDRESS COUNT SECONDS\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 8) usage();
    const int tcp = strcmp(argv[1], "tcp") == 0;
    if (!tcp && strcmp(argv[1], "rtu") != 0) usage();

    modbus_t *ctx;
    if (tcp) {
        /* _pi: accepts host names and a service string, not only dotted IPv4. */
        parse_long(argv[3], "PORT", 1, 65535);
        ctx = modbus_new_tcp_pi(argv[2], argv[3]);
    } else {
        int baud = (int)parse_long(argv[3], "BAUD", 50, 4000000);
        ctx = modbus_new_rtu(argv[2], baud, 'N', 8, 1);
    }
    if (ctx == NULL) {
        fprintf(stderr, "modbus_loop: cannot create the libmodbus context: %s\n", modbus_strerror(errno));
        return 1;
    }
    const int unit = (int)parse_long(argv[4], "UNIT", 0, 255);
    const int address = (int)parse_long(argv[5], "ADDRESS", 0, 65535);
    const int count = (int)parse_long(argv[6], "COUNT", 1, MODBUS_MAX_READ_REGISTERS);
    const double seconds = (double)parse_long(argv[7], "SECONDS", 1, 86400);

    modbus_set_slave(ctx, unit);
    modbus_set_response_timeout(ctx, 1, 0);
    if (modbus_connect(ctx) == -1) {
        fprintf(stderr, "modbus_loop: cannot connect to %s %s: %s\n", argv[2], argv[3], modbus_strerror(errno));
        modbus_free(ctx);
        return 1;
    }

    uint16_t regs[MODBUS_MAX_READ_REGISTERS];
    long reads = 0, errors = 0;
    int last_errno = 0;
    const double start = now_s();
    double elapsed = 0;
    while ((elapsed = now_s() - start) < seconds) {
        if (modbus_read_registers(ctx, address, count, regs) == count) {
            reads++;
            continue;
        }
        errors++;
        last_errno = errno;
        if (errno == ETIMEDOUT || errno >= MODBUS_ENOBASE) {
            /* Timeout or a bad/exception frame: drop whatever is still in flight. */
            modbus_flush(ctx);
        } else {
            /* A system error (ECONNRESET, EPIPE, EBADF, EIO): only a new connection recovers. */
            modbus_close(ctx);
            if (modbus_connect(ctx) == -1) {
                struct timespec pause = {0, 100 * 1000 * 1000};
                nanosleep(&pause, NULL);
            }
        }
    }
    if (errors) fprintf(stderr, "modbus_loop: %ld error(s), last: %s\n", errors, modbus_strerror(last_errno));

    printf("{\"tool\":\"c-libmodbus\",\"reads\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"reads_per_s\":%.1f}\n",
           reads, errors, elapsed, (double)reads / elapsed);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}

/*
 * A tiny Modbus TCP energy meter for the power-cut VM (scripts/power-cut-campaign).
 *
 * The VM has no Python, so this stands in for scripts/sim/meter.py with the same register map
 * (addresses 0-based, as on the wire), which the campaign's vouch.toml reads:
 *   input register 52-53   float32, word order ABCD   total active power, W
 *   holding register 10-11 uint32,  word order CDAB   active energy import, Wh
 *   holding register 0     uint16                     meter status (always 1)
 *
 * The power sits near 12 kW and drops to 0 W for STOP seconds of every PERIOD seconds (counted
 * from the meter's start), so the agent's stoppage rule fires and events, which are sealed at
 * once, land among the power cuts too. One client at a time (the agent holds one connection);
 * when it goes away the meter accepts the next, so the agent's reconnects work.
 *
 * Usage: vouch-vm-meter [PORT [PERIOD STOP]]    (defaults: 1502 9 3)
 * Built on the host by scripts/vm/vmbuild.py with gcc against libmodbus.
 */
#include <errno.h>
#include <math.h>
#include <modbus/modbus.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POWER_ADDRESS 52
#define ENERGY_ADDRESS 10
#define STATUS_ADDRESS 0
#define REGISTER_COUNT 100

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Power at `elapsed` seconds: a slow wobble around 12 kW, or 0 W inside the stop window. */
static float power_at(double elapsed, double period, double stop) {
    if (stop > 0 && fmod(elapsed, period) >= period - stop) {
        return 0.0f;
    }
    return (float)(12000.0 + 400.0 * sin(elapsed * 1.7) + 150.0 * sin(elapsed * 5.3));
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 1502;
    double period = argc > 2 ? atof(argv[2]) : 9.0;
    double stop = argc > 3 ? atof(argv[3]) : 3.0;
    if (port <= 0 || period <= 0 || stop < 0 || stop >= period) {
        fprintf(stderr, "meter: usage: %s [PORT [PERIOD STOP]] with 0 <= STOP < PERIOD\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client that vanishes mid-reply is not fatal */

    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    if (ctx == NULL) {
        fprintf(stderr, "meter: modbus_new_tcp: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_mapping_t *map = modbus_mapping_new(0, 0, REGISTER_COUNT, REGISTER_COUNT);
    if (map == NULL) {
        fprintf(stderr, "meter: modbus_mapping_new: %s\n", modbus_strerror(errno));
        return 1;
    }
    int listener = modbus_tcp_listen(ctx, 1);
    if (listener < 0) {
        fprintf(stderr, "meter: cannot listen on 127.0.0.1:%d: %s\n", port, modbus_strerror(errno));
        return 1;
    }
    fprintf(stderr, "meter: serving on 127.0.0.1:%d (power at input %d, energy at holding %d)\n", port,
            POWER_ADDRESS, ENERGY_ADDRESS);

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    double energy_wh = 1234000.0;
    double last_update = 0.0;
    map->tab_registers[STATUS_ADDRESS] = 1;

    for (;;) {
        if (modbus_tcp_accept(ctx, &listener) < 0) {
            fprintf(stderr, "meter: accept: %s\n", modbus_strerror(errno));
            sleep(1);
            continue;
        }
        for (;;) {
            uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
            int length = modbus_receive(ctx, query);
            if (length == 0) {
                continue; /* a request for another unit id: ignored, as libmodbus does */
            }
            if (length < 0) {
                break; /* the client closed the connection or sent garbage: take the next one */
            }
            /* Refresh the values for this very request, so every poll sees the current state. */
            double elapsed = seconds_since(&start);
            float power = power_at(elapsed, period, stop);
            energy_wh += power * (elapsed - last_update) / 3600.0;
            last_update = elapsed;
            /* ABCD by hand: libmodbus 3.1.6's modbus_set_float_abcd swaps bytes within the words. */
            uint32_t bits;
            memcpy(&bits, &power, sizeof bits);
            map->tab_input_registers[POWER_ADDRESS] = (uint16_t)(bits >> 16);
            map->tab_input_registers[POWER_ADDRESS + 1] = (uint16_t)(bits & 0xFFFF);
            uint32_t energy = (uint32_t)energy_wh;
            map->tab_registers[ENERGY_ADDRESS] = (uint16_t)(energy & 0xFFFF); /* CDAB: low word first */
            map->tab_registers[ENERGY_ADDRESS + 1] = (uint16_t)(energy >> 16);
            if (modbus_reply(ctx, query, length, map) < 0) {
                break;
            }
        }
        modbus_close(ctx); /* closes the client socket only; the listener stays open */
    }
}

#ifndef VOUCH_CMODBUS_SHIM_H
#define VOUCH_CMODBUS_SHIM_H
#include <modbus/modbus.h>
#include <errno.h>
#include <string.h>

/* errno is a macro over a thread-local; Swift reads it through this function. */
static inline int vouch_modbus_errno(void) { return errno; }
#endif

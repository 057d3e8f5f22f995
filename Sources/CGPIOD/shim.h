#ifndef VOUCH_CGPIOD_SHIM_H
#define VOUCH_CGPIOD_SHIM_H
#include <gpiod.h>
#endif

// libnbd's client API for the NBD backend (BlockIO/NBDBackend.swift). Swift
// imports the functions and the callback structs directly; the wrappers
// below only give the libnbd flag macros typed names.
#ifndef NVMEFS_CNBD_SHIM_H
#define NVMEFS_CNBD_SHIM_H
#include <libnbd.h>

static const unsigned nvmefs_nbd_direction_read = LIBNBD_AIO_DIRECTION_READ;
static const unsigned nvmefs_nbd_direction_write = LIBNBD_AIO_DIRECTION_WRITE;

#endif

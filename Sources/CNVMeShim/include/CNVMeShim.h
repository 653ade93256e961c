// The shim (shim.c) exports no API of its own: it replaces libc functions
// when preloaded (LD_PRELOAD=libnvmefs-shim.so).

// The CPU the calling thread runs on, for picking a lock shard (BlockIO's
// sharded locks). glibc's sched_getcpu reads it from the thread's rseq area
// (no system call); it is a GNU extension that Swift's Glibc module does not
// declare, hence this header. -1 if unknown; the thread may move at once, so
// it is a hint, never a guarantee.
#ifndef NVMEFS_CCPU_SHIM_H
#define NVMEFS_CCPU_SHIM_H

extern int sched_getcpu(void);

static inline int nvmefs_current_cpu(void) { return sched_getcpu(); }

#endif

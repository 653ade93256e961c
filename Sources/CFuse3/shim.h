// The only C in nvmefs: libfuse3's low-level API and wrappers for the
// function-like macros Swift cannot import.
#ifndef NVMEFS_CFUSE3_SHIM_H
#define NVMEFS_CFUSE3_SHIM_H
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <fuse.h>

static inline struct fuse_session *nvmefs_session_new(struct fuse_args *args,
        const struct fuse_lowlevel_ops *ops, void *userdata) {
    return fuse_session_new(args, ops, sizeof(*ops), userdata);
}

static inline int nvmefs_session_loop_mt(struct fuse_session *se, int clone_fd, unsigned max_idle) {
    struct fuse_loop_config cfg;
    cfg.clone_fd = clone_fd;
    cfg.max_idle_threads = max_idle;
    return fuse_session_loop_mt(se, &cfg);
}
#endif

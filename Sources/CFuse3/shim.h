// The only C in nvmefs: libfuse3's low-level API and wrappers for the
// function-like macros Swift cannot import.
#ifndef NVMEFS_CFUSE3_SHIM_H
#define NVMEFS_CFUSE3_SHIM_H
// 3.12: struct fuse_loop_config is opaque and set through fuse_loop_cfg_*,
// which is the only way to raise the worker thread limit (default 10).
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <fuse.h>

static inline struct fuse_session *nvmefs_session_new(struct fuse_args *args,
        const struct fuse_lowlevel_ops *ops, void *userdata) {
    return fuse_session_new(args, ops, sizeof(*ops), userdata);
}

/// Runs the multi-threaded loop: at most max_threads workers, of which at
/// most max_idle stay alive while idle.
static inline int nvmefs_session_loop_mt(struct fuse_session *se, int clone_fd, unsigned max_idle,
        unsigned max_threads) {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (cfg == NULL) return -1;
    fuse_loop_cfg_set_clone_fd(cfg, clone_fd);
    fuse_loop_cfg_set_idle_threads(cfg, max_idle);
    fuse_loop_cfg_set_max_threads(cfg, max_threads);
    int res = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return res;
}

#endif

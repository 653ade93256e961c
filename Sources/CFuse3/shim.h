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

/// FUSE_OPEN's reply (struct fuse_open_out of the kernel protocol), for open
/// flags that libfuse 3.14's fuse_file_info has no field for.
struct nvmefs_open_out {
    uint64_t fh;
    uint32_t open_flags;
    uint32_t padding;
};
/// FOPEN_* bits of the kernel protocol (include/uapi/linux/fuse.h).
#define NVMEFS_FOPEN_DIRECT_IO (1u << 0)
#define NVMEFS_FOPEN_KEEP_CACHE (1u << 1)
#define NVMEFS_FOPEN_NONSEEKABLE (1u << 2)
/// Protocol 7.36 (Linux 6.2): the kernel sends direct writes of the file in
/// parallel instead of holding the inode lock across each one.
#define NVMEFS_FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)

/// Replies to FUSE_OPEN with `fh` and the FOPEN_* bits in `open_flags`: the
/// reply fuse_reply_open builds, with any of the protocol's bits.
static inline int nvmefs_reply_open(fuse_req_t req, uint64_t fh, uint32_t open_flags) {
    struct nvmefs_open_out out = { .fh = fh, .open_flags = open_flags, .padding = 0 };
    return fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

#endif

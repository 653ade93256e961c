// nvmefs's preload shim (LD_PRELOAD): presents an nvmefs mount to a
// program as Linux NVMe devices, as fakeroot presents root. `nvmefs nvme`
// and `nvmefs exec` set it up; README "nvme-cli" and docs/PASSTHRU.md
// describe it.
//
// Configuration (environment):
//   NVMEFS_SHIM_MOUNT   the mount (absolute path); unset: the shim does nothing
//   NVMEFS_SHIM_DEVICE  the controller's device path (default /dev/nvme0);
//                       namespace N is that path + "nN" (/dev/nvme0n1)
//
// What it changes, and nothing else:
//   open/openat/fopen (and their 64 and __*_2 forms) of the controller path
//     open MOUNT/passthru; of a namespace path MOUNT/namespaces/N/data, so
//     read/write/pread/pwrite (and every other data call) on the descriptor
//     reach the namespace's data file; ioctls use a passthru handle of the
//     descriptor's own.
//   stat/lstat/fstat/fstatat/statx (and __xstat forms) of those paths and
//     descriptors report a character device (controller) or a block device
//     of the namespace's size.
//   ioctl: the Linux NVMe ioctls (linux/nvme_ioctl.h) become passthru
//     requests (docs/PASSTHRU.md); the result is the kernel driver's: the
//     NVMe status field (0 on success, positive otherwise: Status Code Type,
//     Status Code, More, DNR, as CQE bits 15:1), or -1 with errno.
//     NVME_IOCTL_RESET clears CC.EN (regs/cc), NVME_IOCTL_SUBSYS_RESET
//     writes NSSR (regs/nssr), both wait for CSTS.RDY again (the built-in
//     host re-enables the controller); NVME_IOCTL_RESCAN writes 1 to
//     `rescan`. BLKGETSIZE64/BLKSSZGET/BLKPBSZGET on a namespace.
//   close forgets the descriptor.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

// Block devices of namespaces report 259:(N-1) (Linux's blkext major); the
// controller's character device a major of the local range.
#define BLOCK_MAJOR 259
#define CHAR_MAJOR 240
#define MAX_FDS 4096
#define HEADER 80

enum kind { NONE = 0, CONTROLLER = 1, NAMESPACE = 2 };

struct tracked {
    int kind;
    uint32_t nsid;
    int passthru;          // descriptor of the passthru file (-1: not yet)
    dev_t dev;             // identity of the descriptor's file, to notice a
    ino_t ino;             // descriptor closed behind the shim's back
    pthread_mutex_t lock;  // one passthru transaction at a time
};

static struct {
    int enabled;
    char mount[PATH_MAX];
    char device[PATH_MAX];
    size_t device_length;
} config;

static struct tracked fds[MAX_FDS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

// The next definition of each function (libc's), found on first use.
#define REAL(name) static __typeof__(&name) real_##name; \
    static __typeof__(&name) get_##name(void) { \
        if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name); \
        return real_##name; \
    }
REAL(open)
REAL(openat)
REAL(close)
REAL(fopen)
REAL(fopen64)
REAL(ioctl)
REAL(read)
REAL(write)
REAL(stat)
REAL(lstat)
REAL(fstat)
REAL(fstatat)
REAL(statx)

// glibc keeps these for programs built before 2.33, as versioned
// compatibility symbols that only dlvsym finds.
typedef int (*xstat_function)(int, const char *, struct stat *);
typedef int (*fxstat_function)(int, int, struct stat *);
typedef int (*fxstatat_function)(int, int, const char *, struct stat *, int);
#define COMPAT(name, type) static type real_##name; \
    static type get_##name(void) { \
        if (!real_##name) real_##name = (type)dlvsym(RTLD_NEXT, #name, "GLIBC_2.2.5"); \
        return real_##name; \
    }
COMPAT(__xstat, xstat_function)
COMPAT(__lxstat, xstat_function)
COMPAT(__fxstat, fxstat_function)
COMPAT(__fxstatat, fxstatat_function)

__attribute__((constructor)) static void shim_init(void) {
    const char *mount = getenv("NVMEFS_SHIM_MOUNT");
    const char *device = getenv("NVMEFS_SHIM_DEVICE");
    for (int i = 0; i < MAX_FDS; i++) {
        fds[i].passthru = -1;
        pthread_mutex_init(&fds[i].lock, NULL);
    }
    if (!mount || !*mount) return;
    if (!device || !*device) device = "/dev/nvme0";
    if (strlen(mount) >= sizeof config.mount - 32 || strlen(device) >= sizeof config.device) return;
    strcpy(config.mount, mount);
    strcpy(config.device, device);
    config.device_length = strlen(device);
    config.enabled = 1;
}

// --- paths and descriptors ------------------------------------------------

// CONTROLLER, NAMESPACE (with *nsid) or NONE.
static int classify(const char *path, uint32_t *nsid) {
    if (!config.enabled || !path || strncmp(path, config.device, config.device_length) != 0) return NONE;
    const char *rest = path + config.device_length;
    if (*rest == 0) return CONTROLLER;
    if (rest[0] != 'n' || rest[1] < '1' || rest[1] > '9') return NONE;
    uint64_t n = 0;
    for (const char *p = rest + 1; *p; p++) {
        if (*p < '0' || *p > '9') return NONE;
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > 0xFFFFFFFEu) return NONE;
    }
    *nsid = (uint32_t)n;
    return NAMESPACE;
}

// The file behind a device path.
static void backing(int kind, uint32_t nsid, char *out, size_t size) {
    if (kind == CONTROLLER) snprintf(out, size, "%s/passthru", config.mount);
    else snprintf(out, size, "%s/namespaces/%u/data", config.mount, nsid);
}

static void mount_file(const char *name, char *out, size_t size) { snprintf(out, size, "%s/%s", config.mount, name); }

// The tracked entry of `fd` (its lock not taken), or NULL.
static struct tracked *lookup(int fd) {
    if (!config.enabled || fd < 0 || fd >= MAX_FDS) return NULL;
    pthread_mutex_lock(&table_lock);
    int kind = fds[fd].kind;
    dev_t dev = fds[fd].dev;
    ino_t ino = fds[fd].ino;
    pthread_mutex_unlock(&table_lock);
    if (kind == NONE) return NULL;
    struct stat st;
    if (get_fstat()(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino) return NULL;
    return &fds[fd];
}

static void forget(int fd) {
    if (!config.enabled || fd < 0 || fd >= MAX_FDS) return;
    pthread_mutex_lock(&table_lock);
    int passthru = fds[fd].kind == NAMESPACE ? fds[fd].passthru : -1;
    fds[fd].kind = NONE;
    fds[fd].passthru = -1;
    pthread_mutex_unlock(&table_lock);
    if (passthru >= 0) get_close()(passthru);
}

// Opens the file behind a device path and tracks the descriptor.
static int open_device(int kind, uint32_t nsid, int flags) {
    char path[PATH_MAX];
    backing(kind, nsid, path, sizeof path);
    int keep = O_CLOEXEC | (kind == NAMESPACE ? O_ACCMODE | O_DIRECT | O_SYNC | O_DSYNC | O_NONBLOCK : 0);
    int fd = get_open()(path, (kind == CONTROLLER ? O_RDWR : 0) | (flags & keep));
    if (fd < 0) return -1;
    struct stat st;
    if (fd >= MAX_FDS || get_fstat()(fd, &st) != 0) {
        get_close()(fd);
        errno = EMFILE;
        return -1;
    }
    forget(fd);
    pthread_mutex_lock(&table_lock);
    fds[fd].kind = kind;
    fds[fd].nsid = nsid;
    fds[fd].passthru = kind == CONTROLLER ? fd : -1;
    fds[fd].dev = st.st_dev;
    fds[fd].ino = st.st_ino;
    pthread_mutex_unlock(&table_lock);
    return fd;
}

// --- open, close ----------------------------------------------------------

static mode_t mode_argument(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

// A device path, or libc's openat (open is openat at the working directory).
static int open_path(int dirfd, const char *path, int flags, mode_t mode) {
    uint32_t nsid = 0;
    int kind = classify(path, &nsid);
    return kind ? open_device(kind, nsid, flags) : get_openat()(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    return open_path(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    return open_path(dirfd, path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
// The fortified forms (_FORTIFY_SOURCE) take no mode.
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }

static FILE *fopen_device(int kind, uint32_t nsid, const char *mode) {
    int flags = strchr(mode, '+') ? O_RDWR : mode[0] == 'r' ? O_RDONLY : O_WRONLY;
    if (strchr(mode, 'e')) flags |= O_CLOEXEC;
    int fd = open_device(kind, nsid, flags);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, mode);
    if (!f) {
        int e = errno;
        forget(fd);
        get_close()(fd);
        errno = e;
    }
    return f;
}

FILE *fopen(const char *path, const char *mode) {
    uint32_t nsid = 0;
    int kind = classify(path, &nsid);
    return kind ? fopen_device(kind, nsid, mode) : get_fopen()(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
    uint32_t nsid = 0;
    int kind = classify(path, &nsid);
    return kind ? fopen_device(kind, nsid, mode) : get_fopen64()(path, mode);
}

int close(int fd) {
    forget(fd);
    return get_close()(fd);
}

// --- stat -----------------------------------------------------------------

// A path of AT_EMPTY_PATH (the descriptor itself).
static int empty(const char *path) { return !path || !*path; }

static void patch_stat(int kind, uint32_t nsid, struct stat *st) {
    if (kind == CONTROLLER) {
        st->st_mode = S_IFCHR | (st->st_mode & 07777);
        st->st_rdev = makedev(CHAR_MAJOR, 0);
        st->st_size = 0;
    } else {
        st->st_mode = S_IFBLK | (st->st_mode & 07777);
        st->st_rdev = makedev(BLOCK_MAJOR, nsid - 1);
    }
}

static void patch_statx(int kind, uint32_t nsid, struct statx *stx) {
    stx->stx_mode = (uint16_t)((kind == CONTROLLER ? S_IFCHR : S_IFBLK) | (stx->stx_mode & 07777));
    stx->stx_rdev_major = kind == CONTROLLER ? CHAR_MAJOR : BLOCK_MAJOR;
    stx->stx_rdev_minor = kind == CONTROLLER ? 0 : nsid - 1;
    if (kind == CONTROLLER) stx->stx_size = 0;
}

// stat of a device path: its backing file, patched. Returns -2 for "not a device path".
static int stat_path(const char *path, struct stat *st) {
    uint32_t nsid = 0;
    int kind = classify(path, &nsid);
    if (!kind) return -2;
    char file[PATH_MAX];
    backing(kind, nsid, file, sizeof file);
    int r = get_stat()(file, st);
    if (r == 0) patch_stat(kind, nsid, st);
    return r;
}

static int stat_fd(int fd, struct stat *st) {
    struct tracked *t = lookup(fd);
    if (!t) return -2;
    int r = get_fstat()(fd, st);
    if (r == 0) patch_stat(t->kind, t->nsid, st);
    return r;
}

int stat(const char *path, struct stat *st) {
    int r = stat_path(path, st);
    return r != -2 ? r : get_stat()(path, st);
}

int lstat(const char *path, struct stat *st) {
    int r = stat_path(path, st);
    return r != -2 ? r : get_lstat()(path, st);
}

int fstat(int fd, struct stat *st) {
    int r = stat_fd(fd, st);
    return r != -2 ? r : get_fstat()(fd, st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    int r = (flags & AT_EMPTY_PATH) && empty(path) ? stat_fd(dirfd, st) : stat_path(path, st);
    return r != -2 ? r : get_fstatat()(dirfd, path, st, flags);
}

// On x86_64 struct stat and struct stat64 are one layout.
int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }
int lstat64(const char *path, struct stat64 *st) { return lstat(path, (struct stat *)st); }
int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
    return fstatat(dirfd, path, (struct stat *)st, flags);
}

// Programs built against glibc before 2.33 call these.
int __xstat(int ver, const char *path, struct stat *st) {
    int r = stat_path(path, st);
    return r != -2 ? r : get___xstat()(ver, path, st);
}
int __lxstat(int ver, const char *path, struct stat *st) {
    int r = stat_path(path, st);
    return r != -2 ? r : get___lxstat()(ver, path, st);
}
int __fxstat(int ver, int fd, struct stat *st) {
    int r = stat_fd(fd, st);
    return r != -2 ? r : get___fxstat()(ver, fd, st);
}
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) {
    int r = (flags & AT_EMPTY_PATH) && empty(path) ? stat_fd(dirfd, st) : stat_path(path, st);
    return r != -2 ? r : get___fxstatat()(ver, dirfd, path, st, flags);
}
int __xstat64(int ver, const char *path, struct stat64 *st) { return __xstat(ver, path, (struct stat *)st); }
int __lxstat64(int ver, const char *path, struct stat64 *st) { return __lxstat(ver, path, (struct stat *)st); }
int __fxstat64(int ver, int fd, struct stat64 *st) { return __fxstat(ver, fd, (struct stat *)st); }
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags) {
    return __fxstatat(ver, dirfd, path, (struct stat *)st, flags);
}

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx) {
    uint32_t nsid = 0;
    int kind = NONE;
    struct tracked *t = NULL;
    if ((flags & AT_EMPTY_PATH) && empty(path)) {
        if ((t = lookup(dirfd))) { kind = t->kind; nsid = t->nsid; }
    } else {
        kind = classify(path, &nsid);
    }
    if (!kind) return get_statx()(dirfd, path, flags, mask, stx);
    int r;
    if (t) {
        r = get_statx()(dirfd, path, flags, mask, stx);
    } else {
        char file[PATH_MAX];
        backing(kind, nsid, file, sizeof file);
        r = get_statx()(AT_FDCWD, file, flags & ~AT_SYMLINK_NOFOLLOW, mask, stx);
    }
    if (r == 0) patch_statx(kind, nsid, stx);
    return r;
}

// --- passthru requests ----------------------------------------------------

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

struct command {
    uint8_t opcode, flags;
    uint32_t nsid, cdw[16];  // cdw[2], cdw[3], cdw[10..15] used
    void *data, *metadata;
    uint32_t data_length, metadata_length, timeout_ms;
    int io;
};

// The passthru descriptor of `t` (opened on first use).
static int passthru_fd(struct tracked *t) {
    if (t->passthru >= 0) return t->passthru;
    char path[PATH_MAX];
    mount_file("passthru", path, sizeof path);
    t->passthru = get_open()(path, O_RDWR | O_CLOEXEC);
    return t->passthru;
}

// One passthru transaction (docs/PASSTHRU.md): the CQE's status field (>= 0)
// and DW0/DW1, or -1 with errno.
static int submit(struct tracked *t, const struct command *c, uint32_t *dw0, uint32_t *dw1) {
    // The direction is the opcode's (NVMe 1.4 §4.2), as Linux maps the
    // buffer; passthru refuses data for an opcode that moves none.
    unsigned direction = 0;
    if (c->data_length || c->metadata_length) direction = (c->opcode & 3) ? (c->opcode & 3) : 2;
    if ((c->data_length && !c->data) || (c->metadata_length && !c->metadata)) {
        errno = EFAULT;
        return -1;
    }
    size_t out = direction & 1 ? (size_t)c->data_length + c->metadata_length : 0;
    size_t in = direction & 2 ? (size_t)c->data_length + c->metadata_length : 0;
    uint8_t *buffer = malloc(HEADER + (out > in ? out : in) + 16);
    if (!buffer) {
        errno = ENOMEM;
        return -1;
    }
    memset(buffer, 0, HEADER);
    buffer[0] = c->opcode;
    buffer[1] = c->flags & 0x3;  // FUSE; PSDT is the host's
    put32(buffer + 4, c->nsid);
    put32(buffer + 8, c->cdw[2]);
    put32(buffer + 12, c->cdw[3]);
    for (int i = 10; i <= 15; i++) put32(buffer + 40 + 4 * (i - 10), c->cdw[i]);
    put32(buffer + 64, c->data_length);
    put32(buffer + 68, c->metadata_length);
    put32(buffer + 72, c->timeout_ms);
    buffer[76] = c->io ? 1 : 0;
    buffer[77] = (uint8_t)direction;
    if (out) {
        memcpy(buffer + HEADER, c->data, c->data_length);
        memcpy(buffer + HEADER + c->data_length, c->metadata, c->metadata_length);
    }
    int result = -1;
    pthread_mutex_lock(&t->lock);
    int fd = passthru_fd(t);
    if (fd >= 0) {
        size_t total = HEADER + out, done = 0;
        while (done < total) {
            ssize_t n = get_write()(fd, buffer + done, total - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += (size_t)n;
        }
        if (done == total) {
            size_t want = 16 + in;
            done = 0;
            while (done < want) {
                ssize_t n = get_read()(fd, buffer + done, want - done);
                if (n < 0 && errno == EINTR) continue;
                if (n == 0) errno = EIO;  // a response shorter than the request's
                if (n <= 0) break;
                done += (size_t)n;
            }
            if (done == want) result = 0;
        } else if (done > 0) {
            errno = EIO;  // the rest of the request was refused
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (result == 0) {
        if (in) {
            memcpy(c->data, buffer + 16, c->data_length);
            memcpy(c->metadata, buffer + 16 + c->data_length, c->metadata_length);
        }
        *dw0 = get32(buffer);
        *dw1 = get32(buffer + 4);
        result = (int)((buffer[14] | buffer[15] << 8) >> 1);
    }
    int e = errno;
    free(buffer);
    errno = e;
    return result;
}

static int passthru_ioctl(struct tracked *t, void *arg, int io, int wide) {
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    // struct nvme_passthru_cmd64 is struct nvme_passthru_cmd with a 64-bit result.
    struct nvme_passthru_cmd *p = arg;
    struct command c = {
        .opcode = p->opcode, .flags = p->flags, .nsid = p->nsid,
        .data = (void *)(uintptr_t)p->addr, .metadata = (void *)(uintptr_t)p->metadata,
        .data_length = p->data_len, .metadata_length = p->metadata_len, .timeout_ms = p->timeout_ms, .io = io,
    };
    c.cdw[2] = p->cdw2; c.cdw[3] = p->cdw3;
    c.cdw[10] = p->cdw10; c.cdw[11] = p->cdw11; c.cdw[12] = p->cdw12;
    c.cdw[13] = p->cdw13; c.cdw[14] = p->cdw14; c.cdw[15] = p->cdw15;
    uint32_t dw0 = 0, dw1 = 0;
    int status = submit(t, &c, &dw0, &dw1);
    if (status < 0) return -1;
    if (wide) ((struct nvme_passthru_cmd64 *)arg)->result = (uint64_t)dw1 << 32 | dw0;
    else p->result = dw0;
    return status;
}

// Identify Namespace facts of `nsid` (from namespaces/N/identify): LBA data
// size as a power of two, metadata bytes per LBA, extended LBAs.
static int geometry(uint32_t nsid, unsigned *lbads, unsigned *ms, int *extended) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/namespaces/%u/identify", config.mount, nsid);
    int fd = get_open()(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    uint8_t id[4096];
    size_t done = 0;
    while (done < sizeof id) {
        ssize_t n = get_read()(fd, id + done, sizeof id - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    get_close()(fd);
    if (done != sizeof id) {
        errno = EIO;
        return -1;
    }
    unsigned flbas = id[26];  // NVMe 1.4 §5.15.2.1: bits 3:0 the format, bit 4 extended
    const uint8_t *lbaf = id + 128 + 4 * (flbas & 0xF);
    *ms = lbaf[0] | lbaf[1] << 8;
    *lbads = lbaf[2];
    *extended = (flbas >> 4) & 1;
    return 0;
}

// NVME_IOCTL_SUBMIT_IO: Read, Write or Compare of nblocks + 1 blocks, as
// Linux's nvme_submit_io builds it.
static int submit_io(struct tracked *t, struct nvme_user_io *io) {
    if (!io) {
        errno = EFAULT;
        return -1;
    }
    if (io->opcode != 0x01 && io->opcode != 0x02 && io->opcode != 0x05) {
        errno = EINVAL;
        return -1;
    }
    unsigned lbads, ms;
    int extended;
    if (geometry(t->nsid, &lbads, &ms, &extended) != 0) return -1;
    uint64_t blocks = (uint64_t)io->nblocks + 1;
    uint64_t length = blocks << lbads, metadata_length = blocks * ms;
    if (extended) {
        length += metadata_length;
        metadata_length = 0;
    } else if (metadata_length && (!io->metadata || (io->metadata & 3))) {
        errno = EINVAL;
        return -1;
    }
    if (length > UINT32_MAX || metadata_length > UINT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    struct command c = {
        .opcode = io->opcode, .flags = io->flags, .nsid = t->nsid,
        .data = (void *)(uintptr_t)io->addr, .metadata = (void *)(uintptr_t)io->metadata,
        .data_length = (uint32_t)length, .metadata_length = (uint32_t)metadata_length, .io = 1,
    };
    c.cdw[10] = (uint32_t)io->slba;
    c.cdw[11] = (uint32_t)(io->slba >> 32);
    c.cdw[12] = io->nblocks | (uint32_t)io->control << 16;
    c.cdw[13] = io->dsmgmt;
    c.cdw[14] = io->reftag;
    c.cdw[15] = io->apptag | (uint32_t)io->appmask << 16;
    uint32_t dw0, dw1;
    return submit(t, &c, &dw0, &dw1);
}

// Reads a register file of the mount (text, 0x hex); -1 on failure.
static int read_register(const char *name, uint64_t *value) {
    char path[PATH_MAX], text[64];
    snprintf(path, sizeof path, "%s/regs/%s", config.mount, name);
    int fd = get_open()(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = get_read()(fd, text, sizeof text - 1);
    get_close()(fd);
    if (n <= 0) {
        errno = EIO;
        return -1;
    }
    text[n] = 0;
    *value = strtoull(text, NULL, 16);
    return 0;
}

static int write_file(const char *name, const char *text) {
    char path[PATH_MAX];
    mount_file(name, path, sizeof path);
    int fd = get_open()(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = get_write()(fd, text, strlen(text));
    int e = errno;
    get_close()(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

// After a reset: wait (CAP.TO, at most a minute) until the built-in host has
// enabled the controller again (CSTS.RDY), as Linux's reset ioctl returns
// once the reset work has run.
static int wait_ready(void) {
    uint64_t cap = 0, csts = 0;
    if (read_register("cap", &cap) != 0) return -1;
    long ms = (long)((cap >> 24) & 0xFF) * 500 + 5000;
    if (ms > 60000) ms = 60000;
    for (long waited = 0; waited <= ms; waited += 10) {
        if (read_register("csts", &csts) != 0) return -1;
        if (csts & 1) return 0;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    errno = ETIMEDOUT;
    return -1;
}

static int controller_ioctl(unsigned long request) {
    uint64_t value = 0;
    char text[32];
    switch (request) {
    case NVME_IOCTL_RESET:  // CC.EN 1 -> 0 (NVMe 1.4 §3.1.5)
        if (read_register("cc", &value) != 0) return -1;
        snprintf(text, sizeof text, "0x%llx", (unsigned long long)(value & ~1ULL));
        if (write_file("regs/cc", text) != 0) return -1;
        return wait_ready();
    case NVME_IOCTL_SUBSYS_RESET:  // NSSR "NVMe" (§3.1.7), only with CAP.NSSRS
        if (read_register("cap", &value) != 0) return -1;
        if (!(value >> 36 & 1)) {
            errno = ENOTTY;
            return -1;
        }
        if (write_file("regs/nssr", "0x4E564D65") != 0) return -1;
        return wait_ready();
    default:  // NVME_IOCTL_RESCAN
        return write_file("rescan", "1");
    }
}

static int namespace_ioctl(struct tracked *t, int fd, unsigned long request, void *arg) {
    struct stat st;
    unsigned lbads, ms;
    int extended;
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    if (request == BLKGETSIZE64) {
        if (get_fstat()(fd, &st) != 0) return -1;
        *(uint64_t *)arg = (uint64_t)st.st_size;
        return 0;
    }
    if (geometry(t->nsid, &lbads, &ms, &extended) != 0) return -1;
    if (request == BLKSSZGET) *(int *)arg = 1 << lbads;
    else *(unsigned int *)arg = 1u << lbads;  // BLKPBSZGET
    return 0;
}

int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct tracked *t = lookup(fd);
    if (!t) return get_ioctl()(fd, request, arg);
    int controller = t->kind == CONTROLLER;
    switch (request) {
    case NVME_IOCTL_ID:
        if (controller) break;
        return (int)t->nsid;
    case NVME_IOCTL_ADMIN_CMD: return passthru_ioctl(t, arg, 0, 0);
    case NVME_IOCTL_ADMIN64_CMD: return passthru_ioctl(t, arg, 0, 1);
    case NVME_IOCTL_IO_CMD: return passthru_ioctl(t, arg, 1, 0);
    case NVME_IOCTL_IO64_CMD: return passthru_ioctl(t, arg, 1, 1);
    case NVME_IOCTL_SUBMIT_IO:
        if (controller) break;
        return submit_io(t, arg);
    case NVME_IOCTL_RESET:
    case NVME_IOCTL_SUBSYS_RESET:
    case NVME_IOCTL_RESCAN:
        if (!controller) break;
        return controller_ioctl(request);
    case BLKGETSIZE64:
    case BLKSSZGET:
    case BLKPBSZGET:
        if (controller) break;
        return namespace_ioctl(t, fd, request, arg);
    default:
        return get_ioctl()(fd, request, arg);
    }
    errno = ENOTTY;  // as Linux: not an ioctl of this kind of device
    return -1;
}

/*
 * passthrough_ll: the benchmark baseline for nvmefs.
 *
 * A minimal libfuse3 low-level file system that exposes ONE image file as the
 * regular file `data` in the root of the mount.  read/write/fsync go straight
 * to pread/pwrite/fdatasync on the image; the file is opened with direct_io
 * (as nvmefs serves namespaces/N/data), and the session runs libfuse's
 * multithreaded loop.  Like nvmefs's data files it has a fixed size: O_TRUNC
 * is ignored, truncation to another size fails with EINVAL and writes past
 * the end fail with ENOSPC.
 *
 * Build: gcc -O2 -Wall -o passthrough_ll passthrough_ll.c \
 *            $(pkg-config --cflags --libs fuse3)
 * Usage: passthrough_ll IMAGE MOUNTPOINT [-f]
 *        (-f: stay in the foreground; unmount with `fusermount3 -u MOUNTPOINT`
 *        or `umount MOUNTPOINT`, or send SIGTERM/SIGINT)
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_INO FUSE_ROOT_ID
#define DATA_INO 2
#define DATA_NAME "data"

struct state {
	int fd;          /* the image, O_RDWR */
	off_t size;      /* fixed size of `data` */
};

static struct state *st(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(const struct state *s, fuse_ino_t ino, struct stat *a)
{
	memset(a, 0, sizeof(*a));
	a->st_ino = ino;
	a->st_uid = getuid();
	a->st_gid = getgid();
	if (ino == ROOT_INO) {
		a->st_mode = S_IFDIR | 0755;
		a->st_nlink = 2;
	} else {
		a->st_mode = S_IFREG | 0644;
		a->st_nlink = 1;
		a->st_size = s->size;
		a->st_blksize = 4096;
		a->st_blocks = (s->size + 511) / 512;
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Let open() carry O_TRUNC so it can be ignored, as on a block device. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != ROOT_INO || strcmp(name, DATA_NAME) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = DATA_INO;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fill_attr(st(req), DATA_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat a;

	(void)fi;
	if (ino != ROOT_INO && ino != DATA_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(st(req), ino, &a);
	fuse_reply_attr(req, &a, 1.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	/* The size is fixed; mode, owner and times are accepted and ignored. */
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    (ino != DATA_INO || attr->st_size != st(req)->size)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	op_getattr(req, ino, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == ROOT_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino != DATA_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct state *s = st(req);
	char *buf;
	ssize_t n;

	(void)ino;
	(void)fi;
	if (off >= s->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((off_t)size > s->size - off)
		size = (size_t)(s->size - off);
	buf = malloc(size);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pread(s->fd, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct state *s = st(req);
	ssize_t n;

	(void)ino;
	(void)fi;
	if (off >= s->size && size > 0) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	if ((off_t)size > s->size - off)
		size = (size_t)(s->size - off);
	n = pwrite(s->fd, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, fdatasync(st(req)->fd) < 0 ? errno : 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct {
		const char *name;
		fuse_ino_t ino;
		mode_t mode;
	} ents[] = {
		{ ".", ROOT_INO, S_IFDIR },
		{ "..", ROOT_INO, S_IFDIR },
		{ DATA_NAME, DATA_INO, S_IFREG },
	};
	char buf[512];
	size_t used = 0;

	(void)ino;
	(void)fi;
	if (size > sizeof(buf))
		size = sizeof(buf);
	for (off_t i = off; i < (off_t)(sizeof(ents) / sizeof(ents[0])); i++) {
		struct stat a;
		size_t need;

		memset(&a, 0, sizeof(a));
		a.st_ino = ents[i].ino;
		a.st_mode = ents[i].mode;
		need = fuse_add_direntry(req, buf + used, size - used,
					 ents[i].name, &a, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
};

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s IMAGE MOUNTPOINT [-f]\n", prog);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config loop = { .clone_fd = 0, .max_idle_threads = 10 };
	struct fuse_session *se;
	struct state s;
	struct stat sb;
	int foreground = 0;
	int ret = 1;

	if (argc == 4 && strcmp(argv[3], "-f") == 0)
		foreground = 1;
	else if (argc != 3) {
		usage(argv[0]);
		return 2;
	}

	s.fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (s.fd < 0 || fstat(s.fd, &sb) < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
		return 2;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "%s: %s: not a regular file\n", argv[0], argv[1]);
		return 2;
	}
	s.size = sb.st_size;

	if (fuse_opt_add_arg(&args, argv[0]) != 0 ||
	    fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args, "fsname=passthrough_ll,subtype=passthrough_ll") != 0)
		goto out_args;

	se = fuse_session_new(&args, &ops, sizeof(ops), &s);
	if (se == NULL)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, argv[2]) != 0)
		goto out_signals;
	if (fuse_daemonize(foreground) != 0)
		goto out_unmount;

	ret = fuse_session_loop_mt(se, &loop) != 0;

out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	fuse_opt_free_args(&args);
	fdatasync(s.fd);
	close(s.fd);
	return ret;
}

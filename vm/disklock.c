/* A VM disk's lock on its datastore: a lock file with the owner, renewed as a heartbeat. */
#include "disklock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_log.h>

static RTE_LOG_REGISTER(disklock_logtype, ferry.disklock, INFO);
#define DISKLOCK_LOG(level, fmt, ...)                                                              \
	rte_log(RTE_LOG_##level, disklock_logtype, "disklock: " fmt "\n", ##__VA_ARGS__)

/* The lock file's one line: "owner=<name> pid=<pid> token=<hex>", and " handoff=<hex>" while
 * it is offered. */
#define RECORD_MAX 160

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int lock_path(char *out, size_t size, const char *disk_path)
{
	int n = snprintf(out, size, "%s%s", disk_path, DISKLOCK_SUFFIX);

	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Reads a lock file: who holds it and how old its heartbeat is. */
static int read_holder(const char *path, struct disklock_holder *holder)
{
	char record[RECORD_MAX + 1];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, record, RECORD_MAX);
	int ret = n < 0 || fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (ret < 0)
		return ret;
	record[n] = '\0';
	memset(holder, 0, sizeof(*holder));
	/* A record that does not parse (a holder that died mid-write) still holds: its age says
	 * when it may go. */
	if (sscanf(record, "owner=%63s pid=%ld token=%" SCNx64 " handoff=%" SCNx64, holder->owner,
	           &holder->pid, &holder->token, &holder->handoff) < 3)
		snprintf(holder->owner, sizeof(holder->owner), "?");
	uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	uint64_t now = wall_ns();
	holder->heartbeat_age_ns = now > mtime ? now - mtime : 0;
	return 0;
}

/* Writes this holder's record (with its offer, if any) to a new file at path, or -EEXIST. */
static int write_record(const struct disklock *lock, const char *path)
{
	char record[RECORD_MAX];
	int len = snprintf(record, sizeof(record), "owner=%s pid=%ld token=%016" PRIx64,
	                   lock->owner, (long)getpid(), lock->token);

	if (lock->handoff != 0)
		len += snprintf(record + len, sizeof(record) - (size_t)len, " handoff=%016" PRIx64,
		                lock->handoff);
	len += snprintf(record + len, sizeof(record) - (size_t)len, "\n");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int ret = write(fd, record, (size_t)len) == len && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	if (ret < 0)
		unlink(path);
	return ret;
}

/* Creates the lock file with this holder's record, or -EEXIST. */
static int create_lock(const struct disklock *lock)
{
	return write_record(lock, lock->path);
}

/* Replaces the lock file with this holder's record in one step. */
static int replace_lock(const struct disklock *lock)
{
	char next[PATH_MAX + 32];
	int ret;

	snprintf(next, sizeof(next), "%s.%016" PRIx64, lock->path, lock->token);
	unlink(next); /* a leftover of a holder that died between the two steps */
	if ((ret = write_record(lock, next)) < 0)
		return ret;
	if (rename(next, lock->path) < 0) {
		ret = -errno;
		unlink(next);
		DISKLOCK_LOG(ERR, "%s: cannot replace: %s", lock->path, strerror(-ret));
	}
	return ret;
}

/* A lock for owner on the disk at disk_path, not yet held, with a token of its own. */
static int lock_init(struct disklock *lock, const char *disk_path, const char *owner,
                     uint64_t lease_ns)
{
	int ret;

	memset(lock, 0, sizeof(*lock));
	if ((ret = lock_path(lock->path, sizeof(lock->path), disk_path)) < 0)
		return ret;
	if (strlen(owner) == 0 || strlen(owner) >= DISKLOCK_OWNER_MAX || strchr(owner, ' ') != NULL)
		return -EINVAL;
	snprintf(lock->owner, sizeof(lock->owner), "%s", owner);
	lock->lease_ns = lease_ns;
	if (getrandom(&lock->token, sizeof(lock->token), 0) != sizeof(lock->token))
		return -EIO;
	return 0;
}

int disklock_acquire(struct disklock *lock, const char *disk_path, const char *owner,
                     uint64_t lease_ns, struct disklock_holder *holder)
{
	struct disklock_holder seen;
	int ret;

	if ((ret = lock_init(lock, disk_path, owner, lease_ns)) < 0)
		return ret;
	/* Two tries: the second after breaking a stale lock, which another host may have broken
	 * and taken first (then it is theirs, fresh). */
	for (int attempt = 0; attempt < 2; attempt++) {
		ret = create_lock(lock);
		if (ret == 0) {
			lock->held = true;
			return 0;
		}
		if (ret != -EEXIST)
			return ret;
		ret = read_holder(lock->path, &seen);
		if (ret == -ENOENT)
			continue; /* released meanwhile */
		if (ret < 0)
			return ret;
		if (seen.heartbeat_age_ns < lease_ns) {
			if (holder != NULL)
				*holder = seen;
			return -EBUSY;
		}
		/* Stale: moved aside in one step, so that of two hosts breaking it at once only
		 * one moves it; the other finds it gone or fresh. */
		char aside[PATH_MAX + 32];
		snprintf(aside, sizeof(aside), "%s.broken.%ld", lock->path, (long)getpid());
		if (rename(lock->path, aside) == 0) {
			DISKLOCK_LOG(NOTICE, "%s: broke %s's lock (no heartbeat for %.1f s)",
			             lock->path, seen.owner, (double)seen.heartbeat_age_ns / 1e9);
			unlink(aside);
		} else if (errno != ENOENT) {
			ret = -errno;
			DISKLOCK_LOG(ERR, "%s: cannot break %s's stale lock: %s", lock->path,
			             seen.owner, strerror(-ret));
			return ret;
		}
	}
	ret = read_holder(lock->path, &seen);
	if (ret == 0 && holder != NULL)
		*holder = seen;
	return ret == 0 ? -EBUSY : ret;
}

/* Whether the lock file still carries this holder's token. */
static bool still_ours(const struct disklock *lock)
{
	struct disklock_holder seen;

	return read_holder(lock->path, &seen) == 0 && seen.token == lock->token &&
	       strcmp(seen.owner, lock->owner) == 0;
}

int disklock_heartbeat(struct disklock *lock)
{
	if (!lock->held)
		return -ESTALE;
	if (!still_ours(lock)) {
		lock->held = false;
		if (lock->handoff != 0)
			DISKLOCK_LOG(INFO, "%s: handed over by %s as offered", lock->path,
			             lock->owner);
		else
			DISKLOCK_LOG(ERR, "%s: the lock is no longer %s's: another host broke it",
			             lock->path, lock->owner);
		return -ESTALE;
	}
	/* The modification time is the heartbeat. */
	return utimensat(AT_FDCWD, lock->path, NULL, 0) == 0 ? 0 : -errno;
}

int disklock_offer(struct disklock *lock, uint64_t *handoff)
{
	uint64_t token;

	if (!lock->held || !still_ours(lock))
		return -ESTALE;
	do {
		if (getrandom(&token, sizeof(token), 0) != sizeof(token))
			return -EIO;
	} while (token == 0);
	lock->handoff = token;
	int ret = replace_lock(lock);
	if (ret < 0) {
		lock->handoff = 0;
		return ret;
	}
	*handoff = token;
	return 0;
}

int disklock_withdraw(struct disklock *lock)
{
	if (lock->handoff == 0)
		return lock->held ? 0 : -ESTALE;
	if (!lock->held || !still_ours(lock)) {
		lock->held = false;
		return -ESTALE;
	}
	uint64_t offered = lock->handoff;
	lock->handoff = 0;
	int ret = replace_lock(lock);
	if (ret < 0)
		lock->handoff = offered;
	return ret;
}

int disklock_take(struct disklock *lock, const char *disk_path, const char *owner,
                  uint64_t lease_ns, uint64_t handoff, struct disklock_holder *holder)
{
	struct disklock_holder seen;
	int ret;

	if ((ret = lock_init(lock, disk_path, owner, lease_ns)) < 0 ||
	    (ret = read_holder(lock->path, &seen)) < 0)
		return ret;
	/* Only the offer the source made for this session: a stale or withdrawn lock is not a
	 * handoff, whatever its age. */
	if (handoff == 0 || seen.handoff != handoff) {
		if (holder != NULL)
			*holder = seen;
		return -EBUSY;
	}
	if ((ret = replace_lock(lock)) < 0)
		return ret;
	lock->held = true;
	return 0;
}

void disklock_release(struct disklock *lock)
{
	if (lock->held && still_ours(lock))
		unlink(lock->path);
	lock->held = false;
}

int disklock_holder(const char *disk_path, struct disklock_holder *holder)
{
	char path[PATH_MAX];
	int ret = lock_path(path, sizeof(path), disk_path);

	return ret < 0 ? ret : read_holder(path, holder);
}

/* A VM disk's lock on its datastore, as VMFS keeps one: a lock file beside the disk names its
 * owner, and the owner's heartbeat (the file's modification time, renewed every second or so)
 * keeps it; a lock whose heartbeat stopped for its lease may be broken by another host. */
#ifndef FERRY_VM_DISKLOCK_H
#define FERRY_VM_DISKLOCK_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define DISKLOCK_OWNER_MAX 64
#define DISKLOCK_SUFFIX    ".lck"

/* A lock this host holds (or tries to). */
struct disklock {
	char path[PATH_MAX]; /* the lock file: the disk's path and DISKLOCK_SUFFIX */
	char owner[DISKLOCK_OWNER_MAX];
	uint64_t
	        token; /* this holder's, unique: another process of the same name is another owner */
	uint64_t lease_ns;
	uint64_t handoff; /* offered to another host with this token (0: not offered) */
	bool held;
};

/* Who holds a lock, as its file says. */
struct disklock_holder {
	char owner[DISKLOCK_OWNER_MAX];
	long pid;
	uint64_t token;
	uint64_t handoff;          /* the token a handoff offers it under, 0 if none */
	uint64_t heartbeat_age_ns; /* since the holder last renewed it, by this host's clock */
};

/* Takes the lock of the disk at disk_path for owner (a host's name). A lock another holder
 * renewed within lease_ns is theirs: -EBUSY, with who in holder (may be NULL). A lock older than
 * that is broken and taken (the hosts' clocks must agree within a fraction of the lease, as NFS
 * needs). Returns 0, -EBUSY, or another negative errno. */
int disklock_acquire(struct disklock *lock, const char *disk_path, const char *owner,
                     uint64_t lease_ns, struct disklock_holder *holder);

/* Renews the heartbeat. -ESTALE when the lock is no longer this holder's (it stopped renewing
 * for a lease and another host broke it): the disk must not be written any more. */
int disklock_heartbeat(struct disklock *lock);

/* Lets the lock go (removes its file if it is still this holder's). */
void disklock_release(struct disklock *lock);

/* A migration's handoff, in three steps: the holder offers the lock under a one-time token
 * (written into the lock file, so whoever reads it sees the offer); the destination, told the
 * token over the authenticated channel, takes it; a holder whose migration failed withdraws the
 * offer, unless it was taken. The file is replaced whole each time (rename), never half
 * written, and nothing else ever changes a lock that is heartbeating. */

/* Offers the lock under a fresh token (in *handoff). -ESTALE if it is not this holder's. */
int disklock_offer(struct disklock *lock, uint64_t *handoff);

/* Takes back an offer: the lock is this holder's alone again. -ESTALE if another took it. */
int disklock_withdraw(struct disklock *lock);

/* Takes the lock of the disk at disk_path for owner if its file carries the offer handoff:
 * -EBUSY otherwise, with who in holder (may be NULL). Returns 0 or a negative errno. */
int disklock_take(struct disklock *lock, const char *disk_path, const char *owner,
                  uint64_t lease_ns, uint64_t handoff, struct disklock_holder *holder);

/* Who holds the disk at disk_path: 0, -ENOENT when no one, or another negative errno. */
int disklock_holder(const char *disk_path, struct disklock_holder *holder);

#endif

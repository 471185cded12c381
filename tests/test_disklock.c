/* Unit tests of a VM disk's lock on its datastore: two hosts in one process (two locks), the
 * second refused with the owner's name, a heartbeat that keeps the lock, a stale lock broken,
 * and the host that lost it told so. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vm/disklock.h"

#define SECOND 1000000000ull

static char dir[] = "/tmp/ferry-disklock-XXXXXX";
static char disk[PATH_MAX];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(disk, sizeof(disk), "%s/web01-flat.vmdk", dir);
}

static void teardown(void)
{
	char lock[PATH_MAX + 8];

	snprintf(lock, sizeof(lock), "%s%s", disk, DISKLOCK_SUFFIX);
	unlink(lock);
	rmdir(dir);
}

/* Ages the lock file's heartbeat by some seconds, as a holder that stopped renewing it. */
static void age_lock(unsigned int seconds)
{
	char lock[PATH_MAX + 8];
	struct timespec times[2];

	snprintf(lock, sizeof(lock), "%s%s", disk, DISKLOCK_SUFFIX);
	clock_gettime(CLOCK_REALTIME, &times[0]);
	times[0].tv_sec -= seconds;
	times[1] = times[0];
	cr_assert_eq(utimensat(AT_FDCWD, lock, times, 0), 0);
}

TestSuite(disklock, .init = setup, .fini = teardown);

Test(disklock, second_host_refused_with_the_owners_name)
{
	struct disklock a, b;
	struct disklock_holder holder;

	cr_assert_eq(disklock_acquire(&a, disk, "host-a", 5 * SECOND, NULL), 0);
	cr_assert_eq(disklock_acquire(&b, disk, "host-b", 5 * SECOND, &holder), -EBUSY);
	cr_assert_str_eq(holder.owner, "host-a");
	cr_assert_eq(holder.pid, (long)getpid());
	cr_assert_lt(holder.heartbeat_age_ns, 5 * SECOND);
	cr_assert_eq(disklock_holder(disk, &holder), 0);
	cr_assert_str_eq(holder.owner, "host-a");
	disklock_release(&a);
	cr_assert_eq(disklock_holder(disk, &holder), -ENOENT);
	cr_assert_eq(disklock_acquire(&b, disk, "host-b", 5 * SECOND, NULL), 0);
	disklock_release(&b);
}

Test(disklock, same_name_another_holder_is_refused_too)
{
	struct disklock a, again;

	/* A restarted ferryd of the same name is another holder (another token). */
	cr_assert_eq(disklock_acquire(&a, disk, "host-a", 5 * SECOND, NULL), 0);
	cr_assert_eq(disklock_acquire(&again, disk, "host-a", 5 * SECOND, NULL), -EBUSY);
	disklock_release(&a);
}

Test(disklock, heartbeat_keeps_it_a_stale_one_is_broken_and_its_holder_told)
{
	struct disklock a, b;
	struct disklock_holder holder;

	cr_assert_eq(disklock_acquire(&a, disk, "host-a", 3 * SECOND, NULL), 0);
	age_lock(2);
	cr_assert_eq(disklock_heartbeat(&a), 0, "the holder renews its heartbeat");
	cr_assert_eq(disklock_acquire(&b, disk, "host-b", 3 * SECOND, &holder), -EBUSY,
	             "renewed, it is still host-a's");
	/* host-a stops renewing (killed): past the lease, host-b breaks the lock and takes it. */
	age_lock(4);
	cr_assert_eq(disklock_acquire(&b, disk, "host-b", 3 * SECOND, NULL), 0);
	cr_assert_eq(disklock_holder(disk, &holder), 0);
	cr_assert_str_eq(holder.owner, "host-b");
	cr_assert_eq(disklock_heartbeat(&a), -ESTALE, "host-a learns it lost the lock");
	disklock_release(&a);
	cr_assert_eq(disklock_holder(disk, &holder), 0, "host-a's release leaves host-b's lock");
	cr_assert_str_eq(holder.owner, "host-b");
	cr_assert_eq(disklock_heartbeat(&b), 0);
	disklock_release(&b);
}

Test(disklock, a_record_that_does_not_parse_still_holds_until_its_lease)
{
	struct disklock b;
	struct disklock_holder holder;
	char lock[PATH_MAX + 8];

	snprintf(lock, sizeof(lock), "%s%s", disk, DISKLOCK_SUFFIX);
	FILE *f = fopen(lock, "w");
	cr_assert_not_null(f);
	fputs("\x01garbage", f);
	fclose(f);
	cr_assert_eq(disklock_acquire(&b, disk, "host-b", 3 * SECOND, &holder), -EBUSY);
	cr_assert_str_eq(holder.owner, "?");
	age_lock(10);
	cr_assert_eq(disklock_acquire(&b, disk, "host-b", 3 * SECOND, NULL), 0);
	disklock_release(&b);
}

Test(disklock, bad_owner_names_refused)
{
	struct disklock a;

	cr_assert_eq(disklock_acquire(&a, disk, "", SECOND, NULL), -EINVAL);
	cr_assert_eq(disklock_acquire(&a, disk, "two words", SECOND, NULL), -EINVAL);
}

/* A migration's handoff: only the offered token takes the lock, a withdrawn or stale lock is no
 * handoff, and a holder whose lock was taken learns it when it tries to withdraw. */
Test(disklock, a_handoff_goes_only_to_the_offered_token)
{
	struct disklock a, b;
	struct disklock_holder holder;
	uint64_t handoff;

	cr_assert_eq(disklock_acquire(&a, disk, "host-a", 5 * SECOND, NULL), 0);
	cr_assert_eq(disklock_take(&b, disk, "host-b", 5 * SECOND, 1, &holder), -EBUSY,
	             "no offer, no take");
	cr_assert_eq(disklock_offer(&a, &handoff), 0);
	cr_assert_neq(handoff, 0);
	cr_assert_eq(disklock_holder(disk, &holder), 0);
	cr_assert_eq(holder.handoff, handoff, "the offer is in the file");
	cr_assert_str_eq(holder.owner, "host-a", "and it is still host-a's");
	cr_assert_eq(disklock_heartbeat(&a), 0, "an offered lock keeps its heartbeat");
	cr_assert_eq(disklock_take(&b, disk, "host-b", 5 * SECOND, handoff + 1, &holder), -EBUSY,
	             "another token takes nothing");
	cr_assert_eq(disklock_take(&b, disk, "host-b", 5 * SECOND, 0, &holder), -EBUSY);
	/* Withdrawn: the same token takes nothing any more, even from a stale lock. */
	cr_assert_eq(disklock_withdraw(&a), 0);
	age_lock(60);
	cr_assert_eq(disklock_take(&b, disk, "host-b", 5 * SECOND, handoff, &holder), -EBUSY);
	cr_assert_str_eq(holder.owner, "host-a");
	cr_assert_eq(holder.handoff, 0);

	cr_assert_eq(disklock_heartbeat(&a), 0);
	cr_assert_eq(disklock_offer(&a, &handoff), 0);
	cr_assert_eq(disklock_take(&b, disk, "host-b", 5 * SECOND, handoff, NULL), 0);
	cr_assert_eq(disklock_holder(disk, &holder), 0);
	cr_assert_str_eq(holder.owner, "host-b");
	cr_assert_eq(holder.handoff, 0, "taken, the offer is spent");
	cr_assert_eq(disklock_withdraw(&a), -ESTALE, "a's migration learns the lock went");
	cr_assert_eq(disklock_heartbeat(&a), -ESTALE);
	cr_assert_eq(disklock_heartbeat(&b), 0);
	disklock_release(&a); /* not a's: the file stays */
	cr_assert_eq(disklock_holder(disk, &holder), 0);
	disklock_release(&b);
	cr_assert_eq(disklock_holder(disk, &holder), -ENOENT);
}

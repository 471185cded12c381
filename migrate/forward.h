/* Frames for a VM around its switchover: the source holds what reaches it for the VM from the
 * pause until the physical network has relearned the MAC, and forwards it over the session's
 * channel; the destination gives the VM those frames, in the order the source held them, ahead
 * of any that reach it directly meanwhile (held too), and none twice. Private to migrate/. */
#ifndef FERRY_MIGRATE_FORWARD_H
#define FERRY_MIGRATE_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

struct migration;
struct migration_engine;
struct rte_ether_addr;
struct proto_message;
struct vm;

/* Source: makes the port the VM's MAC is pointed at from the pause (its vswitch, its port group),
 * so nothing is set up while the VM is paused. Without it (forwarding off, a pre-flight check, or
 * no room on the vswitch: logged) frames are dropped at the pause as QEMU drops them. */
void forward_source_begin(struct migration *m);

/* Source, at the pause: the VM's MAC points at the hold, and what waits for the paused VM joins
 * the held frames. */
void forward_source_pause(struct migration *m, uint64_t now);

/* Source: the number below which every frame held so far is numbered (the STATE carries it). */
uint32_t forward_source_numbered(const struct migration *m);

/* Source: the VM runs on the destination: frames sent are kept no more, and the settle begins. */
void forward_source_commit(struct migration *m, uint64_t now);

/* Source: the migration failed and the VM runs here again (resumed first): it gets every frame
 * held for it, in order, and its MAC is its own port's again. */
void forward_source_return(struct migration *m);

/* Source: the VM leaves this host (it runs there, or is lost): the frames in its port's ring are
 * taken before the port goes. */
void forward_source_departing(struct migration *m);

/* Source: a VM with this MAC arrives on (or is made on) this host while a finished migration
 * still holds the MAC here: the hold ends at once, so the MAC is the new VM's port's. */
void forward_unpin_mac(struct migration_engine *engine, const struct rte_ether_addr *mac);

/* Source: sends held frames, ends the hold once the network has settled; true while the hold or
 * its frames still need the session (a completed session is released only once this is false). */
bool forward_source_poll(struct migration *m, uint64_t now);

/* Source: true while forwarding still needs the session's channel and keys. */
bool forward_source_busy(const struct migration *m);

/* Destination: checks a FRAME before it is acknowledged (the number inside the window, the part
 * consistent with what came before); counts the drop and returns false if not. */
bool forward_frame_sane(struct migration *m, const struct proto_message *msg);

/* Destination: takes an authenticated, new FRAME (its data opened into msg->data). */
void forward_on_frame(struct migration *m, const struct proto_message *msg, uint64_t now);

/* Destination: the VM resumed here; frames numbered below numbered were held before it did. */
void forward_destination_resumed(struct migration *m, struct vm *vm, uint32_t numbered,
                                 uint64_t now);

/* Destination: gives the VM what is due, and ends the direct hold once the source's frames are
 * in (or were waited for long enough). */
void forward_destination_poll(struct migration *m, uint64_t now);

/* Either side: the VM is going away (the host removes it); nothing is given to it any more. */
void forward_forget_vm(struct migration *m, const struct vm *vm);

/* Either side: frees every frame and the hold (what was still held is counted as dropped). */
void forward_release(struct migration *m);

#endif

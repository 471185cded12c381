/* An emulated VM on a host: the VM model, its vnic on a port group (an in-process interface)
 * and its network services: ARP and ICMP echo, UDP echo, a UDP counter whose value lives in the
 * VM's memory, and a TCP whose connections (echo and a line counter) live there too, so they
 * move with the VM. */
#ifndef FERRY_VM_VM_H
#define FERRY_VM_VM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/announce.h"
#include "vm/disklock.h"
#include "vm/machine.h"
#include "vm/tcp.h"
#include "vm/vm_synthetic.h"
#include "vswitch/iface.h"

#define VM_COUNTER_PORT 7777 /* UDP: each datagram adds one and gets the new count back */
#define VM_ECHO_PORT    7    /* UDP echo (RFC 862): each datagram comes back as it was */
#define VM_RX_WAITING   256  /* frames that wait while the services' pages are elsewhere */

/* Whether the VM's memory and state may cross the network in clear when it migrates, as vSphere's
 * per-VM encrypted vMotion setting. */
enum vm_encryption {
	VM_ENCRYPTION_REQUIRED = 0, /* the default: encrypted, or no migration */
	VM_ENCRYPTION_OPPORTUNISTIC = 1,
	VM_ENCRYPTION_DISABLED = 2,
};

/* What runs the VM's workload. */
enum vm_backend {
	VM_BACKEND_SYNTHETIC = 0, /* the host writes its memory in the worker's loop */
	VM_BACKEND_KVM = 1,       /* ferry's guest on a KVM vCPU, its memory in KVM's dirty log */
};

/* "synthetic" or "kvm". */
const char *vm_backend_name(enum vm_backend backend);

/* Parses a backend's name; -EINVAL otherwise. */
int vm_backend_parse(const char *text, enum vm_backend *backend);

/* Steps between two of the workload's disk writes: block (step / VM_DISK_EVERY) % blocks gets
 * vm_synthetic_disk_block(seed, step), as its memory writes are a function of the two. */
#define VM_DISK_EVERY  64
#define VM_DISK_MAX_MB (1u << 20) /* 1 TiB */

/* A VM's virtual disk: a flat file on a datastore, locked for this host while the VM has it. */
struct vm_disk {
	int fd; /* -1: no disk */
	char path[PATH_MAX];
	char datastore[VM_NAME_MAX]; /* the name of the datastore it is on */
	uint64_t mb;
	uint64_t blocks;
	struct disklock lock;
	uint64_t next_step; /* the next step whose write is owed */
	uint64_t writes;
	uint64_t heartbeat_ns; /* when the lock was last renewed */
	bool lost;             /* another host broke the lock: the VM stopped */
};

struct vm {
	struct machine machine;
	struct iface vnic;
	struct vm_workload workload;
	uint64_t counter_page; /* the last page: the workload never writes it */
	struct announce announce;
	struct loop *loop;
	enum vm_encryption encryption;
	enum vm_backend backend;
	bool postcopy_off; /* its migrations may not go post-copy (a source death would lose it) */
	struct tcp tcp;
	bool tcp_on; /* the VM is large enough for the TCP's pages */
	/* In post-copy the services' pages (the counter's, the TCP's) may still be on the other
	 * host: frames for the VM wait, in order, as a guest's network stack stalls on a page it
	 * touches (and the page is asked for). */
	struct rte_mbuf *rx_waiting[VM_RX_WAITING];
	unsigned int nb_rx_waiting;
	uint64_t rx_dropped; /* frames that found the wait full */
	struct vm_disk disk;
};

struct vm_config {
	const char *name;
	uint64_t memory_mb;
	struct rte_ether_addr mac;
	uint32_t ip; /* network byte order */
	uint8_t prefix_len;
	struct vm_workload workload;
	enum vm_encryption encryption;
	enum machine_backing backing; /* hugetlb: the host's hugepages, on every host it runs on */
	enum vm_backend backend;      /* the same on every host it runs on */
};

/* The first page the VM's services (the TCP's pages, the counter) use, in a VM of nb_pages: its
 * workload stays below it. */
uint64_t vm_services_first_page(uint64_t nb_pages);

/* The first page a VM of nb_pages on a backend keeps its workload below: the services', or
 * below them the KVM guest's own pages. */
uint64_t vm_workload_end(uint64_t nb_pages, enum vm_backend backend);

/* A zeroed VM to vm_create, aligned for the ports it holds (port_holder_alloc); free() frees
 * it. NULL if out of memory. */
struct vm *vm_alloc(void);

/* Creates a VM with its vnic on a port group, paused; its interface is down until it runs.
 * Returns 0 or a negative errno. */
int vm_create(struct vm *vm, struct vswitch_table *vswitches, struct vswitch_portgroup *portgroup,
              const struct vm_config *config, struct pktpool_set *pools);

/* Frees the VM and its vnic (its disk flushed and its lock let go). */
void vm_destroy(struct vm *vm);

/* Where a VM's disk is and who may lock it. */
struct vm_disk_place {
	const char *datastore; /* the datastore's name */
	const char *path;      /* the disk file on it */
	uint64_t mb;
	const char *owner; /* this host's name */
	uint64_t lease_ns; /* the datastore's lock lease */
};

/* Gives a created VM a disk: the file (created sparse if absent), locked for this host. -EBUSY
 * with the holder when another host has it. Returns 0 or a negative errno. */
int vm_disk_attach(struct vm *vm, const struct vm_disk_place *place,
                   struct disklock_holder *holder);

/* A migration's switchover, at the source (the VM paused): writes what the workload owes the
 * disk up to its step, flushes it and offers the lock under a token (in *handoff) the
 * destination takes it with. -ESTALE if this host lost the lock. */
int vm_disk_offer(struct vm *vm, uint64_t *handoff);

/* The migration failed: the disk stays here. -ESTALE when the destination took the lock after
 * all: the VM must not run here (it is marked lost). */
int vm_disk_withdraw(struct vm *vm);

/* A migration's switchover, at the destination (the state loaded, the VM not yet running):
 * takes the lock the source offered under handoff and opens the disk. -EBUSY with the holder
 * when the lock file does not carry that offer. */
int vm_disk_take(struct vm *vm, const struct vm_disk_place *place, uint64_t handoff,
                 struct disklock_holder *holder);

/* Starts or stops the VM's vCPU; a paused VM's vnic drops what reaches it. */
void vm_resume(struct vm *vm);
void vm_pause(struct vm *vm);

/* Loads a vCPU state that came with a migration, and the workload it carries. Returns 0 or
 * -EINVAL if the backend refuses it. */
int vm_load_state(struct vm *vm, const void *buf, size_t len);

/* Frames for the VM (its vnic's, or a migration's that held them): its stack takes them now, or
 * once the pages its services use are here. Takes the mbufs. */
void vm_input(struct vm *vm, struct rte_mbuf **pkts, uint16_t n);

/* What reaches the vnic goes to vm_input again (after a migration held it elsewhere). */
void vm_input_attach(struct vm *vm);

/* Loop poller: runs the workload. Returns the pages written when the VM runs flat out (so the
 * worker keeps going), 0 for a rate-limited one (so the worker may sleep between its steps). */
unsigned int vm_poll(void *vm);

/* The UDP counter's value, read from vm memory. */
uint64_t vm_counter(const struct vm *vm);

#endif

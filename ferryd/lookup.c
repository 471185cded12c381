/* The host's objects by name, for commands, with one wording of "not found". */
#include "lookup.h"

#include <errno.h>

#include "cli/reply.h"
#include "host/host.h"
#include "migrate/proto.h"

static void *not_found(struct reply *reply, const char *kind, const char *name, const char *list)
{
	reply_error(reply, -ENOENT, "no %s named '%.64s' (see '%s')", kind, name, list);
	return NULL;
}

struct port *lookup_port(struct host *host, const char *name, struct reply *reply)
{
	struct port *port = port_table_find(&host->ports, name);

	return port != NULL ? port : not_found(reply, "port", name, "show ports");
}

struct vswitch *lookup_vswitch(struct host *host, const char *name, struct reply *reply)
{
	struct vswitch *vswitch = vswitch_find(&host->vswitches, name);

	return vswitch != NULL ? vswitch : not_found(reply, "vswitch", name, "show vswitches");
}

struct vswitch_portgroup *lookup_portgroup(struct host *host, const char *name, struct reply *reply)
{
	struct vswitch_portgroup *pg = vswitch_portgroup_find(&host->vswitches, name);

	return pg != NULL ? pg : not_found(reply, "port group", name, "show portgroups");
}

struct iface *lookup_vmk(struct host *host, const char *name, struct reply *reply)
{
	struct iface *vmk = host_vmk_find(host, name);

	return vmk != NULL ? vmk : not_found(reply, "vmk", name, "show vmk");
}

struct vm *lookup_vm(struct host *host, const char *name, struct reply *reply)
{
	struct vm *vm = host_vm_find(host, name);

	return vm != NULL ? vm : not_found(reply, "VM", name, "vm list");
}

int lookup_encryption(const char *name, int *out, struct reply *reply)
{
	int policy = name != NULL ? proto_encryption_parse(name) : *out;

	if (policy < 0)
		return reply_error(reply, -EINVAL,
		                   "encryption '%.32s': required, opportunistic or disabled", name);
	*out = policy;
	return 0;
}

int lookup_cipher(const char *name, int *out, struct reply *reply)
{
	int cipher = name == NULL ? *out : strcmp(name, "auto") == 0 ? 0 : proto_cipher_parse(name);

	if (cipher < 0)
		return reply_error(reply, -EINVAL,
		                   "cipher '%.32s': auto, chacha20-poly1305 or aes-256-gcm", name);
	*out = cipher;
	return 0;
}

/* The host's objects by name, for commands: one lookup per kind, and one wording of "not found"
 * (the name, and the command that lists that kind). */
#ifndef FERRY_FERRYD_LOOKUP_H
#define FERRY_FERRYD_LOOKUP_H

struct host;
struct iface;
struct port;
struct reply;
struct vm;
struct vswitch;
struct vswitch_portgroup;

/* Each returns the object, or NULL after saying "no <kind> named '<name>' (see '<list>')" in
 * the reply with -ENOENT. */
struct port *lookup_port(struct host *host, const char *name, struct reply *reply);
struct vswitch *lookup_vswitch(struct host *host, const char *name, struct reply *reply);
struct vswitch_portgroup *lookup_portgroup(struct host *host, const char *name,
                                           struct reply *reply);
struct iface *lookup_vmk(struct host *host, const char *name, struct reply *reply);
struct vm *lookup_vm(struct host *host, const char *name, struct reply *reply);

/* An encryption policy or a cipher by name, from an optional argument: 0 with out set (left as
 * it was when the argument is absent), or -EINVAL after naming the choices in the reply. */
int lookup_encryption(const char *name, int *out, struct reply *reply);
int lookup_cipher(const char *name, int *out, struct reply *reply);

#endif

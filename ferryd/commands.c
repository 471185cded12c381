/* Every command set of ferryd on one CLI table. */
#include "commands.h"

#include "capture_commands.h"
#include "cli/cli.h"
#include "daemon_commands.h"
#include "metrics_commands.h"
#include "migrate_commands.h"
#include "vm_commands.h"
#include "vmk_commands.h"
#include "vswitch_commands.h"

int ferryd_commands_init(struct cli_table *cli, struct host *host)
{
	static int (*const sets[])(struct cli_table *, struct host *) = {
	        daemon_commands_register,  vswitch_commands_register, vmk_commands_register,
	        vm_commands_register,      migrate_commands_register, capture_commands_register,
	        metrics_commands_register,
	};
	cli_table_init(cli);
	for (unsigned int i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		int ret = sets[i](cli, host);
		if (ret < 0)
			return ret;
	}
	return 0;
}

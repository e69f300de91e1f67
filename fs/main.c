/* reservefs — entry point: picks the tool, nothing more. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fs.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: reservefs STORE MOUNTPOINT [-f] [-d] [-o OPTIONS]   mount a store\n"
	       "       reservefs mkfs STORE [-o size=,nr_inodes=,reserve=eof|write] [--force]\n"
	       "       reservefs fsck STORE [--repair]\n"
	       "       reservefs stat MOUNTPOINT [--json]\n"
	       "       reservefs --help | --version\n"
	       "Mount options: size=SIZE nr_inodes=N reserve=eof|write dirty_limit=SIZE\n"
	       "  dirty_expire=SECS mmap_dirty_max=SIZE, and FUSE's (allow_other, ro, ...);\n"
	       "  reservefs STORE MOUNTPOINT --help lists them.\n"
	       "See README.md.\n");
}

int main(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "mkfs") == 0)
		return fs_main_mkfs(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "fsck") == 0)
		return fs_main_fsck(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "stat") == 0)
		return fs_main_stat(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("reservefs %s\n", RESERVEFS_VERSION);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	return fs_main_mount(argc, argv);
}

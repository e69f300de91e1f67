/* fs/ — the reservefs daemon and its command-line tools. */
#ifndef FS_H
#define FS_H

int fs_main_mount(int argc, char *argv[]);
int fs_main_mkfs(int argc, char *argv[]);
int fs_main_fsck(int argc, char *argv[]);
int fs_main_stat(int argc, char *argv[]);

#endif /* FS_H */

// l1-exec: runs inside the L1 guest (see tests/nested/run and l1/init).
//   l1-exec RUNDIR NEWROOT TMPDIR STDOUT STDERR
// Reads the caller's argv, environment, cwd and credentials from RUNDIR (as
// written by tests/nested/run), chroots into NEWROOT and execs the command
// exactly as the caller would have: same cwd, env (plus TMPDIR, KSBOX_IN_L1),
// umask, uid, gid and supplementary groups, stdin /dev/null, stdout/stderr the
// given virtio-console ports. Opening those here rather than with shell
// redirections keeps init's messages ("Killed") out of the command's stderr.
// Built static into the initramfs: nothing but the command loads over 9p.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "ksbox-l1: %s: %s\n", what, strerror(errno));
    exit(125);
}

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f) die(path);
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (cap - n < 65536) {
            cap = cap * 2 + 65536;
            if (!(buf = realloc(buf, cap + 1))) die("realloc");
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    if (ferror(f)) die(path);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

// NUL-separated list -> NULL-terminated vector with `extra` spare slots.
static char **split(char *buf, size_t len, size_t extra, size_t *count) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == 0;
    char **v = calloc(n + extra + 1, sizeof *v);
    if (!v) die("calloc");
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1) v[k++] = buf + i;
    *count = k;
    return v;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: l1-exec RUNDIR NEWROOT TMPDIR STDOUT STDERR\n");
        return 125;
    }
    const char *run = argv[1], *root = argv[2], *tmp = argv[3];
    int in = open("/dev/null", O_RDONLY);
    int out = open(argv[4], O_WRONLY);
    int err = open(argv[5], O_WRONLY);
    if (in < 0 || out < 0 || err < 0) die("opening /dev/null or the console ports");
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) die("dup2");
    if (in > 2) close(in);
    if (out > 2) close(out);
    if (err > 2) close(err);
    size_t alen, elen, clen, ilen, nargs, nenv;
    char *abuf = slurp(run, "argv", &alen);
    char *ebuf = slurp(run, "env", &elen);
    char *cwd = slurp(run, "cwd", &clen);
    char *ids = slurp(run, "ids", &ilen);
    char **args = split(abuf, alen, 0, &nargs);
    char **env = split(ebuf, elen, 2, &nenv);
    if (nargs == 0) {
        fprintf(stderr, "ksbox-l1: empty command\n");
        return 125;
    }

    // "uid gid g1,g2,...|- umask"
    unsigned uid, gid, mask;
    char groups[65536];
    if (sscanf(ids, "%u %u %65535s %o", &uid, &gid, groups, &mask) != 4) {
        fprintf(stderr, "ksbox-l1: bad ids file: %s\n", ids);
        return 125;
    }
    static gid_t gl[65536];
    size_t ng = 0;
    if (strcmp(groups, "-") != 0)
        for (char *s = strtok(groups, ","); s && ng < 65536; s = strtok(NULL, ","))
            gl[ng++] = (gid_t)strtoul(s, NULL, 10);

    // Our TMPDIR and KSBOX_IN_L1 replace the caller's.
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(env[i], "TMPDIR=", 7) != 0 && strncmp(env[i], "KSBOX_IN_L1=", 12) != 0)
            env[k++] = env[i];
    char *tmpvar;
    if (asprintf(&tmpvar, "TMPDIR=%s", tmp) < 0) die("asprintf");
    env[k++] = tmpvar;
    env[k++] = "KSBOX_IN_L1=1";
    env[k] = NULL;

    if (chroot(root) != 0) die("chroot");
    if (chdir(cwd) != 0) {
        fprintf(stderr, "ksbox-l1: cannot enter the working directory %s: %s\n", cwd, strerror(errno));
        return 125;
    }
    umask(mask);
    if (setgroups(ng, gl) != 0) die("setgroups");
    if (setgid(gid) != 0) die("setgid");
    if (setuid(uid) != 0) die("setuid");

    // execvp searches the PATH of the current environment: install the
    // caller's first.
    environ = env;
    execvp(args[0], args);
    int e = errno;
    fprintf(stderr, "%s: %s\n", args[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}

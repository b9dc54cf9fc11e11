/*
 * checker: runs inside a container and reports, as one JSON object on stdout,
 * what the process sees.  Built statically (gcc -static) by the conformance
 * suite so it runs in any rootfs.
 *
 *   checker [PROBE...]
 *
 * With no probe it prints the full report ("report").  Probes:
 *   report          identity, cwd, umask, rlimits, capabilities, seccomp,
 *                   no_new_privs, hostname/domainname, env, namespaces, fds,
 *                   oom_score_adj, cgroup, mountinfo, cpu affinity, ioprio,
 *                   scheduler, personality
 *   stat:PATH       lstat of PATH (type, mode, rdev, owner, symlink target)
 *   read:PATH       first 64 KiB of PATH as a string, or the errno
 *   open-r:PATH     errno of open(PATH, O_RDONLY) (0 = success)
 *   open-w:PATH     errno of open(PATH, O_WRONLY)
 *   touch:PATH      errno of creating PATH (O_CREAT|O_WRONLY)
 *   exec:PATH       errno of execve(PATH) in a forked child, 0 if it ran
 *   sleep:SECONDS   sleep before printing (keeps the container running)
 * Each probe adds one key named after itself to the output object.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int first = 1;

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void key(const char *k)
{
    if (!first)
        putchar(',');
    first = 0;
    json_str(k);
    putchar(':');
}

static void kv_str(const char *k, const char *v)
{
    key(k);
    if (v)
        json_str(v);
    else
        fputs("null", stdout);
}

static void kv_long(const char *k, long long v)
{
    key(k);
    printf("%lld", v);
}

/* Reads a whole small file; returns a malloc'd string or NULL (errno set). */
static char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = 0;
    return buf;
}

/* Value of "Name:\t..." in /proc/self/status, trimmed. */
static void status_field(char *status, const char *name, char *out, size_t outlen)
{
    out[0] = 0;
    if (!status)
        return;
    size_t nl = strlen(name);
    for (char *line = status; line && *line;) {
        char *end = strchr(line, '\n');
        if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
            char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = end ? (size_t)(end - v) : strlen(v);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return;
        }
        line = end ? end + 1 : NULL;
    }
}

static const struct { const char *name; int res; } rlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

static void report(void)
{
    char buf[4096], field[256];
    char *status = slurp("/proc/self/status");

    kv_long("pid", getpid());
    kv_long("ppid", getppid());
    kv_long("uid", getuid());
    kv_long("gid", getgid());
    kv_long("euid", geteuid());
    kv_long("egid", getegid());

    gid_t groups[256];
    int ng = getgroups(256, groups);
    key("groups");
    putchar('[');
    for (int i = 0; i < ng; i++)
        printf(i ? ",%u" : "%u", groups[i]);
    putchar(']');

    kv_str("cwd", getcwd(buf, sizeof buf) ? buf : NULL);

    mode_t um = umask(0);
    umask(um);
    kv_long("umask", um);

    key("rlimits");
    putchar('{');
    for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(rlimits[i].res, &rl) != 0)
            continue;
        printf(i ? "," : "");
        json_str(rlimits[i].name);
        printf(":{\"soft\":%llu,\"hard\":%llu}", (unsigned long long)rl.rlim_cur,
               (unsigned long long)rl.rlim_max);
    }
    putchar('}');

    key("caps");
    putchar('{');
    const char *capnames[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    for (int i = 0; i < 5; i++) {
        status_field(status, capnames[i], field, sizeof field);
        if (i)
            putchar(',');
        json_str(capnames[i]);
        putchar(':');
        json_str(field);
    }
    putchar('}');

    status_field(status, "NoNewPrivs", field, sizeof field);
    kv_long("no_new_privs_status", atol(field));
    kv_long("no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    status_field(status, "Seccomp", field, sizeof field);
    kv_long("seccomp", field[0] ? atol(field) : -1);

    struct utsname u;
    uname(&u);
    kv_str("hostname", u.nodename);
    kv_str("domainname", u.domainname);

    key("env");
    putchar('[');
    for (char **e = environ; e && *e; e++) {
        if (e != environ)
            putchar(',');
        json_str(*e);
    }
    putchar(']');

    key("ns");
    putchar('{');
    const char *nss[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};
    for (int i = 0; i < 8; i++) {
        char p[64], t[128];
        snprintf(p, sizeof p, "/proc/self/ns/%s", nss[i]);
        ssize_t n = readlink(p, t, sizeof t - 1);
        t[n > 0 ? n : 0] = 0;
        if (i)
            putchar(',');
        json_str(nss[i]);
        putchar(':');
        json_str(t);
    }
    putchar('}');

    key("fds");
    putchar('{');
    DIR *d = opendir("/proc/self/fd");
    int dfd = d ? dirfd(d) : -1, nfd = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == dfd)
            continue;
        char p[300], t[512];
        snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(p, t, sizeof t - 1);
        t[n > 0 ? n : 0] = 0;
        if (nfd++)
            putchar(',');
        json_str(de->d_name);
        putchar(':');
        json_str(t);
    }
    if (d)
        closedir(d);
    putchar('}');

    char *s = slurp("/proc/self/oom_score_adj");
    kv_long("oom_score_adj", s ? atol(s) : -99999);
    free(s);
    s = slurp("/proc/self/cgroup");
    kv_str("cgroup", s);
    free(s);
    s = slurp("/proc/self/mountinfo");
    kv_str("mountinfo", s);
    free(s);

    cpu_set_t set;
    key("cpus");
    putchar('[');
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = 0;
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &set))
                printf(n++ ? ",%d" : "%d", i);
    }
    putchar(']');
    kv_long("ioprio", syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0));
    kv_long("sched_policy", sched_getscheduler(0));
    kv_long("nice", getpriority(PRIO_PROCESS, 0));
    kv_long("personality", personality(0xffffffff));
    free(status);
}

static void probe_stat(const char *probe, const char *path)
{
    struct stat st;
    key(probe);
    if (lstat(path, &st) != 0) {
        printf("{\"errno\":%d}", errno);
        return;
    }
    const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir"
                     : S_ISLNK(st.st_mode) ? "symlink" : S_ISCHR(st.st_mode) ? "char"
                     : S_ISBLK(st.st_mode) ? "block" : S_ISFIFO(st.st_mode) ? "fifo" : "other";
    printf("{\"errno\":0,\"type\":\"%s\",\"mode\":%u,\"major\":%u,\"minor\":%u,\"uid\":%u,\"gid\":%u",
           type, st.st_mode & 07777, major(st.st_rdev), minor(st.st_rdev), st.st_uid, st.st_gid);
    if (S_ISLNK(st.st_mode)) {
        char t[4096];
        ssize_t n = readlink(path, t, sizeof t - 1);
        t[n > 0 ? n : 0] = 0;
        fputs(",\"target\":", stdout);
        json_str(t);
    }
    putchar('}');
}

static int exec_errno(const char *path)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return errno;
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)path, NULL};
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execve(path, argv, environ);
        int e = errno;
        if (write(pipefd[1], &e, sizeof e) < 0)
            _exit(127);
        _exit(127);
    }
    close(pipefd[1]);
    int e = 0;
    if (read(pipefd[0], &e, sizeof e) != sizeof e)
        e = 0;
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    return e;
}

int main(int argc, char **argv)
{
    const char *def[] = {argv[0], "report"};
    if (argc < 2) {
        argc = 2;
        argv = (char **)def;
    }
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "sleep:", 6) == 0)
            sleep((unsigned)atoi(argv[i] + 6));
    putchar('{');
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *colon = strchr(a, ':');
        const char *arg = colon ? colon + 1 : "";
        size_t n = colon ? (size_t)(colon - a) : strlen(a);
        if (strcmp(a, "report") == 0) {
            report();
        } else if (strncmp(a, "stat", n) == 0 && n == 4) {
            probe_stat(a, arg);
        } else if (n == 4 && strncmp(a, "read", 4) == 0) {
            char *s = slurp(arg);
            key(a);
            if (s) {
                json_str(s);
                free(s);
            } else {
                printf("{\"errno\":%d}", errno);
            }
        } else if (n == 6 && (strncmp(a, "open-r", 6) == 0 || strncmp(a, "open-w", 6) == 0)) {
            int fd = open(arg, (a[5] == 'r' ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
            kv_long(a, fd < 0 ? errno : 0);
            if (fd >= 0)
                close(fd);
        } else if (n == 5 && strncmp(a, "touch", 5) == 0) {
            int fd = open(arg, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            kv_long(a, fd < 0 ? errno : 0);
            if (fd >= 0)
                close(fd);
        } else if (n == 4 && strncmp(a, "exec", 4) == 0) {
            kv_long(a, exec_errno(arg));
        } else if (n == 5 && strncmp(a, "sleep", 5) == 0) {
            continue;
        } else {
            kv_str(a, "unknown probe");
        }
    }
    puts("}");
    fflush(stdout);
    return 0;
}

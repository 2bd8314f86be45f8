/* LD_PRELOAD: make every CPUID this process runs report an AVX2-only CPU (no AVX-512, VNNI, bf16, AMX).
   Uses the kernel's CPUID faulting (arch_prctl ARCH_SET_CPUID): CPUID traps to SIGSEGV, which runs it
   for real with faulting briefly off and clears the bits. Linux, x86-64, CPUs with the cpuid_fault flag. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>

/* /proc/cpuinfo comes from the kernel, not from CPUID: readers of it (vidcolor's choice of bf16, the benchmarks'
   printout) get a copy without the masked flags, held in a memfd and opened as /proc/self/fd/N. */
static int cpuinfo_fd = -1;
static char cpuinfo_path[32];
static const char *hidden[] = {"avx512", "amx", "avx_vnni", "avx_ifma", "avx_ne_convert", "avx10", "vaes", "vpclmulqdq", 0};

static int is_hidden(const char *w, size_t n) {
    for (const char **h = hidden; *h; h++)
        if (n >= strlen(*h) && strncmp(w, *h, strlen(*h)) == 0) return 1;
    return 0;
}

static void filter_cpuinfo(void) {
    static char in[1 << 20], out[1 << 20];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/cpuinfo", O_RDONLY);
    if (fd < 0) return;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof in - 1 && (r = read(fd, in + n, sizeof in - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    in[n] = 0;
    size_t o = 0;
    for (char *line = in; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        if (strncmp(line, "flags", 5) == 0 && memchr(line, ':', len)) {
            char *colon = memchr(line, ':', len);
            memcpy(out + o, line, (size_t)(colon - line) + 1); o += (size_t)(colon - line) + 1;
            for (char *w = colon + 1; w < line + len;) {
                while (w < line + len && (*w == ' ' || *w == '\n')) w++;
                char *e = w;
                while (e < line + len && *e != ' ' && *e != '\n') e++;
                if (e > w && !is_hidden(w, (size_t)(e - w))) { out[o++] = ' '; memcpy(out + o, w, (size_t)(e - w)); o += (size_t)(e - w); }
                w = e;
            }
            out[o++] = '\n';
        } else {
            memcpy(out + o, line, len); o += len;
        }
        line += len;
    }
    cpuinfo_fd = (int)syscall(SYS_memfd_create, "cpuinfo", 0);
    if (cpuinfo_fd < 0) return;
    if (write(cpuinfo_fd, out, o) != (ssize_t)o) { close(cpuinfo_fd); cpuinfo_fd = -1; return; }
    snprintf(cpuinfo_path, sizeof cpuinfo_path, "/proc/self/fd/%d", cpuinfo_fd);
}

static const char *redirect(const char *path) {
    return (cpuinfo_fd >= 0 && path && strcmp(path, "/proc/cpuinfo") == 0) ? cpuinfo_path : path;
}

#define OPEN_WRAPPER(name, ...)                                                        \
    int name(__VA_ARGS__, int flags, ...) {                                            \
        static int (*real)();                                                          \
        if (!real) real = (int (*)())dlsym(RTLD_NEXT, #name);                          \
        mode_t mode = 0;                                                               \
        if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

OPEN_WRAPPER(open, const char *path) return real(redirect(path), flags, mode); }
OPEN_WRAPPER(open64, const char *path) return real(redirect(path), flags, mode); }
OPEN_WRAPPER(openat, int dirfd, const char *path) return real(dirfd, redirect(path), flags, mode); }
OPEN_WRAPPER(openat64, int dirfd, const char *path) return real(dirfd, redirect(path), flags, mode); }

FILE *fopen(const char *path, const char *m) {
    static FILE *(*real)(const char *, const char *);
    if (!real) real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    return real(redirect(path), m);
}
FILE *fopen64(const char *path, const char *m) {
    static FILE *(*real)(const char *, const char *);
    if (!real) real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen64");
    return real(redirect(path), m);
}

static struct sigaction previous;
static volatile unsigned long traps;  /* CPUID_MASK_COUNT=1 prints them at exit */
#include <stdio.h>
#include <stdlib.h>
static void report(void){ if (getenv("CPUID_MASK_COUNT")) fprintf(stderr, "cpuid traps: %lu (pid %d)\n", traps, getpid()); }

static void set_cpuid(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on); }

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {  /* r: eax ebx ecx edx */
    if (leaf == 7 && sub == 0) {
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 14));
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 23));  /* AVX-VNNI, AVX512_BF16, AVX-IFMA */
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 19));  /* AVX-VNNI-INT8, AVX-NE-CONVERT, AVX10 */
    } else if (leaf == 0xd && sub == 0) {
        r[0] &= ~(0xe0u | 0x60000u);  /* XSAVE: no opmask/ZMM or AMX tile state */
    } else if (leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0;  /* AVX10 leaf */
    }
}

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip && ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
        __atomic_add_fetch(&traps, 1, __ATOMIC_RELAXED);
        set_cpuid(1);
        __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
        set_cpuid(0);
        mask(leaf, sub, r);
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    sigaction(SIGSEGV, &previous, NULL);  /* a real fault: let it crash as it would have */
    raise(sig);
}

__attribute__((constructor)) static void start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, &previous);
    set_cpuid(0);
    atexit(report);
    filter_cpuinfo();
}

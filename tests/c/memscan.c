/*
 * Secrets leave no trace: a C program that creates a provider from a client secret it read and
 * then wiped, fetches a token, serves 100 cached hits (each freed with vault_token_free), and
 * frees the provider. At each stage it scans every readable mapping of its own process
 * (/proc/self/maps) for the client secret and for the token, and fails if any plaintext copy is
 * found. The scanner holds only masked copies (each byte XOR 0x5A), unmasked on the fly, so it
 * adds no copy of its own.
 *
 * Besides the secret itself it looks for the HTTP Basic credential base64(id:secret), which is as
 * good as the secret to whoever finds it.
 *
 * It also measures what AES-GCM leaves on the stack: ring handles the last partial
 * 16-byte block of a seal or an open in a stack temporary it does not wipe. Right after each
 * library call, a scanner with a small frame (so that it overwrites little of the dead stack below
 * it) looks through this thread's [stack] for the last (length mod 16) bytes of the secret and of
 * the token: the plaintext that temporary would hold. memscan.sh picks lengths with a long tail.
 *
 * With MEMSCAN_AUTH=private_key_jwt the third argument is a PEM PKCS#8 private key
 * (tests/keys): the provider signs its client assertion with it, and the scan looks for the key's
 * PKCS#8 DER bytes and its PEM's base64 body, whole and as any 16-byte window of them, in every readable
 * mapping (one pass per stage: a hash table of the masked windows).
 *
 * With MEMSCAN_TOKEN_WINDOWS=1 (a long token: memscan.sh registers a client with 900-byte tokens)
 * it also looks for any 16-byte window of the token: on this thread's stack right after the fetch,
 * each of the 100 hits (before and after its vault_token_free) and three vault_get_token_into
 * calls, and in every readable mapping at each stage. ring's AES-GCM leaves the last blocks it
 * opened in vector registers, and two things write the registers onto the stack: a first call
 * through a not-yet-bound PLT entry (glibc's lazy-binding trampoline saves the register file) and
 * a signal (the kernel saves it in the signal frame). Hits 0-7 are each followed by a first PLT
 * call, hits 8-10 by one after their free; later hits by a signal after the hit or after the free
 * (a raw tgkill: no libc code in between) or by nothing.
 *
 * Usage: memscan <token_url> <client_id> <secret_or_key_file> [ca_file]
 * Environment: MEMSCAN_AUTH = client_secret_basic (default), client_secret_post or
 * private_key_jwt (then MEMSCAN_KID names the key's kid).
 * The secret file is read with read(2) (no stdio buffer) and wiped in memory right away.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "credvault.h"

#define MASK 0x5A

static unsigned char masked_secret[256];
static size_t secret_len;
static unsigned char masked_basic[512];
static size_t basic_len;
static unsigned char masked_token[8192];
static size_t token_len;

static void wipe(void *p, size_t n) { explicit_bzero(p, n); }

/* private_key_jwt: the key's PEM text and PKCS#8 DER, masked; a hash table of their 16-byte
 * windows, hashed from the masked bytes (so no plaintext window is ever formed here). */
#define WIN 16
#define SLOTS 16384
static unsigned char masked_pem[8192];
static size_t pem_len;
static unsigned char masked_der[6144];
static size_t der_len;
struct slot { const unsigned char *masked; };
static struct slot table[SLOTS];

static uint64_t load64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The hash of a window given as its masked bytes (m = 0) or as plaintext (m = the mask). */
static size_t win_hash(const unsigned char *p, uint64_t m) {
    uint64_t a = load64(p) ^ m, b = load64(p + 8) ^ m;
    return (size_t)(((a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full)) >> 50) & (SLOTS - 1);
}

static void add_windows(const unsigned char *masked, size_t len) {
    for (size_t i = 0; i + WIN <= len; i++) {
        size_t h = win_hash(masked + i, 0);
        while (table[h].masked) {
            if (memcmp(table[h].masked, masked + i, WIN) == 0) break; /* same window twice */
            h = (h + 1) & (SLOTS - 1);
        }
        table[h].masked = masked + i;
    }
}

/* Positions in [start, end) where some 16-byte window of the PEM or the DER is in plaintext. */
static size_t token_window_count; /* token windows found by scan_windows (MEMSCAN_TOKEN_WINDOWS) */

static void scan_windows(const unsigned char *start, const unsigned char *end, size_t *pem_hits, size_t *der_hits) {
    const uint64_t m = 0x5A5A5A5A5A5A5A5Aull;
    if ((size_t)(end - start) < WIN) return;
    for (const unsigned char *p = start; p + WIN <= end; p++) {
        for (size_t h = win_hash(p, m); table[h].masked; h = (h + 1) & (SLOTS - 1)) {
            const unsigned char *w = table[h].masked;
            size_t i = 0;
            while (i < WIN && p[i] == (unsigned char)(w[i] ^ MASK)) i++;
            if (i == WIN) {
                if (w >= masked_der && w < masked_der + sizeof masked_der) (*der_hits)++;
                else if (w >= masked_token && w < masked_token + sizeof masked_token) token_window_count++;
                else (*pem_hits)++;
                break;
            }
        }
    }
}

/* Counts occurrences of the masked pattern in [start, end). */
static size_t scan_range(const unsigned char *start, const unsigned char *end,
                         const unsigned char *masked, size_t len) {
    size_t hits = 0;
    if (len == 0 || (size_t)(end - start) < len) return 0;
    const unsigned char first = masked[0] ^ MASK;
    for (const unsigned char *p = start; p + len <= end; p++) {
        if (*p != first) continue;
        size_t i = 1;
        while (i < len && p[i] == (unsigned char)(masked[i] ^ MASK)) i++;
        if (i == len) hits++;
    }
    return hits;
}

/* Scans every readable private or anonymous mapping; returns the number of copies found. */
static size_t scan_process_with(const unsigned char *masked, size_t len, const char *what, const char *stage,
                                size_t *pem_hits, size_t *der_hits);

static size_t scan_process(const unsigned char *masked, size_t len, const char *what, const char *stage) {
    return scan_process_with(masked, len, what, stage, NULL, NULL);
}

/* With `pem_hits` set, counts key windows instead of `masked`. */
static size_t scan_process_with(const unsigned char *masked, size_t len, const char *what, const char *stage,
                                size_t *pem_hits, size_t *der_hits) {
    char line[512];
    size_t total = 0;
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) { perror("open /proc/self/maps"); exit(2); }
    /* Read the whole maps file first: scanning while reading would change it. */
    static char maps[1 << 20];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    maps[n] = 0;
    char *save = NULL;
    for (char *l = strtok_r(maps, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        unsigned long lo, hi;
        char perms[8] = {0};
        char path[256] = {0};
        strncpy(line, l, sizeof line - 1);
        line[sizeof line - 1] = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) < 3) continue;
        if (perms[0] != 'r') continue;
        if (strcmp(path, "[vvar]") == 0 || strcmp(path, "[vsyscall]") == 0 || strcmp(path, "[vvar_vclock]") == 0) continue;
        if (strncmp(path, "/dev/", 5) == 0) continue;
        if (pem_hits) {
            size_t p0 = *pem_hits, d0 = *der_hits, t0 = token_window_count;
            scan_windows((const unsigned char *)lo, (const unsigned char *)hi, pem_hits, der_hits);
            if (*pem_hits - p0 || *der_hits - d0)
                fprintf(stderr, "    %s: %zu PEM and %zu PKCS#8 windows of the private key in %s %s\n", stage,
                        *pem_hits - p0, *der_hits - d0, perms, path[0] ? path : "[anonymous]");
            if (token_window_count - t0)
                fprintf(stderr, "    %s: %zu 16-byte windows of the token in %s %s\n", stage,
                        token_window_count - t0, perms, path[0] ? path : "[anonymous]");
            continue;
        }
        size_t h = scan_range((const unsigned char *)lo, (const unsigned char *)hi, masked, len);
        if (h) fprintf(stderr, "    %s: %zu plaintext cop%s of the %s in %s %s\n", stage, h, h == 1 ? "y" : "ies", what, perms, path[0] ? path : "[anonymous]");
        total += h;
    }
    return total;
}

/* Copies of the private key (any 16-byte window of its PEM or DER) in the process; 0 when no
 * key was given. */
static size_t key_window_hits(const char *stage) {
    size_t pem_hits = 0, der_hits = 0;
    if (!der_len) return 0;
    scan_process_with(NULL, 0, "private key", stage, &pem_hits, &der_hits);
    return pem_hits + der_hits;
}

/* Reads a PEM PKCS#8 key: its text masked into masked_pem, its DER masked into masked_der, and
 * a plaintext DER copy into `der` (the scan's positive control; the caller wipes it). */
static int read_key(const char *path, unsigned char *der, size_t der_cap) {
    static char text[8192];
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror("key file"); return -1; }
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0) return -1;
    pem_len = (size_t)got;
    for (size_t i = 0; i < pem_len; i++) masked_pem[i] = (unsigned char)text[i] ^ MASK;
    const char *b = strstr(text, "-----BEGIN PRIVATE KEY-----");
    const char *e = strstr(text, "-----END PRIVATE KEY-----");
    if (!b || !e) { fprintf(stderr, "key file: not a PEM PKCS#8 key\n"); return -1; }
    unsigned v = 0, bits = 0;
    for (const char *c = b + 27; c < e; c++) {
        const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *q = *c ? strchr(tbl, *c) : NULL;
        if (!q) continue;
        v = (v << 6) | (unsigned)(q - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (der_len >= der_cap || der_len >= sizeof masked_der) return -1;
            der[der_len] = (unsigned char)(v >> bits);
            masked_der[der_len] = der[der_len] ^ MASK;
            der_len++;
        }
    }
    v = 0;
    /* The PEM's windows are those of its base64 body: the BEGIN and END lines are public text
     * (the library holds them as string literals). */
    size_t body = (size_t)(b - text) + 27, body_end = (size_t)(e - text);
    while (body < body_end && (text[body] == '\n' || text[body] == '\r')) body++;
    wipe(text, sizeof text);
    add_windows(masked_der, der_len);
    add_windows(masked_pem + body, body_end - body);
    return 0;
}

/* base64 of `in`, each output byte masked as it is produced. */
static size_t base64_masked(const unsigned char *in, size_t n, unsigned char *out) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = (unsigned char)(tbl[(v >> 18) & 63] ^ MASK);
        out[o++] = (unsigned char)(tbl[(v >> 12) & 63] ^ MASK);
        out[o++] = (unsigned char)((i + 1 < n ? tbl[(v >> 6) & 63] : '=') ^ MASK);
        out[o++] = (unsigned char)((i + 2 < n ? tbl[v & 63] : '=') ^ MASK);
    }
    return o;
}

static int failures = 0;

/* The main thread's stack mapping, found once at the start (reading /proc/self/maps later would
 * run deep stack frames of its own over the region being measured). */
static const unsigned char *stack_lo, *stack_hi;

static void find_stack(void) {
    static char maps[1 << 20];
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) { perror("open /proc/self/maps"); exit(2); }
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    maps[n] = 0;
    for (char *l = maps; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        if (len > 7 && memcmp(l + len - 7, "[stack]", 7) == 0) {
            unsigned long lo, hi;
            if (sscanf(l, "%lx-%lx", &lo, &hi) == 2) {
                stack_lo = (const unsigned char *)lo;
                stack_hi = (const unsigned char *)hi;
            }
        }
    }
    if (!stack_lo) { fprintf(stderr, "no [stack] mapping\n"); exit(2); }
}

/* Copies of the last (len mod 16) bytes of the secret and of the token on this thread's stack:
 * what an unwiped partial-block temporary would leave. Called right after a library call. */
static size_t stack_secret_tail, stack_token_tail, stack_scans;

/* Leaves the secret's tail in a dead stack frame (or clears it): the stack scan's own control.
 * It goes 2 KiB below this frame's top, deeper than the scanner's own frames reach, as a
 * temporary deep in a library call would be. */
static __attribute__((noinline)) void plant_secret_tail(int clear) {
    volatile unsigned char b[2048];
    size_t st = secret_len % 16;
    for (size_t i = 0; i < st; i++)
        b[i] = clear ? 0 : (unsigned char)(masked_secret[secret_len - st + i] ^ MASK);
    __asm__ volatile("" : : "r"(b) : "memory");
}

static __attribute__((noinline)) void stack_residue(int with_token) {
    size_t st = secret_len % 16, tt = token_len % 16;
    stack_scans++;
    if (st) stack_secret_tail += scan_range(stack_lo, stack_hi, masked_secret + secret_len - st, st);
    if (with_token && tt)
        stack_token_tail += scan_range(stack_lo, stack_hi, masked_token + token_len - tt, tt);
}

/* MEMSCAN_TOKEN_WINDOWS=1: the token's 16-byte windows are looked for too (a long token, whose
 * full blocks ring's AES-GCM leaves in vector registers), on the stack right after each call and
 * in every readable mapping at each stage. */
static int token_windows;

/* Windows of the token in every readable mapping. */
static size_t token_window_hits(const char *stage) {
    size_t pem_hits = 0, der_hits = 0, before = token_window_count;
    scan_process_with(NULL, 0, "token", stage, &pem_hits, &der_hits);
    return token_window_count - before;
}

/* Windows of the token on this thread's stack, right after a call; `what` names the provocation
 * that preceded it. A small frame, like stack_residue. */
static size_t stack_windows_total;

static __attribute__((noinline)) void stack_windows(const char *what, int n) {
    size_t pem_hits = 0, der_hits = 0, before = token_window_count;
    scan_windows(stack_lo, stack_hi, &pem_hits, &der_hits);
    size_t h = token_window_count - before;
    token_window_count = before;
    static size_t last;
    if (h != last) /* residue in a dead frame stays: report only changes */
        fprintf(stderr, "    [stack] right after %s (call %d): %zu 16-byte windows of the token\n", what, n, h);
    last = h;
    stack_windows_total += h;
}

/* What puts the vector registers on the stack right after a library call returns, before the
 * application's code touches them: a first call through a not-yet-bound PLT entry (glibc's
 * lazy-binding trampoline saves the register file with xsave), or a signal (the kernel writes
 * the register state into the signal frame on the user stack). Each fresh_call(i) calls a libc
 * function this program has not called before. */
static volatile long sink;
static volatile sig_atomic_t signals;
static long raw_pid, raw_tid;

static void on_signal(int sig) { (void)sig; signals++; }

static __attribute__((noinline)) int fresh_call(int i) {
    switch (i) {
    case 0: sink = getppid(); return 1;
    case 1: sink = getuid(); return 1;
    case 2: sink = geteuid(); return 1;
    case 3: sink = getgid(); return 1;
    case 4: sink = getegid(); return 1;
    case 5: sink = getpgrp(); return 1;
    case 6: sink = sched_yield(); return 1;
    case 7: sink = getpagesize(); return 1;
    case 8: sink = getsid(0); return 1;
    case 9: sink = getdtablesize(); return 1;
    case 10: sink = sysconf(_SC_CLK_TCK); return 1;
    case 11: sink = getpriority(PRIO_PROCESS, 0); return 1;
    default: return 0;
    }
}
#define FRESH_CALLS 12

/* tgkill(SIGUSR1) to this thread straight through the syscall instruction: no libc code runs
 * between the library's return and the kernel's saving of the registers. */
static void raw_signal(void) {
#if defined(__x86_64__)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_tgkill), "D"(raw_pid), "S"(raw_tid), "d"((long)SIGUSR1)
                     : "rcx", "r11", "memory");
    (void)r;
#else
    raise(SIGUSR1);
#endif
}

static void check(const char *stage, int with_token) {
    size_t s = scan_process(masked_secret, secret_len, "client secret", stage)
             + scan_process(masked_basic, basic_len, "Basic credential", stage);
    s += key_window_hits(stage);
    size_t t = with_token ? scan_process(masked_token, token_len, "token", stage) : 0;
    if (with_token && token_windows) t += token_window_hits(stage);
    printf("%s %s: secret copies %zu, token copies %zu\n", (s || t) ? "not ok" : "ok", stage, s, t);
    if (s || t) failures++;
}

/* private_key_jwt: the provider is made from a config holding the PEM (JSON-escaped), which is
 * wiped; then a fetch, cached hits and the provider's end, with the key scanned at each stage. */
static int key_main(int argc, char **argv) {
    static unsigned char der[6144];
    if (read_key(argv[3], der, sizeof der) != 0) return 2;
    find_stack();
    size_t pem_hits = 0, der_hits = 0;
    scan_process_with(NULL, 0, "private key (control)", "control", &pem_hits, &der_hits);
    if (der_hits < der_len - WIN + 1) {
        fprintf(stderr, "not ok control: the scanner did not find every window of a known DER copy\n");
        return 1;
    }
    wipe(der, sizeof der);
    printf("ok control: the scanner finds every window of a known plaintext DER copy (%zu bytes)\n", der_len);

    static char config[16384];
    const char *kid = getenv("MEMSCAN_KID");
    size_t n = (size_t)snprintf(config, sizeof config,
                                "{\"token_url\":\"%s\",\"client_id\":\"%s\",\"auth_method\":\"private_key_jwt\","
                                "\"key_id\":\"%s\",\"proxy\":\"none\"%s%s%s,\"private_key\":\"",
                                argv[1], argv[2], kid ? kid : "k1", argc > 4 ? ",\"ca_file\":\"" : "",
                                argc > 4 ? argv[4] : "", argc > 4 ? "\"" : "");
    for (size_t i = 0; i < pem_len && n + 4 < sizeof config; i++) {
        char c = (char)(masked_pem[i] ^ MASK);
        if (c == '\n') { config[n++] = '\\'; config[n++] = 'n'; }
        else config[n++] = c;
        c = 0;
    }
    if (n + 3 >= sizeof config) { fprintf(stderr, "config too long\n"); return 2; }
    config[n++] = '"'; config[n++] = '}'; config[n] = 0;

    uint64_t p = vault_provider_new(config);
    wipe(config, sizeof config);
    if (p == 0) { fprintf(stderr, "vault_provider_new: %s\n", vault_last_error()); return 1; }
    check("after vault_provider_new", 0);

    char *tok = vault_get_token(p);
    if (!tok) { fprintf(stderr, "vault_get_token: %s\n", vault_last_error()); return 1; }
    token_len = strlen(tok);
    if (token_len >= sizeof masked_token) { fprintf(stderr, "token too long\n"); return 1; }
    for (size_t i = 0; i < token_len; i++) masked_token[i] = (unsigned char)tok[i] ^ MASK;
    vault_token_free(tok);
    check("after the first fetch (one assertion signed)", 1);

    for (int i = 0; i < 100; i++) {
        char *t = vault_get_token(p);
        if (!t) { fprintf(stderr, "hit %d: %s\n", i, vault_last_error()); return 1; }
        vault_token_free(t);
    }
    check("after 100 cached hits", 1);

    if (vault_provider_free(p) != 0) return 1;
    check("after vault_provider_free", 1);
    printf("%d passed, %d failed (private_key_jwt, %zu-byte PKCS#8 key)\n", 5 - failures, failures, der_len);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: memscan <token_url> <client_id> <secret_file> [ca_file]\n");
        return 2;
    }
    const char *auth = getenv("MEMSCAN_AUTH");
    if (auth == NULL || auth[0] == 0) auth = "client_secret_basic";
    if (strcmp(auth, "private_key_jwt") == 0) return key_main(argc, argv);
    /* Read the secret with read(2) into a local buffer, keep only a masked copy, then wipe. */
    char secret[256];
    int fd = open(argv[3], O_RDONLY);
    if (fd < 0) { perror("secret file"); return 2; }
    ssize_t got = read(fd, secret, sizeof secret - 1);
    close(fd);
    if (got <= 0) { fprintf(stderr, "empty secret file\n"); return 2; }
    while (got > 0 && (secret[got - 1] == '\n' || secret[got - 1] == '\r')) got--;
    secret_len = (size_t)got;
    for (size_t i = 0; i < secret_len; i++) masked_secret[i] = (unsigned char)secret[i] ^ MASK;
    {
        unsigned char joined[400];
        size_t id_len = strlen(argv[2]);
        if (id_len + 1 + secret_len > sizeof joined) { fprintf(stderr, "id too long\n"); return 2; }
        memcpy(joined, argv[2], id_len);
        joined[id_len] = ':';
        memcpy(joined + id_len + 1, secret, secret_len);
        basic_len = base64_masked(joined, id_len + 1 + secret_len, masked_basic);
        wipe(joined, sizeof joined);
    }
    find_stack();
    token_windows = getenv("MEMSCAN_TOKEN_WINDOWS") && strcmp(getenv("MEMSCAN_TOKEN_WINDOWS"), "1") == 0;
    if (token_windows) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGUSR1, &sa, NULL);
        raw_pid = getpid();
        raw_tid = syscall(SYS_gettid);
    }

    /* Positive control: the scanner must see the copy still in `secret`, else it proves nothing. */
    if (scan_process(masked_secret, secret_len, "client secret (control)", "control") < 1) {
        fprintf(stderr, "not ok control: the scanner did not find a known plaintext copy\n");
        return 1;
    }
    printf("ok control: the scanner finds a known plaintext copy (auth %s)\n", auth);

    char config[2048];
    int len = snprintf(config, sizeof config,
                       "{\"token_url\":\"%s\",\"client_id\":\"%s\",\"client_secret\":\"%.*s\","
                       "\"auth_method\":\"%s\",\"proxy\":\"none\"%s%s%s}",
                       argv[1], argv[2], (int)secret_len, secret, auth,
                       argc > 4 ? ",\"ca_file\":\"" : "", argc > 4 ? argv[4] : "", argc > 4 ? "\"" : "");
    wipe(secret, sizeof secret);
    if (len <= 0 || (size_t)len >= sizeof config) { fprintf(stderr, "config too long\n"); return 2; }

    uint64_t p = vault_provider_new(config);
    wipe(config, sizeof config);
    stack_residue(0);
    if (p == 0) { fprintf(stderr, "vault_provider_new: %s\n", vault_last_error()); return 1; }
    check("after vault_provider_new", 0);

    char *tok = vault_get_token(p);
    if (!tok) { fprintf(stderr, "vault_get_token: %s\n", vault_last_error()); return 1; }
    /* Not strlen: glibc's vector strlen would leave the token in registers that the next first
     * PLT call (vault_token_free's) saves on the stack, which the token-window scan would see. */
    token_len = 0;
    while (token_len < sizeof masked_token && ((volatile char *)tok)[token_len]) token_len++;
    if (token_len >= sizeof masked_token) { fprintf(stderr, "token too long\n"); return 1; }
    for (size_t i = 0; i < token_len; i++) masked_token[i] = (unsigned char)tok[i] ^ MASK;
    vault_token_free(tok);
    stack_residue(1);
    if (token_windows) {
        add_windows(masked_token, token_len);
        stack_windows("the first fetch", 0);
        /* Control (after that scan: its plaintext copy passes through registers): the window scan
         * finds every window of a known plaintext copy. */
        static char copy[8192];
        for (size_t i = 0; i < token_len; i++) copy[i] = (char)(masked_token[i] ^ MASK);
        size_t pem_hits = 0, der_hits = 0, before = token_window_count;
        scan_windows((const unsigned char *)copy, (const unsigned char *)copy + token_len, &pem_hits, &der_hits);
        size_t found = token_window_count - before;
        token_window_count = before;
        wipe(copy, sizeof copy);
        if (token_len < WIN || found != token_len - WIN + 1) {
            fprintf(stderr, "not ok control: the scanner found %zu of the %zu windows of a known token copy\n",
                    found, token_len < WIN ? 0 : token_len - WIN + 1);
            return 1;
        }
        printf("ok control: the scanner finds every 16-byte window of a known token copy (%zu bytes)\n", token_len);
    }
    check("after the first fetch", 1);

    for (int i = 0; i < 100; i++) {
        char *t = vault_get_token(p);
        if (!t) { fprintf(stderr, "hit %d: %s\n", i, vault_last_error()); return 1; }
        if (token_windows) {
            /* Hits 0-7: a first call through the PLT right after the hit; 8-10: right after its
             * vault_token_free; later hits: a signal after the hit (i % 4 == 0) or after the free
             * (i % 4 == 2), or nothing. The stack is scanned before and after the free. */
            const char *what = "a cached hit", *after_free = "a cached hit and vault_token_free";
            if (i < 8 && fresh_call(i)) what = "a cached hit and a first PLT call";
            else if (i >= 11 && i % 4 == 0) { raw_signal(); what = "a cached hit and a signal"; }
            stack_windows(what, i);
            vault_token_free(t);
            if (i >= 8 && i < 11 && fresh_call(i)) after_free = "a cached hit, vault_token_free and a first PLT call";
            else if (i >= 11 && i % 4 == 2) { raw_signal(); after_free = "a cached hit, vault_token_free and a signal"; }
            stack_residue(1);
            stack_windows(after_free, i);
            continue;
        }
        vault_token_free(t);
        stack_residue(1);
    }
    check("after 100 cached hits", 1);

    /* Static, not on the stack: the stack scan right after the call must not see this copy. */
    static char buf[8192];
    size_t out_len = 0;
    if (vault_get_token_into(p, buf, sizeof buf, &out_len, NULL, 0) != VAULT_STATUS_OK) return 1;
    stack_residue(1); /* right after an open, with no other call in between */
    if (token_windows) {
        stack_windows("vault_get_token_into", 0);
        wipe(buf, sizeof buf);
        if (vault_get_token_into(p, buf, sizeof buf, &out_len, NULL, 0) != VAULT_STATUS_OK) return 1;
        fresh_call(FRESH_CALLS - 1);
        stack_windows("vault_get_token_into and a first PLT call", 1);
        wipe(buf, sizeof buf);
        if (vault_get_token_into(p, buf, sizeof buf, &out_len, NULL, 0) != VAULT_STATUS_OK) return 1;
        raw_signal();
        stack_windows("vault_get_token_into and a signal", 2);
    }
    wipe(buf, sizeof buf);
    check("after vault_get_token_into and a wiped buffer", 1);

    if (vault_provider_free(p) != 0) return 1;
    check("after vault_provider_free", 1);

    printf("key memory locked: %d\n", vault_key_memory_locked());
    /* Control for the stack scan: a tail left in a dead frame is found. */
    size_t counted = stack_secret_tail, scans = stack_scans;
    plant_secret_tail(0);
    stack_residue(0);
    size_t planted = stack_secret_tail - counted;
    stack_secret_tail = counted;
    plant_secret_tail(1);
    if (secret_len % 16 && planted < 1) {
        fprintf(stderr, "not ok control: the stack scan did not find a planted tail\n");
        return 1;
    }
    printf("stack residue (last partial AES block, %zu secret / %zu token bytes): "
           "secret tail copies %zu, token tail copies %zu (%zu scans, each right after a call)\n",
           secret_len % 16, token_len % 16, stack_secret_tail, stack_token_tail, scans);
    if (stack_secret_tail || stack_token_tail) {
        printf("not ok stack residue: plaintext of a partial AES block was left on the stack\n");
        failures++;
    }
    if (token_windows) {
        printf("%s stack windows (%zu-byte token): %zu 16-byte windows of the token on the stack over %zu scans "
               "(%d signals delivered, %d first PLT calls)\n",
               stack_windows_total ? "not ok" : "ok", token_len, stack_windows_total, 2 * (size_t)100 + 4,
               (int)signals, FRESH_CALLS);
        if (stack_windows_total) failures++;
    }
    printf("%d passed, %d failed\n", 7 + token_windows - failures, failures);
    return failures ? 1 : 0;
}

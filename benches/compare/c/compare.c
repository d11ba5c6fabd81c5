/* credvault from C, for benches/compare (see ../README.md): the cached lookup, aggregate
 * throughput on T threads, the refresh-boundary scenario, and the hit cost and resident memory
 * with many registered providers.
 *
 * Configured by the environment (run.sh sets it): BENCH_MODE (cached | threads | stall |
 * providers), BENCH_TOKEN_URL, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, and per mode BENCH_N,
 * BENCH_ROUNDS (cached, providers), BENCH_THREADS, BENCH_SECS (threads, stall), BENCH_PAUSE_MS,
 * BENCH_BUCKET_MS (stall), BENCH_PROVIDERS (providers: a comma-separated list of counts).
 * Prints JSON lines on stdout. Never prints a token. */
#define _GNU_SOURCE
#include <credvault.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *env(const char *name, const char *def) {
    const char *v = getenv(name);
    if (v) return v;
    if (!def) {
        fprintf(stderr, "%s must be set\n", name);
        exit(2);
    }
    return def;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread: on a shared machine, wall-clock time would also count the time
 * the thread waited for a core. */
static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static uint64_t pct(const uint64_t *s, size_t n, double p) {
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return s[rank - 1];
}

static uint64_t new_provider(const char *client_id) {
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "{\"token_url\":\"%s\",\"client_id\":\"%s\",\"client_secret\":\"%s\"}",
             env("BENCH_TOKEN_URL", NULL), client_id, env("BENCH_CLIENT_SECRET", NULL));
    char err[1024];
    uint64_t h = 0;
    vault_status st = vault_provider_new_ex(cfg, &h, err, sizeof err);
    if (st != VAULT_STATUS_OK) {
        fprintf(stderr, "vault_provider_new_ex: %s: %s\n", vault_status_name(st), err);
        exit(1);
    }
    return h;
}

static char tokbuf_main[8192];

static void get_into(uint64_t h, char *buf, size_t len) {
    size_t n = 0;
    vault_status st = vault_get_token_into(h, buf, len, &n, NULL, 0);
    if (st != VAULT_STATUS_OK) {
        fprintf(stderr, "vault_get_token_into: %s\n", vault_status_name(st));
        exit(1);
    }
}

static void get_free(uint64_t h) {
    char *t = vault_get_token(h);
    if (!t) {
        fprintf(stderr, "vault_get_token: %s\n", vault_status_name(vault_last_status()));
        exit(1);
    }
    vault_token_free(t);
}

static void print_ns_list(const char *client, const double *v, int n) {
    printf("{\"mode\":\"cached\",\"lang\":\"C\",\"client\":\"%s\",\"ns\":[", client);
    for (int i = 0; i < n; i++) printf("%s%.2f", i ? "," : "", v[i]);
    printf("]}\n");
}

static void mode_cached(void) {
    uint64_t h = new_provider(env("BENCH_CLIENT_ID", NULL));
    get_into(h, tokbuf_main, sizeof tokbuf_main);
    int n = atoi(env("BENCH_N", "200000")), rounds = atoi(env("BENCH_ROUNDS", "11"));
    double *a = calloc((size_t)rounds, sizeof *a), *b = calloc((size_t)rounds, sizeof *b);
    for (int r = 0; r < rounds; r++) {
        /* The two call shapes back to back in each round, order alternating. */
        for (int k = 0; k < 2; k++) {
            int which = (k + r) % 2;
            uint64_t t = cpu_ns();
            if (which == 0)
                for (int i = 0; i < n; i++) get_into(h, tokbuf_main, sizeof tokbuf_main);
            else
                for (int i = 0; i < n; i++) get_free(h);
            double ns = (double)(cpu_ns() - t) / n;
            (which == 0 ? a : b)[r] = ns;
        }
    }
    print_ns_list("credvault vault_get_token_into", a, rounds);
    print_ns_list("credvault vault_get_token + vault_token_free", b, rounds);
    vault_provider_free(h);
}

/* ---- threads and stall ---- */
typedef struct {
    uint64_t h;
    double secs;
    uint64_t pause_ns;
    int record;
    pthread_barrier_t *bar;
    uint64_t start;
    uint64_t calls;
    uint64_t *lat, *at;
    size_t cap;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    char buf[8192];
    pthread_barrier_wait(w->bar);
    uint64_t start = w->start, end = start + (uint64_t)(w->secs * 1e9);
    struct timespec pause = {0, (long)w->pause_ns};
    for (;;) {
        uint64_t t0 = now_ns();
        if (t0 >= end) break;
        get_into(w->h, buf, sizeof buf);
        if (w->record) {
            uint64_t dt = now_ns() - t0;
            if (w->calls == w->cap) {
                w->cap *= 2;
                w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
                w->at = realloc(w->at, w->cap * sizeof *w->at);
            }
            w->lat[w->calls] = dt;
            w->at[w->calls] = t0 - start;
        }
        w->calls++;
        if (w->pause_ns) nanosleep(&pause, NULL);
    }
    return NULL;
}

static void run_workers(uint64_t h, int threads, double secs, uint64_t pause_ns, int record, worker_t *ws) {
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    uint64_t start = now_ns() + 20000000u; /* all threads start timing from the same instant */
    for (int i = 0; i < threads; i++) {
        ws[i] = (worker_t){.h = h, .secs = secs, .pause_ns = pause_ns, .record = record, .bar = &bar,
                           .start = start, .cap = 65536};
        if (record) {
            ws[i].lat = malloc(ws[i].cap * sizeof(uint64_t));
            ws[i].at = malloc(ws[i].cap * sizeof(uint64_t));
        }
        pthread_create(&ids[i], NULL, worker, &ws[i]);
    }
    while (now_ns() < start) {
    }
    pthread_barrier_wait(&bar);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    pthread_barrier_destroy(&bar);
    free(ids);
}

static void mode_threads(void) {
    uint64_t h = new_provider(env("BENCH_CLIENT_ID", NULL));
    get_into(h, tokbuf_main, sizeof tokbuf_main);
    int threads = atoi(env("BENCH_THREADS", "1"));
    double secs = atof(env("BENCH_SECS", "2"));
    worker_t *ws = calloc((size_t)threads, sizeof *ws);
    uint64_t t = now_ns();
    run_workers(h, threads, secs, 0, 0, ws);
    double el = (double)(now_ns() - t - 20000000u) / 1e9;
    uint64_t calls = 0;
    for (int i = 0; i < threads; i++) calls += ws[i].calls;
    printf("{\"mode\":\"threads\",\"lang\":\"C\",\"client\":\"credvault vault_get_token_into\",\"threads\":%d,"
           "\"calls_per_s\":%.1f}\n",
           threads, (double)calls / el);
    vault_provider_free(h);
}

static void mode_stall(void) {
    uint64_t h = new_provider(env("BENCH_CLIENT_ID", NULL));
    uint64_t t = now_ns();
    get_into(h, tokbuf_main, sizeof tokbuf_main);
    double warmup_ms = (double)(now_ns() - t) / 1e6;
    int threads = atoi(env("BENCH_THREADS", "8"));
    double secs = atof(env("BENCH_SECS", "20"));
    double pause_ms = atof(env("BENCH_PAUSE_MS", "1"));
    double bucket_ms = atof(env("BENCH_BUCKET_MS", "100"));
    worker_t *ws = calloc((size_t)threads, sizeof *ws);
    run_workers(h, threads, secs, (uint64_t)(pause_ms * 1e6), 1, ws);
    size_t n = 0;
    for (int i = 0; i < threads; i++) n += ws[i].calls;
    uint64_t *lat = malloc(n * sizeof *lat);
    size_t nb = (size_t)(secs * 1000 / bucket_ms) + 1;
    uint64_t *bmax = calloc(nb, sizeof *bmax);
    uint64_t max = 0, max_at = 0, over10 = 0, over1 = 0;
    size_t k = 0;
    for (int i = 0; i < threads; i++)
        for (size_t j = 0; j < ws[i].calls; j++) {
            uint64_t d = ws[i].lat[j], at = ws[i].at[j];
            lat[k++] = d;
            if (d > max) max = d, max_at = at;
            if (d > 10000000u) over10++;
            if (d > 1000000u) over1++;
            size_t b = (size_t)((double)at / 1e6 / bucket_ms);
            if (b < nb && d > bmax[b]) bmax[b] = d;
        }
    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("{\"mode\":\"stall\",\"lang\":\"C\",\"client\":\"credvault C vault_get_token_into\",\"calls\":%zu,"
           "\"errors\":0,\"warmup_ms\":%.4f,\"max_ms\":%.4f,\"max_at_s\":%.3f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"p999_ms\":%.4f,\"over_1ms\":%llu,\"over_10ms\":%llu,\"bucket_ms\":%g,\"series_max_ms\":[",
           n, warmup_ms, max / 1e6, max_at / 1e9, pct(lat, n, 50) / 1e6, pct(lat, n, 99) / 1e6,
           pct(lat, n, 99.9) / 1e6, (unsigned long long)over1, (unsigned long long)over10, bucket_ms);
    for (size_t b = 0; b < nb; b++) printf("%s%.4f", b ? "," : "", bmax[b] / 1e6);
    printf("]}\n");
    vault_provider_free(h);
}

/* ---- many providers ---- */
static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE);
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void mode_providers(void) {
    const char *list = env("BENCH_PROVIDERS", "1,100,10000");
    int n_calls = atoi(env("BENCH_N", "200000")), rounds = atoi(env("BENCH_ROUNDS", "11"));
    const char *id = env("BENCH_CLIENT_ID", NULL);
    char *copy = strdup(list);
    /* A first provider and fetch outside the figures: the library's one-time set-up (the HTTP
     * client, the sealing key, the refresh machinery) is not a per-provider cost. */
    uint64_t warm = new_provider(id);
    get_into(warm, tokbuf_main, sizeof tokbuf_main);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        int count = atoi(tok);
        uint64_t *hs = calloc((size_t)count, sizeof *hs);
        long rss0 = rss_bytes();
        /* Each provider registered and holding a fetched token (one fetch each). */
        uint64_t t = now_ns();
        for (int i = 0; i < count; i++) {
            hs[i] = new_provider(id);
            get_into(hs[i], tokbuf_main, sizeof tokbuf_main);
        }
        double setup_s = (double)(now_ns() - t) / 1e9;
        long rss1 = rss_bytes();
        double *one = calloc((size_t)rounds, sizeof *one), *cyc = calloc((size_t)rounds, sizeof *cyc);
        for (int r = 0; r < rounds; r++) {
            t = cpu_ns();
            for (int i = 0; i < n_calls; i++) get_into(hs[0], tokbuf_main, sizeof tokbuf_main);
            one[r] = (double)(cpu_ns() - t) / n_calls;
            t = cpu_ns();
            for (int i = 0; i < n_calls; i++) get_into(hs[i % count], tokbuf_main, sizeof tokbuf_main);
            cyc[r] = (double)(cpu_ns() - t) / n_calls;
        }
        printf("{\"mode\":\"providers\",\"lang\":\"C\",\"providers\":%d,\"hit_one_ns\":%.2f,\"hit_cycle_ns\":%.2f,"
               "\"rss_before\":%ld,\"rss_after\":%ld,\"rss_per_provider\":%.1f,\"setup_s\":%.3f}\n",
               count, median_of(one, rounds), median_of(cyc, rounds), rss0, rss1,
               (double)(rss1 - rss0) / count, setup_s);
        fflush(stdout);
        for (int i = 0; i < count; i++) vault_provider_free(hs[i]);
        free(hs);
        free(one);
        free(cyc);
    }
    free(copy);
    vault_provider_free(warm);
}

int main(void) {
    const char *mode = env("BENCH_MODE", NULL);
    if (!strcmp(mode, "version")) {
        printf("%s\n", vault_version());
        return 0;
    }
    if (!strcmp(mode, "cached")) mode_cached();
    else if (!strcmp(mode, "threads")) mode_threads();
    else if (!strcmp(mode, "stall")) mode_stall();
    else if (!strcmp(mode, "providers")) mode_providers();
    else {
        fprintf(stderr, "unknown BENCH_MODE %s\n", mode);
        return 2;
    }
    return 0;
}

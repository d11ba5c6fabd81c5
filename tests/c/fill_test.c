/*
 * The one-argument non-blocking calls vault_try_fill_token / vault_try_fill_authorization
 * (what the Python binding's cached path calls), against the local identity provider.
 *
 *   fill_test http://127.0.0.1:PORT      (tests/python/run.sh starts `credvault idp --demo`)
 *
 * Prints one line per check; exits 1 if any failed. Never prints a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault.h"

static int failed;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            printf("ok   %s\n", #cond);                                    \
        } else {                                                           \
            printf("FAIL %s (line %d)\n", #cond, __LINE__);                \
            failed = 1;                                                    \
        }                                                                  \
    } while (0)

static uint64_t provider(const char *base, const char *secret) {
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"token_url\":\"%s/vgs/auth/realms/vgs/protocol/openid-connect/token\","
             "\"client_id\":\"demo-vgs-client\",\"client_secret\":\"%s\",\"cooldown_ms\":60000}",
             base, secret);
    return vault_provider_new(cfg);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fill_test http://127.0.0.1:PORT\n");
        return 2;
    }
    const char *base = argv[1];
    uint64_t p = provider(base, "demo-vgs-secret");
    CHECK(p != 0);

    char buf[4096], token[4096], auth[4096], small[4];
    memset(buf, 'x', sizeof buf);
    vault_fill f = {p, buf, sizeof buf, 0};

    /* Nothing cached yet: would block, nothing written. */
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_WOULD_BLOCK);
    CHECK(f.generation == 0 && buf[0] == 'x');

    size_t n = 0;
    CHECK(vault_get_token_into(p, token, sizeof token, &n, NULL, 0) == VAULT_STATUS_OK);

    /* Cached: written, NUL-terminated, with its generation. */
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_OK);
    CHECK(strcmp(buf, token) == 0 && strlen(buf) == n);
    uint64_t g1 = f.generation;
    CHECK(g1 > 0);

    /* Same generation: OK and nothing copied (the marker stays). */
    buf[0] = '#';
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_OK);
    CHECK(buf[0] == '#' && f.generation == g1);
    /* Generation 0: written again. */
    f.generation = 0;
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_OK);
    CHECK(strcmp(buf, token) == 0 && f.generation == g1);

    /* The Authorization shape, in a fill of its own. */
    char authbuf[4096];
    vault_fill fa = {p, authbuf, sizeof authbuf, 0};
    CHECK(vault_get_authorization_into(p, auth, sizeof auth, NULL, NULL, 0) == VAULT_STATUS_OK);
    CHECK(vault_try_fill_authorization(&fa) == VAULT_STATUS_OK);
    CHECK(strcmp(authbuf, auth) == 0 && strncmp(authbuf, "Bearer ", 7) == 0);

    /* Too small: refused, buffer and generation untouched. */
    memset(small, 'y', sizeof small);
    vault_fill fs = {p, small, sizeof small, 0};
    CHECK(vault_try_fill_token(&fs) == VAULT_STATUS_BUFFER_TOO_SMALL);
    CHECK(fs.generation == 0 && small[0] == 'y');

    /* After the token is invalidated: would block until a new one is fetched; then a
     * greater generation and the new value. */
    CHECK(vault_invalidate_token(p, token, NULL, 0) == VAULT_STATUS_OK);
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_WOULD_BLOCK);
    CHECK(f.generation == g1);
    CHECK(vault_get_token_into(p, token, sizeof token, &n, NULL, 0) == VAULT_STATUS_OK);
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_OK);
    CHECK(f.generation > g1 && strcmp(buf, token) == 0);

    /* Arguments. */
    CHECK(vault_try_fill_token(NULL) == VAULT_STATUS_INVALID_ARGUMENT);
    vault_fill fnull = {p, NULL, 16, 0};
    CHECK(vault_try_fill_token(&fnull) == VAULT_STATUS_INVALID_ARGUMENT);
    CHECK(vault_provider_free(p) == 0);
    CHECK(vault_try_fill_token(&f) == VAULT_STATUS_INVALID_HANDLE);
    CHECK(vault_try_fill_authorization(&fa) == VAULT_STATUS_INVALID_HANDLE);

    /* A cool-down's stored error is returned at once. */
    uint64_t bad = provider(base, "wrong-secret-value");
    CHECK(vault_get_token_into(bad, token, sizeof token, NULL, NULL, 0) ==
          VAULT_STATUS_CREDENTIALS_REJECTED);
    vault_fill fb = {bad, buf, sizeof buf, 0};
    CHECK(vault_try_fill_token(&fb) == VAULT_STATUS_CREDENTIALS_REJECTED);
    const char *msg = vault_last_error();
    CHECK(msg != NULL && strstr(msg, "wrong-secret-value") == NULL);
    CHECK(vault_provider_free(bad) == 0);

    memset(token, 0, sizeof token);
    memset(buf, 0, sizeof buf);
    memset(auth, 0, sizeof auth);
    memset(authbuf, 0, sizeof authbuf);
    printf(failed ? "fill_test: FAILED\n" : "fill_test: all passed\n");
    return failed;
}

/*
 * A small payment service in C: takes tokens for VGS from credvault and calls an API with them.
 *
 *   payment_service API_URL
 *
 * Environment:
 *   CREDVAULT_CLIENT_ID, CREDVAULT_CLIENT_SECRET   the client credentials (required)
 *   CREDVAULT_TOKEN_URL   overrides the preset's token endpoint (e.g. the local identity
 *                         provider: http://127.0.0.1:PORT/vgs/auth/realms/vgs/protocol/openid-connect/token)
 *
 * It GETs API_URL with "Authorization: Bearer <token>"; on a 401 it tells credvault the token was
 * rejected (so the next call fetches a new one) and retries once. Prints the API's status and
 * body; never prints the token. Exit status 0 on a 2xx answer.
 *
 * HTTP through libcurl when built with EXAMPLE_WITH_CURL (the Makefile does when pkg-config finds
 * libcurl), else through a plain socket (http:// only).
 *
 * Build: see the Makefile (pkg-config credvault).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <credvault.h>

#ifdef EXAMPLE_WITH_CURL
#include <curl/curl.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#endif

#define AUTH_MAX 8192

/* Overwrites memory that held a secret; the volatile stores are not optimised away. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) {
        *v++ = 0;
    }
}

/* The response body, kept for printing. */
struct body {
    char data[4096];
    size_t len;
};

#ifdef EXAMPLE_WITH_CURL

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof b->data - 1 - b->len;
    size_t take = n < room ? n : room;
    memcpy(b->data + b->len, ptr, take);
    b->len += take;
    b->data[b->len] = '\0';
    return n;
}

/* GET url with the Authorization header; returns the HTTP status or -1. */
static int http_get(const char *url, const char *authorization, struct body *b)
{
    static char header[16 + AUTH_MAX];
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        return -1;
    }
    snprintf(header, sizeof header, "Authorization: %s", authorization);
    /* curl_slist_append copies the header: wiped here, the copy freed by curl. */
    struct curl_slist *headers = curl_slist_append(NULL, header);
    wipe(header, sizeof header);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    long status = -1;
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return (int)status;
}

#else /* a plain socket */

/* GET url (http://host[:port]/path) with the Authorization header; returns the status or -1. */
static int http_get(const char *url, const char *authorization, struct body *b)
{
    char host[256], port[8] = "80";
    const char *path;
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "only http:// URLs without libcurl\n");
        return -1;
    }
    const char *h = url + 7;
    path = strchr(h, '/');
    size_t hlen = path ? (size_t)(path - h) : strlen(h);
    if (path == NULL) {
        path = "/";
    }
    if (hlen == 0 || hlen >= sizeof host) {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *colon = strrchr(host, ':');
    if (colon != NULL) {
        *colon = '\0';
        snprintf(port, sizeof port, "%s", colon + 1);
    }

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        freeaddrinfo(ai);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    freeaddrinfo(ai);

    static char request[512 + AUTH_MAX];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: %s\r\n"
                     "Connection: close\r\n\r\n",
                     path, host, port, authorization);
    int ok = n > 0 && (size_t)n < sizeof request &&
             send(fd, request, (size_t)n, MSG_NOSIGNAL) == (ssize_t)n;
    wipe(request, sizeof request);
    if (!ok) {
        close(fd);
        return -1;
    }
    char response[8192];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof response - 1 && (r = recv(fd, response + len, sizeof response - 1 - len, 0)) > 0) {
        len += (size_t)r;
    }
    close(fd);
    response[len] = '\0';
    int status = -1;
    if (sscanf(response, "HTTP/1.%*d %d", &status) != 1) {
        return -1;
    }
    const char *start = strstr(response, "\r\n\r\n");
    if (start != NULL) {
        snprintf(b->data, sizeof b->data, "%s", start + 4);
        b->len = strlen(b->data);
    }
    return status;
}

#endif

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s API_URL\n", argv[0]);
        return 2;
    }
    const char *api = argv[1];
    const char *id = getenv("CREDVAULT_CLIENT_ID");
    const char *secret = getenv("CREDVAULT_CLIENT_SECRET");
    const char *token_url = getenv("CREDVAULT_TOKEN_URL");
    if (id == NULL || secret == NULL) {
        fprintf(stderr, "set CREDVAULT_CLIENT_ID and CREDVAULT_CLIENT_SECRET\n");
        return 2;
    }
    if (strpbrk(id, "\"\\") || strpbrk(secret, "\"\\") || (token_url && strpbrk(token_url, "\"\\"))) {
        fprintf(stderr, "this example does not escape quotes or backslashes\n");
        return 2;
    }
#ifdef EXAMPLE_WITH_CURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
#endif

    /* The configuration holds the secret: built on the stack and wiped once the provider has its
     * sealed copy. */
    char config[1024];
    int n = snprintf(config, sizeof config,
                     "{\"preset\":\"vgs\",\"client_id\":\"%s\",\"client_secret\":\"%s\"%s%s%s}", id,
                     secret, token_url ? ",\"token_url\":\"" : "", token_url ? token_url : "",
                     token_url ? "\"" : "");
    if (n < 0 || (size_t)n >= sizeof config) {
        fprintf(stderr, "configuration too long\n");
        return 2;
    }
    char err[1024];
    uint64_t provider = 0;
    vault_status st = vault_provider_new_ex(config, &provider, err, sizeof err);
    wipe(config, sizeof config);
    if (st != VAULT_STATUS_OK) {
        fprintf(stderr, "credvault: %s: %s\n", vault_status_name(st), err);
        return 1;
    }

    static char auth[AUTH_MAX]; /* "Bearer <token>", wiped after each use */
    int status = -1;
    for (int attempt = 1; attempt <= 2; ++attempt) {
        size_t len = 0;
        st = vault_get_authorization_into(provider, auth, sizeof auth, &len, err, sizeof err);
        if (st != VAULT_STATUS_OK) {
            fprintf(stderr, "credvault: %s: %s\n", vault_status_name(st), err);
            break;
        }
        struct body b = {.len = 0};
        b.data[0] = '\0';
        status = http_get(api, auth, &b);
        printf("attempt %d: GET %s -> %d %s\n", attempt, api, status, b.data);
        if (status != 401) {
            break;
        }
        /* The API rejected this token: drop it (only if it is still the cached one: other threads
         * may have replaced it already), then retry once with a new one. */
        const char *token = strchr(auth, ' ');
        st = vault_invalidate_token(provider, token ? token + 1 : auth, err, sizeof err);
        wipe(auth, sizeof auth);
        if (st != VAULT_STATUS_OK) {
            fprintf(stderr, "credvault: %s: %s\n", vault_status_name(st), err);
            break;
        }
    }
    wipe(auth, sizeof auth);
    vault_provider_free(provider);
#ifdef EXAMPLE_WITH_CURL
    curl_global_cleanup();
#endif
    return status >= 200 && status < 300 ? 0 : 1;
}

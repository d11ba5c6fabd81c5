// Test support for the C++ tests: the local identity provider (`credvault idp --demo`) as a child
// process on loopback, and its admin API over a tiny HTTP/1.1 client. No exceptions and no
// GoogleTest here, so the -fno-exceptions test uses it too.
//
// Environment: CREDVAULT_IDP (base URL of a running idp started with --demo) or CREDVAULT_BIN
// (the `credvault` binary, run as `credvault idp --demo --exit-on-stdin-eof`).
#ifndef CREDVAULT_TEST_SUPPORT_HPP
#define CREDVAULT_TEST_SUPPORT_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern char **environ;

namespace testsupport {

struct HttpResponse {
    int status = 0; // 0: no answer
    std::string body;
};

/// One HTTP/1.1 request to 127.0.0.1:port with Connection: close.
inline HttpResponse http(int port, const char *method, const std::string &path,
                         const std::string &body = std::string(),
                         const std::string &extra_headers = std::string())
{
    HttpResponse r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return r;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        close(fd);
        return r;
    }
    std::string req = std::string(method) + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                      std::to_string(port) + "\r\nConnection: close\r\n" + extra_headers;
    if (!body.empty() || std::strcmp(method, "POST") == 0) {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    }
    req += "\r\n" + body;
    size_t off = 0;
    while (off < req.size()) {
        ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            close(fd);
            return r;
        }
        off += static_cast<size_t>(n);
    }
    std::string resp;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0) {
            break;
        }
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        resp.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (resp.compare(0, 9, "HTTP/1.1 ") != 0 && resp.compare(0, 9, "HTTP/1.0 ") != 0) {
        return r;
    }
    r.status = std::atoi(resp.c_str() + 9);
    size_t head_end = resp.find("\r\n\r\n");
    if (head_end != std::string::npos) {
        r.body = resp.substr(head_end + 4);
    }
    return r;
}

/// The number under "key" in the flat object "map":{...} of a JSON text (0 when absent).
inline long json_map_number(const std::string &json, const std::string &map,
                            const std::string &key)
{
    size_t m = json.find("\"" + map + "\":{");
    if (m == std::string::npos) {
        return 0;
    }
    size_t end = json.find('}', m);
    size_t k = json.find("\"" + key + "\":", m);
    if (k == std::string::npos || k > end) {
        return 0;
    }
    return std::atol(json.c_str() + k + key.size() + 3);
}

/// The local identity provider: started once per process (or found through CREDVAULT_IDP).
class Idp {
  public:
    static Idp &get()
    {
        static Idp idp;
        return idp;
    }

    bool ok() const { return port_ > 0; }
    const std::string &base() const { return base_; }
    int port() const { return port_; }

    std::string vgs_token_url() const
    {
        return base_ + "/vgs/auth/realms/vgs/protocol/openid-connect/token";
    }

    /// Registers a VGS client with a unique id; returns the id. The secret is `id + "-secret"`.
    std::string add_vgs_client(const std::string &name, int lifetime_s = 3600)
    {
        static std::atomic<int> counter{0};
        std::string id = "cpp-" + name + "-" + std::to_string(getpid()) + "-" +
                         std::to_string(counter.fetch_add(1));
        std::string body = "{\"dialect\":\"vgs\",\"client_id\":\"" + id +
                           "\",\"client_secret\":\"" + id + "-secret\",\"lifetime_s\":" +
                           std::to_string(lifetime_s) + "}";
        HttpResponse r = http(port_, "POST", "/_idp/clients", body);
        if (r.status != 201) {
            std::fprintf(stderr, "# POST /_idp/clients -> %d\n", r.status);
            return std::string();
        }
        return id;
    }

    /// Token requests that named `client_id` (any outcome); -1 if the stats cannot be read.
    long token_requests(const std::string &client_id)
    {
        HttpResponse r = http(port_, "GET", "/_idp/stats");
        if (r.status != 200) {
            return -1;
        }
        return json_map_number(r.body, "by_client", client_id);
    }

    /// Tokens issued to `client_id`; -1 if the stats cannot be read.
    long tokens_issued(const std::string &client_id)
    {
        HttpResponse r = http(port_, "GET", "/_idp/stats");
        if (r.status != 200) {
            return -1;
        }
        return json_map_number(r.body, "issued_by_client", client_id);
    }

    Idp(const Idp &) = delete;
    Idp &operator=(const Idp &) = delete;

    ~Idp()
    {
        if (stdin_fd_ >= 0) {
            close(stdin_fd_); // --exit-on-stdin-eof: the idp exits
        }
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int st = 0;
            waitpid(pid_, &st, 0);
        }
    }

  private:
    Idp()
    {
        if (const char *url = std::getenv("CREDVAULT_IDP")) {
            set_base(url);
            return;
        }
        const char *bin = std::getenv("CREDVAULT_BIN");
        if (bin == nullptr) {
            std::fprintf(stderr, "# set CREDVAULT_BIN (the credvault binary) or CREDVAULT_IDP\n");
            return;
        }
        int in[2], out[2];
        if (pipe(in) != 0 || pipe(out) != 0) {
            return;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        char arg0[] = "credvault", arg1[] = "idp", arg2[] = "--demo",
             arg3[] = "--exit-on-stdin-eof";
        char *argv[] = {arg0, arg1, arg2, arg3, nullptr};
        int rc = posix_spawn(&pid_, bin, &fa, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        if (rc != 0) {
            std::fprintf(stderr, "# posix_spawn %s: %s\n", bin, std::strerror(rc));
            pid_ = -1;
            close(in[1]);
            close(out[0]);
            return;
        }
        stdin_fd_ = in[1];
        std::string line;
        char c;
        while (line.size() < 200) {
            pollfd p{out[0], POLLIN, 0};
            if (poll(&p, 1, 20000) <= 0 || read(out[0], &c, 1) != 1 || c == '\n') {
                break;
            }
            line += c;
        }
        close(out[0]);
        const std::string prefix = "credvault-idp listening on ";
        if (line.compare(0, prefix.size(), prefix) != 0) {
            std::fprintf(stderr, "# unexpected idp banner (%zu bytes)\n", line.size());
            return;
        }
        set_base(line.substr(prefix.size()));
    }

    void set_base(const std::string &url)
    {
        base_ = url;
        size_t colon = url.rfind(':');
        port_ = colon == std::string::npos ? 0 : std::atoi(url.c_str() + colon + 1);
    }

    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    std::string base_;
    int port_ = 0;
};

/// The settings_json that points a VGS preset at the local idp.
inline std::string loopback_settings()
{
    return "{\"token_url\":\"" + Idp::get().vgs_token_url() + "\"}";
}

} // namespace testsupport

#endif

// A small payment service in C++17: takes tokens for VGS from credvault (credvault.hpp) and calls
// an API with them.
//
//   payment_service API_URL
//
// Environment: CREDVAULT_CLIENT_ID, CREDVAULT_CLIENT_SECRET (required); CREDVAULT_TOKEN_URL
// overrides the preset's token endpoint (e.g. the local identity provider on loopback).
//
// GETs API_URL with the Authorization header; on a 401 it invalidates exactly the rejected token
// and retries once. Prints the API's status and body, never the token. Exit status 0 on a 2xx.
// HTTP through libcurl when built with EXAMPLE_WITH_CURL (CMakeLists.txt does when it finds
// CURL), else through a plain socket (http:// only).
//
// Build: CMakeLists.txt (find_package(credvault CONFIG)).
#include <credvault.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#ifdef EXAMPLE_WITH_CURL
#include <curl/curl.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#endif

namespace {

struct Response {
    int status = -1;
    std::string body;
};

#ifdef EXAMPLE_WITH_CURL

size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    static_cast<std::string *>(userdata)->append(ptr, size * nmemb);
    return size * nmemb;
}

Response http_get(const std::string &url, const credvault::SecretString &authorization)
{
    Response r;
    CURL *curl = curl_easy_init();
    if (curl == nullptr) {
        return r;
    }
    // The header line: one buffer, reserved first so that it is never reallocated, then wiped;
    // curl keeps a copy of its own until curl_slist_free_all.
    std::string header;
    header.reserve(16 + authorization.size());
    header.append("Authorization: ").append(authorization.reveal());
    curl_slist *headers = curl_slist_append(nullptr, header.c_str());
    credvault::detail::wipe(header.data(), header.size());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    long status = -1;
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    r.status = static_cast<int>(status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return r;
}

#else

Response http_get(const std::string &url, const credvault::SecretString &authorization)
{
    Response r;
    if (url.compare(0, 7, "http://") != 0) {
        std::cerr << "only http:// URLs without libcurl\n";
        return r;
    }
    std::string rest = url.substr(7);
    size_t slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t colon = hostport.rfind(':');
    std::string host = hostport.substr(0, colon);
    std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *ai = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0) {
        return r;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    bool connected = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!connected) {
        if (fd >= 0) {
            close(fd);
        }
        return r;
    }
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + hostport +
                          "\r\nConnection: close\r\nAuthorization: ";
    request.reserve(request.size() + authorization.size() + 4); // never reallocated: one copy
    request.append(authorization.reveal());
    request.append("\r\n\r\n");
    bool sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size());
    credvault::detail::wipe(request.data(), request.size());
    if (!sent) {
        close(fd);
        return r;
    }
    std::string response;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        response.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (std::sscanf(response.c_str(), "HTTP/1.%*d %d", &r.status) != 1) {
        r.status = -1;
        return r;
    }
    size_t body = response.find("\r\n\r\n");
    if (body != std::string::npos) {
        r.body = response.substr(body + 4);
    }
    return r;
}

#endif

std::string env(const char *name)
{
    const char *v = std::getenv(name);
    return v ? v : "";
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " API_URL\n";
        return 2;
    }
    const std::string api = argv[1];
    const std::string token_url = env("CREDVAULT_TOKEN_URL");
    if (env("CREDVAULT_CLIENT_ID").empty() || env("CREDVAULT_CLIENT_SECRET").empty()) {
        std::cerr << "set CREDVAULT_CLIENT_ID and CREDVAULT_CLIENT_SECRET\n";
        return 2;
    }
#ifdef EXAMPLE_WITH_CURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
#endif
    int rc = 1;
    try {
        // The settings are a JSON object; the loopback override replaces the preset's endpoint.
        std::string settings;
        if (!token_url.empty()) {
            settings = "{\"token_url\":\"" + token_url + "\"}";
        }
        const credvault::Provider vgs = credvault::Provider::from_preset(
            "vgs", std::getenv("CREDVAULT_CLIENT_ID"), std::getenv("CREDVAULT_CLIENT_SECRET"),
            settings);

        for (int attempt = 1; attempt <= 2; ++attempt) {
            credvault::SecretString auth = vgs.authorization(); // wiped when it goes
            Response r = http_get(api, auth);
            std::cout << "attempt " << attempt << ": GET " << api << " -> " << r.status << " "
                      << r.body << "\n";
            if (r.status != 401) {
                rc = r.status >= 200 && r.status < 300 ? 0 : 1;
                break;
            }
            vgs.invalidate(auth); // exactly this token, then retry once
        }
    } catch (const credvault::Error &e) {
        std::cerr << "credvault: " << credvault::status_name(e.status()) << ": " << e.what()
                  << "\n";
    }
#ifdef EXAMPLE_WITH_CURL
    curl_global_cleanup();
#endif
    return rc;
}

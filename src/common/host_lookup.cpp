// lookup_host_addresses(): getaddrinfo(), or c-ares' ares_getaddrinfo() in the static build.
#include <xrayd/common/host_lookup.h>

#include <xrayd_config.h>

#include <netdb.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#if XRAYD_STATIC_RELEASE
#include <ares.h>
#endif

namespace xrayd {
namespace {

std::string lower_first(std::string text) {
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    }
    return text;
}

void append(std::vector<sockaddr_storage>& out, const sockaddr* addr, std::size_t length) {
    if (addr != nullptr && length <= sizeof(sockaddr_storage)) {
        sockaddr_storage s{};
        std::memcpy(&s, addr, length);
        out.push_back(s);
    }
}

#if XRAYD_STATIC_RELEASE

struct Lookup {
    bool done = false;
    int status = ARES_SUCCESS;
    std::vector<sockaddr_storage> addresses;
};

void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* answer) {
    auto& lookup = *static_cast<Lookup*>(arg);
    lookup.done = true;
    lookup.status = status;
    if (answer == nullptr) {
        return;
    }
    for (const ares_addrinfo_node* n = answer->nodes; n != nullptr; n = n->ai_next) {
        append(lookup.addresses, n->ai_addr, n->ai_addrlen);
    }
    ares_freeaddrinfo(answer);
}

HostLookupError ares_error(int status) {
    HostLookupError e;
    e.kind = (status == ARES_ENOTFOUND || status == ARES_ENODATA)
                 ? HostLookupError::Kind::no_such_host
                 : HostLookupError::Kind::other;
    e.text = e.kind == HostLookupError::Kind::no_such_host ? "no such host"
                                                           : lower_first(ares_strerror(status));
    return e;
}

using Channel = std::unique_ptr<std::remove_pointer_t<ares_channel>, decltype(&ares_destroy)>;

Result<std::vector<sockaddr_storage>, HostLookupError> lookup(const std::string& host,
                                                              int socktype) {
    static std::once_flag once;
    static int init_status = ARES_SUCCESS;
    std::call_once(once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (init_status != ARES_SUCCESS) {
        return fail(ares_error(init_status));
    }
    ares_channel raw = nullptr;
    if (const int rc = ares_init(&raw); rc != ARES_SUCCESS) {
        return fail(ares_error(rc));
    }
    const Channel channel(raw, &ares_destroy);
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    Lookup result;
    ares_getaddrinfo(channel.get(), host.c_str(), nullptr, &hints, &on_answer, &result);
    // c-ares' own timeouts and retries (resolv.conf) bound this loop; it ends with on_answer.
    while (!result.done) {
        ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
        const int mask = ares_getsock(channel.get(), sockets, ARES_GETSOCK_MAXNUM);
        pollfd fds[ARES_GETSOCK_MAXNUM];
        nfds_t count = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
            const short events = static_cast<short>((ARES_GETSOCK_READABLE(mask, i) ? POLLIN : 0) |
                                                    (ARES_GETSOCK_WRITABLE(mask, i) ? POLLOUT : 0));
            if (events != 0) {
                fds[count++] = pollfd{sockets[i], events, 0};
            }
        }
        timeval tv{};
        const timeval* wait = ares_timeout(channel.get(), nullptr, &tv);
        const int timeout_ms =
            wait == nullptr ? 1000 : static_cast<int>(wait->tv_sec * 1000 + wait->tv_usec / 1000);
        if (::poll(fds, count, timeout_ms) < 0 && errno != EINTR) {
            HostLookupError e{HostLookupError::Kind::system, errno, std::strerror(errno)};
            return fail(std::move(e));
        }
        if (count == 0) {
            ares_process_fd(channel.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
        }
        for (nfds_t i = 0; i < count; ++i) {
            ares_process_fd(
                channel.get(),
                (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0 ? fds[i].fd : ARES_SOCKET_BAD,
                (fds[i].revents & POLLOUT) != 0 ? fds[i].fd : ARES_SOCKET_BAD);
        }
    }
    if (result.status != ARES_SUCCESS) {
        return fail(ares_error(result.status));
    }
    return std::move(result.addresses);
}

#else

Result<std::vector<sockaddr_storage>, HostLookupError> lookup(const std::string& host,
                                                              int socktype) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0) {
        HostLookupError e;
        if (rc == EAI_NONAME || rc == EAI_NODATA) {
            e.kind = HostLookupError::Kind::no_such_host;
            e.text = "no such host";
        } else if (rc == EAI_SYSTEM) {
            e.kind = HostLookupError::Kind::system;
            e.system_errno = errno;
            e.text = std::strerror(errno);
        } else {
            e.text = lower_first(::gai_strerror(rc));
        }
        return fail(std::move(e));
    }
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
    std::vector<sockaddr_storage> out;
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
        append(out, a->ai_addr, a->ai_addrlen);
    }
    return out;
}

#endif

}  // namespace

Result<std::vector<sockaddr_storage>, HostLookupError> lookup_host_addresses(
    const std::string& host, int socktype) {
    return lookup(host, socktype);
}

}  // namespace xrayd

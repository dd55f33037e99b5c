// notify_socket_send() and watchdog_usec_for(): systemd's notify protocol in a few lines.
#include <xrayd/admin/notify_socket.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string>

#include <xrayd/common/unique_fd.h>

namespace xrayd {
namespace {

// True when text is a decimal number and nothing else; the number goes to out.
bool parse_decimal(const char* text, std::uint64_t& out) noexcept {
    if (text == nullptr || *text == '\0') {
        return false;
    }
    const char* end = text + std::strlen(text);
    const auto [ptr, ec] = std::from_chars(text, end, out);
    return ec == std::errc() && ptr == end;
}

}  // namespace

int notify_socket_send(std::string_view socket_path, std::string_view message) noexcept {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() < 2 || socket_path.size() >= sizeof addr.sun_path ||
        (socket_path[0] != '/' && socket_path[0] != '@')) {
        return -EINVAL;
    }
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    if (socket_path[0] == '@') {
        addr.sun_path[0] = '\0';  // abstract namespace: the length below delimits the name
    }
    const auto length =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path.size());
    const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return -errno;
    }
    const ssize_t sent = ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&addr), length);
    if (sent < 0) {
        return -errno;
    }
    return static_cast<std::size_t>(sent) == message.size() ? 0 : -EMSGSIZE;
}

std::uint64_t watchdog_usec_for(const char* usec, const char* pid, pid_t self) noexcept {
    std::uint64_t period = 0;
    if (!parse_decimal(usec, period)) {
        return 0;
    }
    if (pid != nullptr) {
        std::uint64_t owner = 0;
        if (!parse_decimal(pid, owner) || owner != static_cast<std::uint64_t>(self)) {
            return 0;
        }
    }
    return period;
}

}  // namespace xrayd

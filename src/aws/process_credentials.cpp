// The credential_process source: `sh -c command` printing a JSON credential document.
#include <xrayd/aws/credential_chain.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include <xrayd/common/unique_fd.h>

#include "credentials_json.h"
#include "hash.h"
#include "text_util.h"

extern char** environ;

namespace xrayd {

namespace {

using aws_detail::credentials_from_json;
using aws_detail::wipe;

class ProcessSource final : public CredentialsSource {
    using JsonValue = aws_detail::JsonValue;

public:
    ProcessSource(std::string command, std::chrono::milliseconds timeout)
        : command_(std::move(command)), timeout_(timeout) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        auto output = run();
        if (!output) {
            return fail(output.error());
        }
        auto doc = aws_detail::parse_json_object(output.value());
        if (!doc) {
            wipe(output.value());
            return fail(fmt::format("credential_process: {}", doc.error()));
        }
        const JsonValue* version = doc.value().find("Version");
        if (version == nullptr || version->kind != JsonValue::Kind::number ||
            version->text != "1") {
            wipe(output.value());
            return fail(std::string("credential_process: the output's Version is not 1"));
        }
        auto credentials =
            credentials_from_json("credential_process", output.value(), "SessionToken", false);
        wipe(output.value());
        return credentials;
    }
    std::string_view name() const noexcept override { return "credential_process"; }

private:
    Result<std::string, std::string> run() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return fail(fmt::format("credential_process: pipe: {}", std::strerror(errno)));
        }
        UniqueFd read_end(fds[0]);
        UniqueFd write_end(fds[1]);
        posix_spawn_file_actions_t actions;
        if (posix_spawn_file_actions_init(&actions) != 0) {
            return fail(std::string("credential_process: posix_spawn_file_actions_init failed"));
        }
        (void)posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
        std::string sh = "/bin/sh";
        std::string dash_c = "-c";
        char* argv[] = {sh.data(), dash_c.data(), command_.data(), nullptr};
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        write_end.reset();
        if (rc != 0) {
            return fail(fmt::format("credential_process: cannot start /bin/sh: {}",
                                    std::strerror(rc)));
        }
        std::string output;
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        bool timed_out = false;
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                timed_out = true;
                break;
            }
            pollfd p{read_end.get(), POLLIN, 0};
            const int n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                timed_out = n == 0;
                break;
            }
            char buf[4096];
            const ssize_t got = ::read(read_end.get(), buf, sizeof buf);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                break;
            }
            if (output.size() + static_cast<std::size_t>(got) > max_output) {
                timed_out = false;
                (void)::kill(pid, SIGKILL);
                break;
            }
            output.reserve(max_output);  // one buffer: no reallocation leaves secret copies
            output.append(buf, static_cast<std::size_t>(got));
            wipe_buffer(buf, sizeof buf);
        }
        if (timed_out) {
            (void)::kill(pid, SIGKILL);
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (timed_out) {
            wipe(output);
            return fail(fmt::format("credential_process timed out after {} ms", timeout_.count()));
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            wipe(output);
            const std::string how = WIFEXITED(status)
                                        ? fmt::format("status {}", WEXITSTATUS(status))
                                        : std::string("a signal");
            return fail(fmt::format("credential_process exited with {}", how));
        }
        return output;
    }
    static void wipe_buffer(char* buf, std::size_t size) noexcept {
        volatile char* p = buf;  // volatile: the compiler may not drop the stores
        for (std::size_t i = 0; i < size; ++i) {
            p[i] = 0;
        }
    }

    static constexpr std::size_t max_output = 64 * 1024;
    std::string command_;
    std::chrono::milliseconds timeout_;
};

}  // namespace

std::unique_ptr<CredentialsSource> make_process_credentials_source(
    std::string command, std::chrono::milliseconds timeout) {
    return std::make_unique<ProcessSource>(std::move(command), timeout);
}

}  // namespace xrayd

// The credential_process source: `sh -c command` printing a JSON credential document, run in
// its own process group and killed with it on timeout or shutdown.
#include <xrayd/aws/credential_chain.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include <xrayd/common/unique_fd.h>

#include "credentials_json.h"
#include "hash.h"
#include "json_reader.h"

extern char** environ;

namespace xrayd {

namespace {

using aws_detail::credentials_from_json;
using aws_detail::wipe;

class ProcessSource final : public CredentialsSource {
    using JsonValue = aws_detail::JsonValue;

public:
    ProcessSource(std::string command, std::chrono::milliseconds timeout,
                  std::shared_ptr<const Cancellation> cancel)
        : command_(std::move(command)), timeout_(timeout), cancel_(std::move(cancel)) {}

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
        if (is_cancelled(cancel_.get())) {
            return fail(std::string(cancelled_message));
        }
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return fail(fmt::format("credential_process: pipe: {}", std::strerror(errno)));
        }
        UniqueFd read_end(fds[0]);
        UniqueFd write_end(fds[1]);
        // Only our end: the command's stdout stays blocking.
        if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) {
            return fail(fmt::format("credential_process: fcntl: {}", std::strerror(errno)));
        }
        auto pid = spawn(write_end.get());
        write_end.reset();
        if (!pid) {
            return fail(pid.error());
        }
        Child child(pid.value());
        std::string output;
        output.reserve(max_output);  // one buffer: no reallocation leaves secret copies
        const Outcome outcome = collect(read_end, child, output);
        // The whole group goes, the command's leftover children too; then the command is reaped
        // (only now, so its pid, which names the group, cannot be reused in between).
        (void)::kill(-child.pid, SIGKILL);
        const int status = child.reap();
        if (outcome != Outcome::exited) {
            wipe(output);
            switch (outcome) {
            case Outcome::cancelled: return fail(std::string(cancelled_message));
            case Outcome::too_long:
                return fail(fmt::format("credential_process: the output is longer than {} bytes",
                                        max_output));
            case Outcome::failed:
                return fail(std::string("credential_process: reading its output failed"));
            default:
                return fail(
                    fmt::format("credential_process timed out after {} ms", timeout_.count()));
            }
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

    // reading: only between drain() and collect(): the pipe is empty for now.
    enum class Outcome { exited, timed_out, cancelled, too_long, failed, reading };

    // The spawned /bin/sh: its pid (also its process group) and a pidfd that polls readable
    // once it has exited (invalid on kernels before 5.3: then exit is checked every 20 ms).
    struct Child {
        explicit Child(pid_t p)
            : pid(p), exit_fd(static_cast<int>(::syscall(SYS_pidfd_open, p, 0))) {}
        Child(const Child&) = delete;
        Child& operator=(const Child&) = delete;
        // True once it has exited; it stays a zombie (not reaped) until reap().
        bool exited() const noexcept {
            siginfo_t info{};
            return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) ==
                       0 &&
                   info.si_pid == pid;
        }
        int reap() noexcept {
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return status;
        }
        pid_t pid;
        UniqueFd exit_fd;
    };

    // `sh -c command` with stdout on `out`, in a new process group, with an empty signal mask
    // and default dispositions: the daemon blocks its shutdown signals and ignores SIGPIPE, and
    // a child would inherit both.
    Result<pid_t, std::string> spawn(int out) {
        posix_spawn_file_actions_t actions;
        if (posix_spawn_file_actions_init(&actions) != 0) {
            return fail(std::string("credential_process: posix_spawn_file_actions_init failed"));
        }
        posix_spawnattr_t attr;
        if (posix_spawnattr_init(&attr) != 0) {
            posix_spawn_file_actions_destroy(&actions);
            return fail(std::string("credential_process: posix_spawnattr_init failed"));
        }
        sigset_t none;
        sigset_t all;
        sigemptyset(&none);
        sigfillset(&all);
        sigdelset(&all, SIGKILL);
        sigdelset(&all, SIGSTOP);
        int rc = posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO);
        if (rc == 0) {
            rc = posix_spawnattr_setflags(
                &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        }
        if (rc == 0) {
            rc = posix_spawnattr_setpgroup(&attr, 0);  // a group of its own, named by its pid
        }
        if (rc == 0) {
            rc = posix_spawnattr_setsigmask(&attr, &none);
        }
        if (rc == 0) {
            rc = posix_spawnattr_setsigdefault(&attr, &all);
        }
        pid_t pid = 0;
        if (rc == 0) {
            std::string sh = "/bin/sh";
            std::string dash_c = "-c";
            char* argv[] = {sh.data(), dash_c.data(), command_.data(), nullptr};
            rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ);
        }
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            return fail(
                fmt::format("credential_process: cannot start /bin/sh: {}", std::strerror(rc)));
        }
        return pid;
    }

    // Reads the command's stdout until the command has exited (then what it left in the pipe),
    // the deadline passes, the cancellation fires or the output is too long. A closed stdout
    // does not end the wait: the exit does.
    Outcome collect(const UniqueFd& in, const Child& child, std::string& output) {
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        bool pipe_open = true;
        while (true) {
            if (is_cancelled(cancel_.get())) {
                return Outcome::cancelled;
            }
            const bool exited = child.exited();
            if (pipe_open) {
                const Outcome drained = drain(in, output, pipe_open);
                if (drained != Outcome::reading) {
                    return drained;
                }
            }
            if (exited) {
                return Outcome::exited;  // what it wrote before exiting was drained above
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return Outcome::timed_out;
            }
            pollfd p[3];
            nfds_t n = 0;
            if (pipe_open) {
                p[n++] = pollfd{in.get(), POLLIN, 0};
            }
            if (child.exit_fd) {
                p[n++] = pollfd{child.exit_fd.get(), POLLIN, 0};
            }
            if (cancel_) {
                p[n++] = pollfd{cancel_->fd(), POLLIN, 0};
            }
            const long wait_ms = child.exit_fd ? left.count() : std::min<long>(left.count(), 20);
            if (::poll(p, n, static_cast<int>(wait_ms)) < 0 && errno != EINTR) {
                return Outcome::failed;
            }
        }
    }

    // Reads what the pipe holds now; pipe_open turns false at EOF. `reading` means "go on".
    Outcome drain(const UniqueFd& in, std::string& output, bool& pipe_open) {
        char buf[4096];
        while (true) {
            const ssize_t got = ::read(in.get(), buf, sizeof buf);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return Outcome::reading;
            }
            if (got <= 0) {
                pipe_open = false;
                return got == 0 ? Outcome::reading : Outcome::failed;
            }
            if (output.size() + static_cast<std::size_t>(got) > max_output) {
                wipe_buffer(buf, sizeof buf);
                return Outcome::too_long;
            }
            output.append(buf, static_cast<std::size_t>(got));
            wipe_buffer(buf, sizeof buf);
        }
    }

    static void wipe_buffer(char* buf, std::size_t size) noexcept {
        volatile char* p = buf;  // volatile: the compiler may not drop the stores
        for (std::size_t i = 0; i < size; ++i) {
            p[i] = 0;
        }
    }

    static constexpr std::size_t max_output = 64 * 1024;
    static constexpr std::string_view cancelled_message =
        "credential_process: cancelled by shutdown";
    std::string command_;
    std::chrono::milliseconds timeout_;
    std::shared_ptr<const Cancellation> cancel_;
};

}  // namespace

std::unique_ptr<CredentialsSource> make_process_credentials_source(
    std::string command, std::chrono::milliseconds timeout,
    std::shared_ptr<const Cancellation> cancel) {
    return std::make_unique<ProcessSource>(std::move(command), timeout, std::move(cancel));
}

}  // namespace xrayd

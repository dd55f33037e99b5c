// The credential_process source against real processes: the timeout holds whatever the command
// does with its stdout, its whole process group goes, it starts with a clean signal state, and
// shutdown cancels it.
#include <xrayd/aws/credential_chain.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <xrayd/http/cancellation.h>

namespace xrayd {
namespace {

using namespace std::chrono_literals;

constexpr const char* json =
    R"({"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "s", "SessionToken": "t"})";

std::string temp_path(const std::string& name) {
    return "/tmp/xrayd-process-test-" + std::to_string(::getpid()) + "-" + name;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The pid the command wrote to `path` (its background child), waiting for the file.
pid_t written_pid(const std::string& path) {
    for (int i = 0; i < 500; ++i) {
        const std::string text = read_file(path);
        if (!text.empty() && text.back() == '\n') {
            return static_cast<pid_t>(std::stol(text));
        }
        std::this_thread::sleep_for(10ms);
    }
    return 0;
}

// Gone, or a zombie nobody has reaped yet (init in a container may be slow to): either way it
// runs no more. Waits up to 5 s for the kill to land.
bool dead(pid_t pid) {
    for (int i = 0; i < 500; ++i) {
        if (::kill(pid, 0) != 0) {
            return true;
        }
        const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        const std::size_t close = stat.rfind(')');
        if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

// The process whose pid the command wrote to `pid_file` is dead; removes the file.
bool written_pid_dead(const std::string& pid_file) {
    const pid_t pid = written_pid(pid_file);
    std::remove(pid_file.c_str());
    return pid > 0 && dead(pid);
}

class Lines final : public LogSink {
public:
    void write(std::string_view) noexcept override {}
};

}  // namespace

TEST_CASE("regression: a credential_process that closes stdout and sleeps is killed at the "
          "timeout, its children with it, and start-up does not wait longer") {
    const std::string pid_file = temp_path("sleeper");
    std::remove(pid_file.c_str());
    // The shell closes its stdout, leaves a sleeping child, and waits for it.
    auto source = make_process_credentials_source(
        "exec >&-; sleep 60 & echo $! > " + pid_file + "; wait", 500ms);
    SystemCredentialsClock clock;
    Logger logger(LogLevel::error, std::make_unique<Lines>());
    const auto start = std::chrono::steady_clock::now();
    // The start-up path: the first fetch runs in the constructor.
    RefreshingCredentialsProvider provider(std::move(source), clock, logger);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(provider.current() == nullptr);
    CHECK(took < 30s);  // the sleeper lives 60 s: anything below proves the wait was cut
    CHECK(written_pid_dead(pid_file));
}

TEST_CASE("regression: a credential_process that exits leaving a child on its stdout gives its "
          "credentials at once, and the child is killed") {
    const std::string pid_file = temp_path("leftover");
    std::remove(pid_file.c_str());
    auto source = make_process_credentials_source(
        "sleep 60 & echo $! > " + pid_file + "; printf '%s' '" + std::string(json) + "'", 30s);
    const auto start = std::chrono::steady_clock::now();
    auto r = source->fetch();
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_MESSAGE(r.ok(), r.error());
    CHECK(r.value()->access_key_id == "AKIDPROC");
    CHECK(took < 30s);  // not the 30 s timeout, not the child's 60 s
    CHECK(written_pid_dead(pid_file));
}

TEST_CASE("regression: a credential_process starts in its own process group with no blocked "
          "signals and SIGPIPE at its default, whatever the daemon's signal state") {
    // The daemon's state: shutdown signals blocked (read from a signalfd), SIGPIPE ignored.
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigset_t old_mask;
    REQUIRE(pthread_sigmask(SIG_BLOCK, &blocked, &old_mask) == 0);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction old_pipe {};
    REQUIRE(sigaction(SIGPIPE, &ignore, &old_pipe) == 0);

    const std::string status_file = temp_path("status");
    // Builtins only: the shell reads its own state (dash blocks every signal around a fork, so a
    // child would see that instead).
    auto source = make_process_credentials_source(
        "while read -r key value; do case $key in SigBlk:|SigIgn:) echo \"$key $value\";; esac; "
        "done < /proc/self/status > " +
            status_file +
            "; read -r stat < /proc/self/stat; set -- $stat; echo \"pgrp $5 pid $$\" >> " +
            status_file + "; printf '%s' '" + std::string(json) + "'",
        30s);
    auto r = source->fetch();
    REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, nullptr) == 0);
    REQUIRE(sigaction(SIGPIPE, &old_pipe, nullptr) == 0);
    REQUIRE_MESSAGE(r.ok(), r.error());

    std::istringstream lines(read_file(status_file));
    std::string line;
    std::string sig_blk;
    std::string sig_ign;
    std::string pgrp;
    std::string pid;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string key;
        words >> key;
        if (key == "SigBlk:") {
            words >> sig_blk;
        } else if (key == "SigIgn:") {
            words >> sig_ign;
        } else if (key == "pgrp") {
            words >> pgrp >> key >> pid;
        }
    }
    CHECK(sig_blk == "0000000000000000");
    REQUIRE(sig_ign.size() == 16);
    const unsigned long long ignored = std::stoull(sig_ign, nullptr, 16);
    CHECK((ignored & (1ULL << (SIGPIPE - 1))) == 0);
    CHECK_FALSE(pgrp.empty());
    CHECK(pgrp == pid);  // leader of its own group
    CHECK(pgrp != std::to_string(::getpgrp()));
    std::remove(status_file.c_str());
}

TEST_CASE("regression: shutdown cancels a credential_process that hangs, and kills it") {
    const std::string pid_file = temp_path("cancelled");
    std::remove(pid_file.c_str());
    auto cancel = Cancellation::create();
    auto source =
        make_process_credentials_source("echo $$ > " + pid_file + "; sleep 60", 60s, cancel);
    std::thread stopper([&] {
        (void)written_pid(pid_file);
        cancel->cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = source->fetch();
    const auto took = std::chrono::steady_clock::now() - start;
    stopper.join();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "credential_process: cancelled by shutdown");
    CHECK(took < 30s);
    CHECK(written_pid_dead(pid_file));
    // Once cancelled, a later fetch does not even start the command.
    CHECK_FALSE(source->fetch().ok());
    CHECK(read_file(pid_file).empty());
    std::remove(pid_file.c_str());
}

TEST_CASE("regression: a credential_process that prints a CR/LF in its SessionToken is refused") {
    auto source = make_process_credentials_source(
        R"(printf '{"Version": 1, "AccessKeyId": "AKID", "SecretAccessKey": "s", )"
        R"("SessionToken": "tok\\r\\nX-Injected: yes"}')",
        30s);
    auto r = source->fetch();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "credential_process: SessionToken contains a control character (CR, LF or "
                       "another byte below 0x20, or DEL); refusing these credentials");
}

}  // namespace xrayd

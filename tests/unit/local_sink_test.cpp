// Tests of the LocalSink: batch bodies appended as lines to a local file, no torn line.
#include <xrayd/upload/local_sink.h>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/batch/batch.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/stats/counters.h>

#include "temp_dir.h"
#include "upload_fixture.h"

using namespace std::chrono_literals;
using xrayd::Counter;
using xrayd::test::drive;
using xrayd::test::generous_deadline;
using xrayd::test::Harness;
using xrayd::test::read_file;
using xrayd::test::TempDir;

namespace {

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

}  // namespace

TEST_CASE("LocalSink appends each batch body as one line and counts it sent") {
    Harness h;
    const TempDir dir;
    const std::string path = dir.write("out.jsonl", "existing line\n").string();
    auto sink = xrayd::LocalSink::create(path, h.counters, h.logger);
    xrayd::Batch a = h.make_batch(2);
    xrayd::Batch b = h.make_batch(3);
    const std::string body_a(a.body());
    const std::string body_b(b.body());
    sink->submit(std::move(a));
    sink->submit(std::move(b));
    CHECK(sink->held_segments() == 5);
    REQUIRE(drive(*sink, [&] { return h.get(Counter::batches_sent) == 2; }));
    CHECK(h.get(Counter::segments_sent) == 5);
    CHECK(sink->held_segments() == 0);
    const auto lines = read_lines(path);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "existing line");
    CHECK(lines[1] == body_a);
    CHECK(lines[2] == body_b);
    CHECK(h.log->contains(fmt::format("[Info] Wrote batch of 2 segments to {}", path)));
}

TEST_CASE("LocalSink keeps a batch whose write failed and logs the error") {
    Harness h;
    auto sink = xrayd::LocalSink::create("/dev/full", h.counters, h.logger);
    sink->submit(h.make_batch(2));
    sink->run_once(0ms);
    sink->run_once(0ms);
    CHECK(h.get(Counter::segments_sent) == 0);
    CHECK(sink->held_segments() == 2);
    CHECK(h.log->contains("[Error] Writing batch of 2 segments to /dev/full failed"));
    CHECK(sink->abandon() == 2);
    CHECK(sink->held_segments() == 0);
}

TEST_CASE("LocalSink::create throws when the file cannot be opened") {
    Harness h;
    CHECK_THROWS_AS(
        (void)xrayd::LocalSink::create("/nonexistent-dir/out.jsonl", h.counters, h.logger),
        xrayd::StartupError);
}

TEST_CASE("LocalSink creates its file 0600 and refuses a symbolic link") {
    Harness h;
    const TempDir dir;
    const mode_t old = ::umask(0);
    auto sink = xrayd::LocalSink::create((dir.path() / "out.jsonl").string(), h.counters, h.logger);
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((dir.path() / "out.jsonl").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    const auto target = dir.path() / "elsewhere";
    std::ofstream(target) << "precious\n";
    std::filesystem::create_symlink(target, dir.path() / "link.jsonl");
    std::string message;
    try {
        (void)xrayd::LocalSink::create((dir.path() / "link.jsonl").string(), h.counters, h.logger);
    } catch (const xrayd::StartupError& e) {
        message = e.what();
    }
    CHECK(message.find("it is a symbolic link, which xrayd does not follow") != std::string::npos);
    CHECK(read_file(target) == "precious\n");
}

TEST_CASE("a LocalSink write cut short (file size limit) leaves no torn line, then or after") {
    Harness h;
    const TempDir dir;
    const auto path = dir.path() / "out.jsonl";
    auto sink = xrayd::LocalSink::create(path.string(), h.counters, h.logger);
    sink->submit(h.make_batch(3));
    sink->run_once(0ms);
    const std::string first = read_file(path);
    REQUIRE(first.size() > 200);
    REQUIRE(first.back() == '\n');

    // The kernel writes up to RLIMIT_FSIZE, then refuses (EFBIG): half a line on disk.
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = first.size() + 100;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    sink->submit(h.make_batch(3));
    sink->run_once(0ms);
    const std::string during = read_file(path);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved) == 0);
    std::signal(SIGXFSZ, old_handler);

    CHECK(during == first);  // the 100 bytes written were taken back
    CHECK(sink->held_segments() == 3);
    CHECK(h.log->contains("File too large"));
    // With room again the batch is written whole, once.
    sink->run_once(0ms);
    const std::string after = read_file(path);
    CHECK(after.size() == 2 * first.size());
    CHECK(std::count(after.begin(), after.end(), '\n') == 2);
    CHECK(h.get(Counter::segments_sent) == 6);
    CHECK(sink->abandon() == 0);
}

TEST_CASE("LocalSink abandon finishes a line begun on a full pipe instead of leaving it torn") {
    Harness h;
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    xrayd::UniqueFd read_end(fds[0]);
    xrayd::UniqueFd write_end(fds[1]);
    REQUIRE(::fcntl(write_end.get(), F_SETPIPE_SZ, 4096) >= 0);
    // The sink writes to stdout ("-"): stdout is the pipe while it is created.
    std::fflush(stdout);
    const xrayd::UniqueFd saved_stdout(::dup(STDOUT_FILENO));
    REQUIRE(saved_stdout);
    REQUIRE(::dup2(write_end.get(), STDOUT_FILENO) == STDOUT_FILENO);
    auto sink = xrayd::LocalSink::create("-", h.counters, h.logger);
    REQUIRE(::dup2(saved_stdout.get(), STDOUT_FILENO) == STDOUT_FILENO);
    write_end.reset();

    xrayd::Batch batch = h.make_batch(50);
    const std::string line = std::string(batch.body()) + "\n";
    REQUIRE(line.size() > 4096);  // more than the pipe holds
    sink->submit(std::move(batch));
    sink->run_once(0ms);  // fills the pipe: part of the line is out, the rest waits (EAGAIN)
    CHECK(sink->held_segments() == 50);

    std::string received;
    std::thread reader([&] {
        const auto until = std::chrono::steady_clock::now() + generous_deadline;
        while (received.size() < line.size() && std::chrono::steady_clock::now() < until) {
            pollfd pfd{read_end.get(), POLLIN, 0};
            if (::poll(&pfd, 1, 100) <= 0) {
                continue;
            }
            char buffer[4096];
            const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
            if (n > 0) {
                received.append(buffer, static_cast<std::size_t>(n));
            }
        }
    });
    const std::size_t abandoned = sink->abandon();
    reader.join();
    CHECK(abandoned == 0);
    CHECK(received == line);
    CHECK(h.get(Counter::segments_sent) == 50);
}

TEST_CASE("LocalSink wakeup ends a run_once wait early") {
    Harness h;
    const TempDir dir;
    auto sink = xrayd::LocalSink::create((dir.path() / "out.jsonl").string(), h.counters, h.logger);
    sink->wakeup();
    const auto start = std::chrono::steady_clock::now();
    sink->run_once(30s);
    CHECK(std::chrono::steady_clock::now() - start < 15s);
}

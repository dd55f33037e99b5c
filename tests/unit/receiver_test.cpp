// Tests for the receiver backends (epoll + recvmmsg, io_uring), the backend probe and choice,
// and the per-core helpers, with real sockets on loopback. Every receiver test runs once per
// backend available on the machine.
#include <xrayd/net/receiver.h>

#include <doctest/doctest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <xrayd_config.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <initializer_list>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/common/startup_error.h>
#include <xrayd/flow/flow_control.h>
#include <xrayd/net/io_backend.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd/net/wake_pacer.h>
#include <xrayd/stats/summary.h>

#include "captured_log.h"
#include "loopback.h"

using namespace xrayd;
using namespace std::chrono_literals;

namespace {

constexpr auto deadline = 20s;

// The probe runs once per test binary, as in the daemon.
const IoUringSupport& io_uring_support() {
    static const IoUringSupport support = probe_io_uring();
    return support;
}

// epoll always; io_uring when the probe passes. XRAYD_REQUIRE_IO_URING=1 (CI on a kernel that
// has it) turns "io_uring unavailable" into a failure instead of a note.
std::vector<IoBackend> backends_under_test() {
    std::vector<IoBackend> backends{IoBackend::epoll};
    if (io_uring_support().available) {
        backends.push_back(IoBackend::io_uring);
    } else {
        const char* required = std::getenv("XRAYD_REQUIRE_IO_URING");
        if (required != nullptr && std::string_view(required) == "1") {
            FAIL("io_uring required but unavailable: " << io_uring_support().reason);
        }
        MESSAGE("SKIP(kernel: io_uring unavailable, testing epoll only: "
                << io_uring_support().reason << ")");
    }
    return backends;
}

// Records every datagram and writes over the padding the receiver promises.
class Collector final : public DatagramHandler {
public:
    explicit Collector(std::size_t padding) : padding_(padding) {}

    void on_datagrams(std::span<Datagram> batch) noexcept override {
        std::lock_guard lock(mutex_);
        for (Datagram& d : batch) {
            std::memset(d.data + d.len, 0xAB, padding_);  // must be writable
            payloads_.emplace_back(d.data, d.len);
            truncated_.push_back(d.truncated);
        }
        ++batches_;
        max_batch_ = std::max(max_batch_, batch.size());
        received_.fetch_add(batch.size(), std::memory_order_release);
        changed_.notify_all();
    }

    // Waits until `done()` holds (checked on every batch and every `poll` interval).
    template <typename Pred>
    bool wait_for(Pred done, std::chrono::milliseconds poll = 50ms) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        std::unique_lock lock(mutex_);
        while (!done()) {
            if (std::chrono::steady_clock::now() >= until) {
                return false;
            }
            changed_.wait_for(lock, poll);
        }
        return true;
    }

    [[nodiscard]] std::size_t received() const { return received_.load(std::memory_order_acquire); }
    std::vector<std::string> payloads() {
        std::lock_guard lock(mutex_);
        return payloads_;
    }
    std::vector<bool> truncated() {
        std::lock_guard lock(mutex_);
        return truncated_;
    }
    std::size_t max_batch() {
        std::lock_guard lock(mutex_);
        return max_batch_;
    }

private:
    std::size_t padding_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> payloads_;
    std::vector<bool> truncated_;
    std::size_t batches_ = 0;
    std::size_t max_batch_ = 0;
    std::atomic<std::size_t> received_{0};
};

// Runs a receiver on its own thread; stop_and_join() proves run() returns within a deadline.
class RunningReceiver {
public:
    explicit RunningReceiver(Receiver& receiver) : receiver_(receiver) {
        thread_ = std::thread([this] {
            receiver_.run();
            returned_.set_value();
        });
    }
    ~RunningReceiver() {
        if (thread_.joinable()) {
            receiver_.stop();
            thread_.join();
        }
    }
    // True when run() returned within the deadline after stop().
    bool stop_and_join() {
        auto done = returned_.get_future();
        receiver_.stop();
        const bool in_time = done.wait_for(deadline) == std::future_status::ready;
        thread_.join();
        return in_time;
    }

private:
    Receiver& receiver_;
    std::promise<void> returned_;
    std::thread thread_;
};

struct Sender {
    UniqueFd fd;
    UdpAddress to;

    explicit Sender(const std::string& address) {
        auto r = resolve_udp_address(address);
        REQUIRE(r.ok());
        to = r.value();
        fd.reset(::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd.valid());
    }
    // Thread-safe (no doctest assertions): true when the whole datagram was sent.
    bool send(std::string_view payload) const {
        const ssize_t n = ::sendto(fd.get(), payload.data(), payload.size(), 0,
                                   reinterpret_cast<const sockaddr*>(&to.storage), to.length);
        return n == static_cast<ssize_t>(payload.size());
    }
};

// A payload whose bytes all depend on (sender, index), of varying length.
std::string make_payload(int sender, int index) {
    std::string p = "s" + std::to_string(sender) + "-i" + std::to_string(index) + ":";
    const std::size_t len = 16 + static_cast<std::size_t>((sender * 131 + index * 17) % 1200);
    for (std::size_t k = p.size(); k < len; ++k) {
        p.push_back(static_cast<char>('a' + (k + static_cast<std::size_t>(index)) % 26));
    }
    return p;
}

struct Harness {
    Logger logger{LogLevel::error};
    Counters counters;
    ReceiverOptions options;
    Collector collector;
    std::string address;
    std::unique_ptr<Receiver> receiver;

    Harness(IoBackend backend, const std::string& listen, ReceiverOptions opts,
            std::size_t rcvbuf = 4194304, DatagramHandler* handler = nullptr)
        : options(opts), collector(opts.padding) {
        auto sockets = open_udp_sockets(listen, 1, rcvbuf, logger);
        address = local_address(sockets[0].get());
        receiver =
            make_receiver(backend, std::move(sockets[0]), handler != nullptr ? *handler : collector,
                          counters, logger, options, io_uring_support());
        REQUIRE(receiver->backend() == to_string(backend));
    }
};

void check_exactly_once_delivery(IoBackend backend, const std::string& listen) {
    Harness h(backend, listen, ReceiverOptions{});
    RunningReceiver running(*h.receiver);

    constexpr int senders = 4;
    constexpr int per_sender = 500;
    constexpr std::size_t window = 64;  // in flight per sender: never overflows a socket buffer
    std::atomic<std::size_t> sent{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s) {
        threads.emplace_back([&, s] {
            Sender sender(h.address);
            for (int i = 0; i < per_sender; ++i) {
                const auto until = std::chrono::steady_clock::now() + deadline;
                while (sent.load() >= h.collector.received() + window * senders &&
                       std::chrono::steady_clock::now() < until) {
                    std::this_thread::yield();
                }
                if (!sender.send(make_payload(s, i))) {
                    failures.fetch_add(1);
                }
                sent.fetch_add(1);
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    REQUIRE(failures.load() == 0);
    constexpr std::size_t total = senders * per_sender;
    CHECK(h.collector.wait_for([&] { return h.collector.received() >= total; }));
    CHECK(running.stop_and_join());

    std::map<std::string, int> seen;
    for (const auto& p : h.collector.payloads()) {
        ++seen[p];
    }
    CHECK(h.collector.received() == total);
    CHECK(seen.size() == total);
    int missing_or_duplicated = 0;
    for (int s = 0; s < senders; ++s) {
        for (int i = 0; i < per_sender; ++i) {
            auto it = seen.find(make_payload(s, i));
            if (it == seen.end() || it->second != 1) {
                ++missing_or_duplicated;
            }
        }
    }
    CHECK(missing_or_duplicated == 0);
    for (bool t : h.collector.truncated()) {
        REQUIRE_FALSE(t);
    }
    CHECK(h.counters.get(Counter::kernel_drops) == 0);
    CHECK(h.counters.get(Counter::datagrams_received) == 0);  // the handler's job, not ours
    CHECK(h.collector.max_batch() <= h.options.batch);
}

}  // namespace

TEST_CASE("every backend delivers every datagram from several senders exactly once") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        check_exactly_once_delivery(backend, "127.0.0.1:0");
        if (test::ipv6_loopback_available()) {
            check_exactly_once_delivery(backend, "[::1]:0");
        } else {
            MESSAGE("SKIP(kernel: IPv6 loopback unavailable)");
        }
    }
}

TEST_CASE("a datagram larger than the slot arrives truncated to the slot size") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        ReceiverOptions options;
        options.slot_bytes = 100;
        options.padding = 64;
        options.batch = 4;
        Harness h(backend, "127.0.0.1:0", options);
        RunningReceiver running(*h.receiver);
        Sender sender(h.address);
        const std::string big(500, 'x');
        const std::string exact(100, 'y');
        const std::string small = "fits";
        const std::string empty;
        REQUIRE(sender.send(big));
        REQUIRE(sender.send(exact));
        REQUIRE(sender.send(small));
        REQUIRE(sender.send(empty));
        CHECK(h.collector.wait_for([&] { return h.collector.received() >= 4; }));
        CHECK(running.stop_and_join());
        const auto payloads = h.collector.payloads();
        const auto truncated = h.collector.truncated();
        REQUIRE(payloads.size() == 4);
        CHECK(payloads[0] == std::string(100, 'x'));
        CHECK(truncated[0]);
        CHECK(payloads[1] == exact);
        CHECK_FALSE(truncated[1]);
        CHECK(payloads[2] == small);
        CHECK_FALSE(truncated[2]);
        CHECK(payloads[3].empty());
        CHECK_FALSE(truncated[3]);
    }
}

namespace {

// A receiver on a socket with the smallest buffer the kernel allows, easy to overflow.
struct TinyBufferReceiver {
    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector{64};
    std::string address;
    UniqueFd observer;  // a second descriptor of the same socket, for the test's own looks
    std::unique_ptr<Receiver> receiver;

    explicit TinyBufferReceiver(IoBackend backend) {
        auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
        address = local_address(sockets[0].get());
        const int tiny = 1;  // the kernel rounds this up to its minimum (a few KiB)
        REQUIRE(::setsockopt(sockets[0].get(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny) == 0);
        observer.reset(::dup(sockets[0].get()));
        REQUIRE(observer);
        receiver = make_receiver(backend, std::move(sockets[0]), collector, counters, logger,
                                 ReceiverOptions{}, io_uring_support());
    }
};

}  // namespace

#ifdef XRAYD_HAVE_SO_RXQ_OVFL
TEST_CASE("datagrams the kernel dropped on a full socket buffer are counted as kernel_drops") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        TinyBufferReceiver t(backend);
        Counters& counters = t.counters;
        Collector& collector = t.collector;
        const std::string& address = t.address;
        Receiver* receiver = t.receiver.get();

        // Overflow the buffer while nobody reads.
        Sender sender(address);
        const std::string payload(200, 'd');
        for (int i = 0; i < 2000; ++i) {
            REQUIRE(sender.send(payload));
        }
        CHECK(counters.get(Counter::kernel_drops) == 0);  // nothing read yet

        RunningReceiver running(*receiver);
        std::uint64_t markers = 0;
        // SO_RXQ_OVFL stamps the drop count on datagrams queued after the drops, so keep
        // sending one more until the receiver has seen a stamped one.
        const bool counted = collector.wait_for([&] {
            if (counters.get(Counter::kernel_drops) > 0) {
                return true;
            }
            markers += sender.send("marker") ? 1 : 0;
            return false;
        });
        CHECK(counted);
        CHECK(running.stop_and_join());
        const std::uint64_t drops = counters.get(Counter::kernel_drops);
        CHECK(drops > 0);
        CHECK(drops <= 2000 + markers);  // deltas, not a sum of cumulative stamps
        MESSAGE(to_string(backend) << ": kernel dropped " << drops << " of 2000, receiver got "
                                   << collector.received());
    }
}
#endif

namespace {

// The kernel's drop count of a socket now (SO_MEMINFO).
std::uint32_t meminfo_drops(int fd) {
    std::uint32_t meminfo[SK_MEMINFO_VARS] = {};
    socklen_t length = sizeof meminfo;
    REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &length) == 0);
    return meminfo[SK_MEMINFO_DROPS];
}

// The drops column of /proc/net/udp for the IPv4 socket bound to `port`, or -1.
long proc_net_udp_drops(unsigned port) {
    std::ifstream in("/proc/net/udp");
    std::string line;
    std::getline(in, line);  // header
    const std::string local = fmt::format(":{:04X}", port);
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot;
        std::string address;
        fields >> slot >> address;
        if (address.size() < local.size() ||
            address.compare(address.size() - local.size(), local.size(), local) != 0) {
            continue;
        }
        std::string last;
        for (std::string f; fields >> f;) {
            last = f;
        }
        return std::stol(last);
    }
    return -1;
}

}  // namespace

TEST_CASE("kernel_drops of a burst dropped while nobody read are counted from SO_MEMINFO "
          "without another datagram, and once only") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        TinyBufferReceiver t(backend);
        Sender sender(t.address);
        const std::string payload(200, 'd');
        for (int i = 0; i < 2000; ++i) {
            REQUIRE(sender.send(payload));
        }
        const std::uint32_t kernel = meminfo_drops(t.observer.get());
        REQUIRE(kernel > 0);
        CHECK(t.counters.get(Counter::kernel_drops) == 0);  // nothing delivered or stamped
        t.receiver->sync_kernel_drops();  // what /metrics, the summary and the exit do
        CHECK(t.counters.get(Counter::kernel_drops) == kernel);
        const auto port = std::stoul(t.address.substr(t.address.rfind(':') + 1));
        CHECK(proc_net_udp_drops(static_cast<unsigned>(port)) == static_cast<long>(kernel));

        // Reading the queue (stamped with older counts) and syncing again adds nothing.
        RunningReceiver running(*t.receiver);
        CHECK(t.collector.wait_for([&] { return t.collector.received() > 0; }));
        CHECK(running.stop_and_join());
        t.receiver->sync_kernel_drops();
        CHECK(t.counters.get(Counter::kernel_drops) == meminfo_drops(t.observer.get()));
        CHECK(t.counters.get(Counter::kernel_drops) == kernel);
    }
}

TEST_CASE("stop() from another thread makes an idle run() return promptly") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        Harness h(backend, "127.0.0.1:0", ReceiverOptions{});
        RunningReceiver running(*h.receiver);
        CHECK(running.stop_and_join());
    }
}

TEST_CASE("stop() makes run() return promptly while datagrams keep arriving") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        ReceiverOptions options;
        options.batch = 8;
        Harness h(backend, "127.0.0.1:0", options);
        std::atomic<bool> flooding{true};
        std::thread flood([&] {
            Sender sender(h.address);
            while (flooding.load()) {
                (void)sender.send("flood");
            }
        });
        {
            RunningReceiver running(*h.receiver);
            CHECK(h.collector.wait_for([&] { return h.collector.received() > 100; }));
            CHECK(running.stop_and_join());
        }
        flooding.store(false);
        flood.join();
    }
}

TEST_CASE("run() returns when stop() came first on an empty socket, and stays stopped") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        Harness h(backend, "127.0.0.1:0", ReceiverOptions{});
        h.receiver->stop();
        h.receiver->run();  // would block forever if the stop were lost
        h.receiver->run();
        CHECK(h.collector.received() == 0);
    }
}

TEST_CASE("after stop(), run() hands over what the socket already held before returning") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        Harness h(backend, "127.0.0.1:0", ReceiverOptions{});
        Sender sender(h.address);
        constexpr int count = 500;  // more than one batch, well inside the 4 MiB buffer
        for (int i = 0; i < count; ++i) {
            REQUIRE(sender.send(make_payload(0, i)));
        }
        // Loopback delivery is synchronous: all 500 sit in the socket's queue now.
        h.receiver->stop();
        h.receiver->run();
        CHECK(h.collector.received() == count);
        const auto payloads = h.collector.payloads();
        REQUIRE(payloads.size() == static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) {
            CHECK(payloads[static_cast<std::size_t>(i)] == make_payload(0, i));
        }
    }
}

namespace {

// Holds the receiver inside its first on_datagrams() call until released, so the test can
// queue datagrams and call stop() while the receiver is busy.
class GatedHandler final : public DatagramHandler {
public:
    explicit GatedHandler(Collector& inner) : inner_(inner) {}

    void on_datagrams(std::span<Datagram> batch) noexcept override {
        if (!first_done_) {
            first_done_ = true;
            entered_.set_value();
            release_.wait();
        }
        inner_.on_datagrams(batch);
    }
    bool wait_entered() { return entered_future_.wait_for(deadline) == std::future_status::ready; }
    void release() { release_promise_.set_value(); }

private:
    Collector& inner_;
    bool first_done_ = false;
    std::promise<void> entered_;
    std::future<void> entered_future_ = entered_.get_future();
    std::promise<void> release_promise_;
    std::shared_future<void> release_ = release_promise_.get_future().share();
};

}  // namespace

TEST_CASE("stop() while the handler is busy still delivers everything that arrived, in order") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        ReceiverOptions options;
        options.batch = 16;
        Collector collector(options.padding);
        GatedHandler gated(collector);
        Harness h(backend, "127.0.0.1:0", options, 4194304, &gated);
        Sender sender(h.address);
        RunningReceiver running(*h.receiver);
        REQUIRE(sender.send(make_payload(1, 0)));
        REQUIRE(gated.wait_entered());
        // The receiver is inside the handler; an io_uring receive is still armed, so these
        // land partly in the ring's buffers, partly in the socket.
        constexpr int count = 400;
        for (int i = 1; i < count; ++i) {
            REQUIRE(sender.send(make_payload(1, i)));
        }
        h.receiver->stop();
        gated.release();
        CHECK(running.stop_and_join());
        const auto payloads = collector.payloads();
        REQUIRE(payloads.size() == static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) {
            CHECK(payloads[static_cast<std::size_t>(i)] == make_payload(1, i));
        }
    }
}

namespace {

// A handler that asks for pacing and records, per datagram, when it was sent (from its payload),
// its received_at and when it was handed over.
// A handler that is its own receiver's pace source, as the daemon's Ingest is.
class PacedCollector final : public DatagramHandler, public PaceSource {
public:
    struct Record {
        std::chrono::steady_clock::time_point sent;
        TimePoint received_at;
        TimePoint handed_over;
    };

    explicit PacedCollector(DeliveryPace pace) : pace_(pace) {}

    void on_datagrams(std::span<Datagram> batch) noexcept override {
        const TimePoint now = Clock::now();
        std::lock_guard lock(mutex_);
        for (const Datagram& d : batch) {
            const std::string text(d.data, d.len);
            const auto sent = std::chrono::steady_clock::time_point(
                std::chrono::steady_clock::duration(std::stoll(text)));
            records_.push_back({sent, d.received_at, now});
        }
        ++hand_overs_;
    }
    [[nodiscard]] DeliveryPace pace() const noexcept override { return pace_; }

    std::vector<Record> records() {
        std::lock_guard lock(mutex_);
        return records_;
    }
    std::size_t hand_overs() {
        std::lock_guard lock(mutex_);
        return hand_overs_;
    }
    bool wait_for_count(std::size_t n) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        while (records().size() < n) {
            if (std::chrono::steady_clock::now() >= until) {
                return false;
            }
            std::this_thread::sleep_for(1ms);
        }
        return true;
    }

private:
    DeliveryPace pace_;
    std::mutex mutex_;
    std::vector<Record> records_;
    std::size_t hand_overs_ = 0;
};

// Sends `count` datagrams, one every `gap`, each carrying its send time.
void send_paced(const Sender& sender, int count, std::chrono::microseconds gap) {
    auto next = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        std::this_thread::sleep_until(next);
        next += gap;
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        REQUIRE(sender.send(std::to_string(now)));
    }
}

}  // namespace

TEST_CASE("WakePacer sleeps for the time `wanted` datagrams take, within its bounds") {
    const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
    const DeliveryPace pace{50, 100ms};
    WakePacer pacer(64);
    CHECK(pacer.next_sleep(0, t0, pace) == Duration::zero());  // the first wake-up: no rate yet
    // 4 datagrams per 1 ms tick, i.e. 4000/s: 50 of them less an eighth for the estimate's
    // error (44) take 11 ms.
    Duration sleep{};
    for (int i = 1; i <= 20; ++i) {
        sleep = pacer.next_sleep(4, t0 + i * 1ms, pace);
    }
    CHECK(pacer.rate() == doctest::Approx(4000.0).epsilon(0.01));
    CHECK(sleep > 10900us);
    CHECK(sleep < 11100us);
    // Bounded by the hold limit, and by the capacity (32 datagrams at 4000/s: 8 ms).
    WakePacer copy = pacer;
    CHECK(copy.next_sleep(4, t0 + 21ms, DeliveryPace{50, 5ms}) == 5ms);
    WakePacer small(32);
    for (int i = 1; i <= 20; ++i) {
        sleep = small.next_sleep(4, t0 + i * 1ms, pace);
    }
    CHECK(sleep > 7ms);
    CHECK(sleep < 9ms);
}

TEST_CASE("WakePacer wakes on arrival without a hint, at high rates, and once traffic stops") {
    const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
    WakePacer pacer(1024);
    (void)pacer.next_sleep(0, t0, DeliveryPace{50, 100ms});
    // No hint (wanted 0, or no hold limit): every arrival wakes the receiver.
    CHECK(pacer.next_sleep(4, t0 + 1ms, DeliveryPace{}) == Duration::zero());
    CHECK(pacer.next_sleep(4, t0 + 2ms, DeliveryPace{50, Duration::zero()}) == Duration::zero());
    // 200 000/s: 50 datagrams take 0.25 ms, less than a timer is worth (once the rate
    // estimate has caught up with the jump from 4000/s).
    for (int i = 1; i <= 20; ++i) {
        const Duration s = pacer.next_sleep(200, t0 + 2ms + i * 1ms, DeliveryPace{50, 100ms});
        if (i > 10) {
            CHECK(s == Duration::zero());
        }
    }
    // 1000/s: a timed sleep; a sleep that collects nothing goes back to waking on arrival.
    WakePacer slow(1024);
    (void)slow.next_sleep(0, t0, DeliveryPace{50, 100ms});
    Duration sleep{};
    for (int i = 1; i <= 20; ++i) {
        sleep = slow.next_sleep(10, t0 + i * 10ms, DeliveryPace{50, 100ms});
    }
    CHECK(sleep > 40ms);
    CHECK(slow.next_sleep(0, t0 + 250ms, DeliveryPace{50, 100ms}) == Duration::zero());
}

TEST_CASE("a paced receiver hands steady traffic over in groups, stamped when its sleep began") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        PacedCollector paced(DeliveryPace{20, 1s});
        ReceiverOptions paced_options;
        paced_options.pace = &paced;
        Harness h(backend, "127.0.0.1:0", paced_options, 4194304, &paced);
        Sender sender(h.address);
        RunningReceiver running(*h.receiver);

        // 400 datagrams at about 2000/s: unpaced, a hand-over each; paced, about 20 each.
        constexpr int steady = 400;
        send_paced(sender, steady, 500us);
        REQUIRE(paced.wait_for_count(steady));
        CHECK(paced.hand_overs() <= steady / 4);
        int held = 0;
        int stamped_at_arrival = 0;
        for (const auto& r : paced.records()) {
            CHECK(r.received_at <= r.handed_over);
            // A datagram that waited in the socket during a paced sleep is stamped no later
            // than its arrival, so a batcher's linger counts that wait: received_at is not
            // after the send (1 ms of slack for the clock reads). A datagram can also wait
            // because the receiver thread lost its CPU (a loaded machine); that one is stamped
            // when it is read, as it should be. So most, not all, held datagrams must carry
            // the early stamp; stamping after the sleep (the defect) gives none.
            if (r.handed_over - r.sent > 5ms) {
                ++held;
                stamped_at_arrival += r.received_at <= r.sent + 1ms ? 1 : 0;
            }
        }
        CHECK(held > 0);  // pacing did hold datagrams back
        CHECK(stamped_at_arrival * 4 >= held * 3);

        // Traffic stops; the next sleep collects nothing and the receiver waits for the first
        // arrival again: a lone datagram is handed over at once, not after the 1 s hold.
        std::this_thread::sleep_for(300ms);
        send_paced(sender, 1, 0us);
        REQUIRE(paced.wait_for_count(steady + 1));
        const auto lone = paced.records().back();
        CHECK(lone.handed_over - lone.sent < 300ms);

        // stop() during a paced sleep ends it within the hold limit.
        std::thread more([&] { send_paced(sender, 200, 500us); });
        std::this_thread::sleep_for(50ms);
        const auto stopping = std::chrono::steady_clock::now();
        CHECK(running.stop_and_join());
        CHECK(std::chrono::steady_clock::now() - stopping < 1s + 500ms);
        more.join();
    }
}

TEST_CASE("a paced receiver never holds a datagram much past the hold limit") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        // 25 datagrams/s with 30 wanted would mean 1.2 s sleeps; the hold limit is 50 ms.
        PacedCollector paced(DeliveryPace{30, 50ms});
        ReceiverOptions paced_options;
        paced_options.pace = &paced;
        Harness h(backend, "127.0.0.1:0", paced_options, 4194304, &paced);
        Sender sender(h.address);
        RunningReceiver running(*h.receiver);
        constexpr int count = 50;
        send_paced(sender, count, 40ms);
        REQUIRE(paced.wait_for_count(count));
        for (const auto& r : paced.records()) {
            CHECK(r.handed_over - r.sent < 50ms + 300ms);  // slack for a loaded machine
        }
        CHECK(running.stop_and_join());
    }
}

TEST_CASE("a burst into 4 receive slots loses nothing; io_uring counts its exhausted buffer ring "
          "as ring_buffers_exhausted, epoll never does") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        ReceiverOptions options;
        options.batch = 4;
        options.ring_buffers = 4;  // a burst of 300 cannot fit: the ring runs empty repeatedly
        Harness h(backend, "127.0.0.1:0", options);
        Sender sender(h.address);
        constexpr int count = 300;
        for (int i = 0; i < count; ++i) {
            REQUIRE(sender.send(make_payload(2, i)));
        }
        RunningReceiver running(*h.receiver);
        CHECK(h.collector.wait_for([&] { return h.collector.received() >= count; }));
        CHECK(running.stop_and_join());
        const std::uint64_t exhausted = h.counters.get(Counter::ring_buffers_exhausted);
        if (backend == IoBackend::io_uring) {
            CHECK(exhausted > 0);
            MESSAGE("buffer ring ran empty " << exhausted << " times");
        } else {
            CHECK(exhausted == 0);
        }
        CHECK(h.counters.get(Counter::kernel_drops) == 0);
        // Exported like every other counter: the exit summary (and /metrics) iterate counters.h.
        CHECK(format_summary(h.counters.snapshot(), 0)
                  .find(" ring_buffers_exhausted=" + std::to_string(exhausted) + " ") !=
              std::string::npos);
        const auto payloads = h.collector.payloads();
        REQUIRE(payloads.size() == static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) {
            CHECK(payloads[static_cast<std::size_t>(i)] == make_payload(2, i));
        }
        CHECK(h.collector.max_batch() <= options.batch);
    }
}

TEST_CASE("both receiver factories reject empty slots and batches") {
    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector(0);
    for (ReceiverOptions bad : {ReceiverOptions{0, 64, 32}, ReceiverOptions{65536, 64, 0}}) {
        auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
        CHECK_THROWS_AS(
            (void)make_epoll_receiver(std::move(sockets[0]), collector, counters, logger, bad),
            StartupError);
        sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
        CHECK_THROWS_AS(
            (void)make_io_uring_receiver(std::move(sockets[0]), collector, counters, logger, bad),
            StartupError);
    }
    CHECK_THROWS_AS((void)make_epoll_receiver(UniqueFd(), collector, counters, logger),
                    StartupError);
    CHECK_THROWS_AS((void)make_io_uring_receiver(UniqueFd(), collector, counters, logger),
                    StartupError);
}

TEST_CASE("make_io_uring_receiver rejects a buffer ring that is not a power of two >= batch") {
    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector(0);
    for (std::size_t ring_buffers : {std::size_t{12}, std::size_t{16}, std::size_t{65536}}) {
        CAPTURE(ring_buffers);
        ReceiverOptions bad;
        bad.batch = 32;
        bad.ring_buffers = ring_buffers;
        auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
        CHECK_THROWS_AS(
            (void)make_io_uring_receiver(std::move(sockets[0]), collector, counters, logger, bad),
            StartupError);
    }
}

TEST_CASE("probe_io_uring gives a reason exactly when io_uring is unavailable") {
    const IoUringSupport support = probe_io_uring();
    CHECK(support.available == support.reason.empty());
    CHECK(support.available == io_uring_support().available);  // repeatable
    MESSAGE("io_uring: " << (support.available ? "available" : support.reason));
    if (support.available) {
        // The probe's promise: the real receiver can be built on this machine.
        Logger logger{LogLevel::error};
        Counters counters;
        Collector collector(0);
        auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
        CHECK(
            make_io_uring_receiver(std::move(sockets[0]), collector, counters, logger)->backend() ==
            "io_uring");
    }
}

TEST_CASE("parse_io_backend accepts exactly auto, io_uring and epoll") {
    CHECK(parse_io_backend("auto") == IoBackend::auto_);
    CHECK(parse_io_backend("io_uring") == IoBackend::io_uring);
    CHECK(parse_io_backend("epoll") == IoBackend::epoll);
    for (const char* bad : {"", "Auto", "io-uring", "iouring", "EPOLL", "epoll "}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_io_backend(bad).has_value());
    }
    for (const IoBackend b : {IoBackend::auto_, IoBackend::io_uring, IoBackend::epoll}) {
        CHECK(parse_io_backend(to_string(b)) == b);
    }
}

TEST_CASE("auto picks io_uring when the probe passes and falls back to epoll with the reason") {
    const IoUringSupport yes{true, {}};
    const IoUringSupport no{false, "io_uring_setup: Operation not permitted (test)"};
    CHECK(resolve_io_backend(IoBackend::auto_, yes) == IoBackend::io_uring);
    CHECK(resolve_io_backend(IoBackend::auto_, no) == IoBackend::epoll);
    CHECK(resolve_io_backend(IoBackend::epoll, yes) == IoBackend::epoll);
    CHECK(resolve_io_backend(IoBackend::io_uring, yes) == IoBackend::io_uring);
    CHECK(backend_choice_message(IoBackend::auto_, yes) == "Receive backend: io_uring");
    CHECK(backend_choice_message(IoBackend::io_uring, yes) == "Receive backend: io_uring");
    CHECK(backend_choice_message(IoBackend::epoll, yes) == "Receive backend: epoll");
    CHECK(backend_choice_message(IoBackend::epoll, no) == "Receive backend: epoll");
    CHECK(backend_choice_message(IoBackend::auto_, no) ==
          "Receive backend: epoll (io_uring unavailable: io_uring_setup: Operation not "
          "permitted (test))");

    // make_receiver follows the same choice with a simulated "disabled" probe.
    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector(0);
    auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
    auto receiver = make_receiver(IoBackend::auto_, std::move(sockets[0]), collector, counters,
                                  logger, ReceiverOptions{}, no);
    CHECK(receiver->backend() == "epoll");
}

#if defined(__x86_64__) || defined(__aarch64__)
namespace {

// Makes the given system calls fail with `error` for the calling thread only, as a container
// runtime's seccomp profile does (a seccomp filter installed without TSYNC binds one thread).
// The fault-injection seam for the receivers: the real kernel refuses the real call.
bool block_syscalls_in_this_thread(std::initializer_list<long> numbers, int error) {
#if defined(__x86_64__)
    constexpr std::uint32_t arch = AUDIT_ARCH_X86_64;
#else
    constexpr std::uint32_t arch = AUDIT_ARCH_AARCH64;
#endif
    std::vector<sock_filter> code{
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    };
    const auto n = static_cast<std::uint8_t>(numbers.size());
    std::uint8_t i = 0;
    for (const long number : numbers) {
        // Matched: jump over the remaining tests and the ALLOW to the ERRNO return.
        code.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(number),
                                static_cast<std::uint8_t>(n - i), 0));
        ++i;
    }
    code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    code.push_back(
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(error) & SECCOMP_RET_DATA)));
    sock_fprog program{};
    program.len = static_cast<unsigned short>(code.size());
    program.filter = code.data();
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

// Makes io_uring_setup fail with EPERM for the calling thread only.
bool block_io_uring_setup_in_this_thread() {
    return block_syscalls_in_this_thread({__NR_io_uring_setup}, EPERM);
}

}  // namespace

TEST_CASE("a seccomp-blocked io_uring makes the probe say why, and auto fall back to epoll") {
    bool blocked = false;
    IoUringSupport support;
    std::thread([&] {
        blocked = block_io_uring_setup_in_this_thread();
        if (blocked) {
            support = probe_io_uring();
        }
    }).join();
    if (!blocked) {
        MESSAGE("SKIP(kernel: cannot install a seccomp filter here)");
        return;
    }
    CHECK_FALSE(support.available);
    CHECK(support.reason.find("io_uring_setup: Operation not permitted") == 0);
    CHECK(resolve_io_backend(IoBackend::auto_, support) == IoBackend::epoll);
    CHECK_THROWS_AS((void)resolve_io_backend(IoBackend::io_uring, support), StartupError);
    MESSAGE(backend_choice_message(IoBackend::auto_, support));
}
#endif

TEST_CASE("a receiver whose epoll or io_uring breaks closes its socket, counts receivers_failed, "
          "and the kernel gives its share of the traffic to the other receivers") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        auto log = std::make_shared<test::CapturedLog>();
        Logger logger{LogLevel::info, std::make_unique<test::CaptureSink>(*log)};
        Counters counters;
        Collector broken_collector(64);
        Collector survivor_collector(64);
        auto sockets = open_udp_sockets("127.0.0.1:0", 2, 4194304, logger);
        const std::string address = local_address(sockets[0].get());
        auto broken = make_receiver(backend, std::move(sockets[0]), broken_collector, counters,
                                    logger, ReceiverOptions{}, io_uring_support());
        auto survivor = make_receiver(IoBackend::epoll, std::move(sockets[1]), survivor_collector,
                                      counters, logger, ReceiverOptions{}, io_uring_support());
        RunningReceiver running(*survivor);

        // The broken receiver's thread gets EIO from the kernel for the call it waits with.
        bool blocked = false;
        std::thread([&] {
            blocked = block_syscalls_in_this_thread(
                {
#ifdef __NR_epoll_wait
                    __NR_epoll_wait,
#endif
                    __NR_epoll_pwait, __NR_epoll_pwait2, __NR_io_uring_enter},
                EIO);
            if (blocked) {
                broken->run();  // returns: nothing can be received any more
            }
        }).join();
        if (!blocked) {
            MESSAGE("cannot install a seccomp filter here, skipped");
            return;
        }
        CHECK(broken->failed());
        CHECK_FALSE(survivor->failed());
        CHECK(counters.get(Counter::receivers_failed) == 1);
        CHECK(log->contains("this " + std::string(to_string(backend)) +
                            " receiver stopped and closed its "
                            "socket"));
        broken->sync_kernel_drops();  // a closed socket has nothing left to count

        // Each datagram from its own source port: the flow hash would spread them over both
        // sockets of the group had the broken one stayed in it.
        constexpr int flows = 200;
        for (int i = 0; i < flows; ++i) {
            Sender sender(address);
            REQUIRE(sender.send("flow-" + std::to_string(i)));
        }
        CHECK(survivor_collector.wait_for(
            [&] { return survivor_collector.received() >= static_cast<std::size_t>(flows); }));
        CHECK(running.stop_and_join());
        CHECK(survivor_collector.received() == static_cast<std::size_t>(flows));
        CHECK(broken_collector.received() == 0);
        CHECK(counters.get(Counter::kernel_drops) == 0);
    }
}

TEST_CASE("forcing io_uring when it is unavailable fails at start-up naming reason and fix") {
    const IoUringSupport no{false, "disabled by sysctl kernel.io_uring_disabled=2"};
    std::string message;
    try {
        (void)resolve_io_backend(IoBackend::io_uring, no);
    } catch (const StartupError& e) {
        message = e.what();
        CHECK(e.exit_code() == 1);
    }
    CHECK(message.find("disabled by sysctl kernel.io_uring_disabled=2") != std::string::npos);
    CHECK(message.find("--io-backend=epoll") != std::string::npos);

    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector(0);
    auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
    CHECK_THROWS_AS((void)make_receiver(IoBackend::io_uring, std::move(sockets[0]), collector,
                                        counters, logger, ReceiverOptions{}, no),
                    StartupError);
}

TEST_CASE("default_receiver_count is the number of allowed CPUs, capped") {
    const std::vector<int> cpus = allowed_cpus();
    REQUIRE_FALSE(cpus.empty());
    CHECK(std::is_sorted(cpus.begin(), cpus.end()));
    const int n = static_cast<int>(cpus.size());
    CHECK(default_receiver_count() == std::min(n, 8));
    CHECK(default_receiver_count(1) == 1);
    CHECK(default_receiver_count(0) == 1);
    CHECK(default_receiver_count(1000) == n);
}

TEST_CASE("pin_current_thread_to_cpu pins the calling thread to an allowed CPU only") {
    const std::vector<int> cpus = allowed_cpus();
    std::thread([&] {
        const int cpu = cpus.back();
        CHECK(pin_current_thread_to_cpu(cpu).ok());
        cpu_set_t set;
        CPU_ZERO(&set);
        REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
        CHECK(CPU_COUNT(&set) == 1);
        CHECK(CPU_ISSET(cpu, &set));
        CHECK(::sched_getcpu() == cpu);
        const auto bad = pin_current_thread_to_cpu(-1);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error() == EINVAL);
    }).join();
}

TEST_CASE("receive_slots reports the slots each backend preallocated") {
    for (const IoBackend backend : backends_under_test()) {
        CAPTURE(to_string(backend));
        ReceiverOptions options;
        options.batch = 16;
        options.ring_buffers = 128;
        Harness h(backend, "127.0.0.1:0", options);
        // epoll reads one batch per call into its own slots; io_uring hands the kernel a ring.
        CHECK(h.receiver->receive_slots() == (backend == IoBackend::io_uring ? 128u : 16u));
    }
}

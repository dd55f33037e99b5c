// Tests for the epoll + recvmmsg receiver, with real sockets on loopback.
#include <xrayd/net/receiver.h>

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <xrayd_config.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/common/startup_error.h>
#include <xrayd/net/udp_socket.h>

using namespace xrayd;
using namespace std::chrono_literals;

namespace {

constexpr auto deadline = 20s;

bool ipv6_loopback_available() {
    UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return false;
    }
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
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

    [[nodiscard]] std::size_t received() const {
        return received_.load(std::memory_order_acquire);
    }
    std::vector<std::string> payloads() {
        std::lock_guard lock(mutex_);
        return payloads_;
    }
    std::vector<bool> truncated() {
        std::lock_guard lock(mutex_);
        return truncated_;
    }

private:
    std::size_t padding_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> payloads_;
    std::vector<bool> truncated_;
    std::size_t batches_ = 0;
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

    Harness(const std::string& listen, ReceiverOptions opts, std::size_t rcvbuf = 4194304)
        : options(opts), collector(opts.padding) {
        auto sockets = open_udp_sockets(listen, 1, rcvbuf, logger);
        address = local_address(sockets[0].get());
        receiver = make_epoll_receiver(std::move(sockets[0]), collector, counters, logger,
                                       options);
    }
};

void check_exactly_once_delivery(const std::string& listen) {
    Harness h(listen, ReceiverOptions{});
    CHECK(h.receiver->backend() == "epoll");
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
}

}  // namespace

TEST_CASE("the epoll receiver delivers every datagram from several senders exactly once") {
    SUBCASE("IPv4 loopback") {
        check_exactly_once_delivery("127.0.0.1:0");
    }
    SUBCASE("IPv6 loopback") {
        if (!ipv6_loopback_available()) {
            MESSAGE("IPv6 loopback unavailable, skipped");
            return;
        }
        check_exactly_once_delivery("[::1]:0");
    }
}

TEST_CASE("a datagram larger than the slot arrives truncated to the slot size") {
    ReceiverOptions options;
    options.slot_bytes = 100;
    options.padding = 64;
    options.batch = 4;
    Harness h("127.0.0.1:0", options);
    RunningReceiver running(*h.receiver);
    Sender sender(h.address);
    const std::string big(500, 'x');
    const std::string exact(100, 'y');
    const std::string small = "fits";
    REQUIRE(sender.send(big));
    REQUIRE(sender.send(exact));
    REQUIRE(sender.send(small));
    CHECK(h.collector.wait_for([&] { return h.collector.received() >= 3; }));
    CHECK(running.stop_and_join());
    const auto payloads = h.collector.payloads();
    const auto truncated = h.collector.truncated();
    REQUIRE(payloads.size() == 3);
    CHECK(payloads[0] == std::string(100, 'x'));
    CHECK(truncated[0]);
    CHECK(payloads[1] == exact);
    CHECK_FALSE(truncated[1]);
    CHECK(payloads[2] == small);
    CHECK_FALSE(truncated[2]);
}

#ifdef XRAYD_HAVE_SO_RXQ_OVFL
TEST_CASE("datagrams the kernel dropped on a full socket buffer are counted as kernel_drops") {
    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector(64);
    auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
    const std::string address = local_address(sockets[0].get());
    const int tiny = 1;  // the kernel rounds this up to its minimum (a few KiB)
    REQUIRE(::setsockopt(sockets[0].get(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny) == 0);
    auto receiver = make_epoll_receiver(std::move(sockets[0]), collector, counters, logger);

    // Overflow the buffer while nobody reads.
    Sender sender(address);
    const std::string payload(200, 'd');
    for (int i = 0; i < 2000; ++i) {
        REQUIRE(sender.send(payload));
    }
    CHECK(counters.get(Counter::kernel_drops) == 0);  // nothing read yet

    RunningReceiver running(*receiver);
    std::uint64_t markers = 0;
    // SO_RXQ_OVFL stamps the drop count on datagrams queued after the drops, so keep sending
    // one more until the receiver has seen a stamped one.
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
    MESSAGE("kernel dropped " << drops << " of 2000, receiver got " << collector.received());
}
#endif

TEST_CASE("stop() from another thread makes an idle run() return promptly") {
    Harness h("127.0.0.1:0", ReceiverOptions{});
    RunningReceiver running(*h.receiver);
    CHECK(running.stop_and_join());
}

TEST_CASE("stop() makes run() return promptly while datagrams keep arriving") {
    ReceiverOptions options;
    options.batch = 8;
    Harness h("127.0.0.1:0", options);
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

TEST_CASE("run() returns when stop() came first on an empty socket, and stays stopped") {
    Harness h("127.0.0.1:0", ReceiverOptions{});
    h.receiver->stop();
    h.receiver->run();  // would block forever if the stop were lost
    h.receiver->run();
    CHECK(h.collector.received() == 0);
}

TEST_CASE("after stop(), run() hands over what the socket already held before returning") {
    Harness h("127.0.0.1:0", ReceiverOptions{});
    Sender sender(h.address);
    constexpr int count = 500;  // more than one recvmmsg batch, well inside the 4 MiB buffer
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

TEST_CASE("make_epoll_receiver rejects empty slots and batches") {
    Logger logger{LogLevel::error};
    Counters counters;
    Collector collector(0);
    for (ReceiverOptions bad : {ReceiverOptions{0, 64, 32}, ReceiverOptions{65536, 64, 0}}) {
        auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, logger);
        CHECK_THROWS_AS((void)make_epoll_receiver(std::move(sockets[0]), collector, counters,
                                                  logger, bad),
                        StartupError);
    }
    CHECK_THROWS_AS((void)make_epoll_receiver(UniqueFd(), collector, counters, logger),
                    StartupError);
}

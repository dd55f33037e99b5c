// The epoll + recvmmsg receiver backend.
#include <xrayd/net/receiver.h>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>

#include <xrayd/common/error_text.h>
#include <xrayd/common/event_fd.h>
#include <xrayd/common/startup_error.h>

#include <xrayd/flow/flow_control.h>
#include <xrayd/net/wake_pacer.h>
#include "mmsg_reader.h"
#include "slot_pool.h"

namespace xrayd {

namespace {

using net_detail::MmsgReader;
using net_detail::ReadResult;
using net_detail::ReadStatus;
using net_detail::ReceiveSocket;
using net_detail::SlotPool;

// recvmmsg calls per readiness notification before going back to epoll_wait, so a flood
// cannot keep stop() waiting (8 x 32 datagrams by default).
constexpr int max_rounds_per_wakeup = 8;
// At stop, what the socket holds is read out: a 4 MiB receive buffer holds at most a few
// thousand batches of small datagrams.
constexpr int max_rounds_at_stop = 4096;
constexpr std::uint64_t socket_tag = 0;
constexpr std::uint64_t stop_tag = 1;
constexpr auto error_log_interval = std::chrono::seconds(10);

class EpollReceiver final : public Receiver {
public:
    EpollReceiver(UniqueFd socket, UniqueFd epoll, EventFd stop_event, SlotPool slots,
                  DatagramHandler& handler, const PaceSource* pace, Counters& counters,
                  Logger& logger)
        : socket_(std::move(socket), counters),
          epoll_(std::move(epoll)),
          stop_event_(std::move(stop_event)),
          slots_(std::move(slots)),
          handler_(handler),
          pace_(pace),
          logger_(logger),
          reader_(slots_, slots_.count(), 0) {}

    void run() noexcept override {
        std::array<epoll_event, 2> events{};
        WakePacer pacer(max_rounds_per_wakeup * slots_.count() / 2);
        std::size_t collected = 0;  // datagrams the last wake-up read
        TimePoint woke = Clock::now();
        while (!stop_requested_.load(std::memory_order_acquire)) {
            const Duration sleep = pacer.next_sleep(collected, woke, pace_of(pace_));
            if (sleep > Duration::zero()) {
                // Paced: sleep on the stop event alone while the socket gathers datagrams;
                // what it gathers arrived after the last wake-up.
                sleep_unless_stopped(sleep);
                const TimePoint since = woke;
                woke = Clock::now();
                collected =
                    stop_requested_.load(std::memory_order_acquire) ? 0 : drain(false, since);
                continue;
            }
            const int n =
                ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), -1);
            woke = Clock::now();
            collected = 0;
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                // Only a broken epoll descriptor gets here; nothing can be received any more.
                const int error = errno;
                (void)drain(true, std::nullopt);
                socket_.fail(logger_, backend(), "epoll_wait", error);
                return;
            }
            bool readable = false;
            for (int i = 0; i < n; ++i) {
                if (events[static_cast<std::size_t>(i)].data.u64 == stop_tag) {
                    break;
                }
                readable = true;
            }
            if (readable && !stop_requested_.load(std::memory_order_acquire)) {
                collected = drain(false, std::nullopt);
            }
        }
        // Stopped: read what the socket already holds, so that a shutdown loses nothing that
        // arrived before it (it is counted and drained like everything else).
        (void)drain(true, std::nullopt);
        socket_.sync_drops();
    }

    void sync_kernel_drops() noexcept override { socket_.sync_drops(); }
    [[nodiscard]] bool failed() const noexcept override { return socket_.failed(); }

    void stop() noexcept override {
        stop_requested_.store(true, std::memory_order_release);
        if (const int error = stop_event_.signal(); error != 0) {
            // The flag still stops the loop at its next wake-up (a datagram or the pace).
            logger_.error("epoll receiver: signalling its stop: {}", error_text(error));
        }
    }

    [[nodiscard]] std::string_view backend() const noexcept override { return "epoll"; }
    [[nodiscard]] std::size_t receive_slots() const noexcept override { return slots_.count(); }

private:
    // Reads batches until the socket is empty, stop() is called or the round budget is spent;
    // epoll is level-triggered, so whatever is left wakes the next epoll_wait at once.
    // `final` (after stop): ignore the stop flag and read until empty, within a larger budget
    // so that a sender that never pauses cannot keep the receiver from stopping.
    // Returns how many datagrams it handed over; `received_at` as in MmsgReader::read_batch.
    std::size_t drain(bool final, std::optional<TimePoint> received_at) noexcept {
        const int rounds = final ? max_rounds_at_stop : max_rounds_per_wakeup;
        std::size_t datagrams = 0;
        for (int round = 0; round < rounds; ++round) {
            if (!final && stop_requested_.load(std::memory_order_acquire)) {
                break;
            }
            const ReadResult read =
                reader_.read_batch(socket_.fd(), handler_, socket_.drops(), received_at);
            datagrams += read.datagrams;
            if (read.status == ReadStatus::failed) {
                log_receive_error(read.error);
            }
            if (read.status != ReadStatus::full && read.status != ReadStatus::interrupted) {
                break;
            }
        }
        return datagrams;
    }

    // Waits `sleep` or until stop(), whichever comes first.
    void sleep_unless_stopped(Duration sleep) noexcept {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sleep).count();
        const timespec timeout{static_cast<time_t>(ns / 1'000'000'000),
                               static_cast<long>(ns % 1'000'000'000)};
        pollfd stop{stop_event_.fd(), POLLIN, 0};
        // EINTR or an error only ends the sleep early: the loop copes with either.
        (void)::ppoll(&stop, 1, &timeout, nullptr);
    }

    void log_receive_error(int error) noexcept {
        std::uint64_t suppressed = 0;
        if (!error_limit_.allow(Clock::now(), &suppressed)) {
            return;
        }
        if (suppressed > 0) {
            logger_.error("daemon: socket: err: recvmmsg: {} ({} similar errors suppressed)",
                          error_text(error), suppressed);
        } else {
            logger_.error("daemon: socket: err: recvmmsg: {}", error_text(error));
        }
    }

    ReceiveSocket socket_;
    UniqueFd epoll_;
    EventFd stop_event_;
    SlotPool slots_;
    DatagramHandler& handler_;
    const PaceSource* pace_;  // null: no pacing
    Logger& logger_;
    MmsgReader reader_;  // reads into slots_, declared first so that it outlives the reader
    std::atomic<bool> stop_requested_{false};
    RateLimiter error_limit_{error_log_interval};
};

}  // namespace

std::unique_ptr<Receiver> make_epoll_receiver(UniqueFd socket, DatagramHandler& handler,
                                              Counters& counters, Logger& logger,
                                              ReceiverOptions options) {
    if (!socket) {
        throw StartupError("epoll receiver: invalid socket");
    }
    if (options.slot_bytes == 0 || options.batch == 0) {
        throw StartupError("epoll receiver: slot_bytes and batch must be greater than zero");
    }
    if (options.batch > 1024) {
        // recvmmsg processes at most UIO_MAXIOV (1024) messages per call.
        throw StartupError("epoll receiver: batch must be at most 1024");
    }
    auto slots = SlotPool::create(options.batch, options.slot_bytes, options.padding);
    if (!slots) {
        throw StartupError(fmt::format("epoll receiver: cannot map {} receive slots: {}",
                                       options.batch, error_text(slots.error())));
    }
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) {
        throw StartupError(fmt::format("epoll receiver: epoll_create1: {}", error_text(errno)));
    }
    EventFd stop_event("epoll receiver");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = socket_tag;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, socket.get(), &event) != 0) {
        throw StartupError(fmt::format("epoll receiver: epoll_ctl: {}", error_text(errno)));
    }
    event.data.u64 = stop_tag;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, stop_event.fd(), &event) != 0) {
        throw StartupError(fmt::format("epoll receiver: epoll_ctl: {}", error_text(errno)));
    }
    return std::make_unique<EpollReceiver>(std::move(socket), std::move(epoll),
                                           std::move(stop_event), std::move(slots.value()), handler,
                                           options.pace, counters, logger);
}

}  // namespace xrayd

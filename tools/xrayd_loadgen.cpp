// xrayd-loadgen: paced X-Ray UDP load (sendmmsg), unique sequence ids, send time in each document.
//
// Every datagram is `{"format":"json","version":1}\n` + one segment document whose `id` is the
// sequence number in 16 hex digits and whose annotation `bench_sent_ns` (a string of 20 digits)
// is CLOCK_MONOTONIC at the sendmmsg call, so fake-xray-fast can count loss and duplicates
// exactly and compute receipt-to-endpoint latency (same host, same clock).
//
// Documents are rendered once per size with fixed-width placeholders; per message only the id,
// trace id and timestamp bytes are overwritten in place, so the generator's cost per datagram
// is a few stores plus the kernel's send path.
//
// Pacing: a token bucket over CLOCK_MONOTONIC. Every tick the generator owes
// rate * elapsed - sent datagrams and sends them in sendmmsg batches (at most --max-burst per
// tick, so a stall is not followed by an unbounded burst); it then sleeps to the next tick.
// Bursts (--stall-ms S --stall-every-ms P): every P ms the sender stops for S ms, as a host's
// SDK threads do when a pause holds them all, then catches up: the S ms it owes go out at once,
// back-to-back sendmmsg calls of 64 datagrams, before pacing resumes.
//
// Output: one JSON line on stdout when done (sent, achieved rate, sequence range, errors, CPU).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/common/unique_fd.h>

namespace {

constexpr std::string_view header = "{\"format\":\"json\",\"version\":1}\n";
constexpr std::size_t max_batch = 64;

struct Options {
    std::string host = "127.0.0.1";
    int port = 2000;
    double rate = 1000.0;
    double duration_s = 10.0;
    std::size_t size = 300;
    int sockets = 4;
    int cpu = -1;
    std::uint64_t start_seq = 0;
    double tick_us = 1000.0;
    std::size_t max_burst = 0;  // 0: rate * (50 ms + stall_ms)
    double stall_ms = 0;        // with stall_every_ms: the pause of each burst cycle
    double stall_every_ms = 0;  // the burst cycle; 0: no stalls
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "xrayd-loadgen: %s\n"
                 "usage: xrayd-loadgen [--target HOST:PORT] [--rate N/s] [--duration S]\n"
                 "         [--size 300|1k|8k|BYTES] [--sockets N] [--cpu N] [--start-seq N]\n"
                 "         [--tick-us US] [--max-burst N] [--stall-ms S --stall-every-ms P]\n",
                 why);
    std::exit(2);
}

std::size_t parse_size(std::string_view text) {
    if (text == "300" || text == "small") {
        return 300;
    }
    if (text == "1k" || text == "1K" || text == "medium") {
        return 1024;
    }
    if (text == "8k" || text == "8K" || text == "large") {
        return 8192;
    }
    const long value = std::strtol(std::string(text).c_str(), nullptr, 10);
    if (value < 250 || value > 60000) {
        usage("--size must be 300, 1k, 8k or 250..60000 bytes");
    }
    return static_cast<std::size_t>(value);
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) {
            usage("missing value");
        }
        const char* value = argv[++i];
        if (arg == "--target") {
            const std::string_view v = value;
            const auto colon = v.rfind(':');
            if (colon == std::string_view::npos) {
                usage("--target is HOST:PORT");
            }
            o.host = std::string(v.substr(0, colon));
            o.port = std::atoi(std::string(v.substr(colon + 1)).c_str());
        } else if (arg == "--rate") {
            o.rate = std::strtod(value, nullptr);
        } else if (arg == "--duration") {
            o.duration_s = std::strtod(value, nullptr);
        } else if (arg == "--size") {
            o.size = parse_size(value);
        } else if (arg == "--sockets") {
            o.sockets = std::max(1, std::atoi(value));
        } else if (arg == "--cpu") {
            o.cpu = std::atoi(value);
        } else if (arg == "--start-seq") {
            o.start_seq = std::strtoull(value, nullptr, 10);
        } else if (arg == "--tick-us") {
            o.tick_us = std::max(50.0, std::strtod(value, nullptr));
        } else if (arg == "--max-burst") {
            o.max_burst = std::strtoull(value, nullptr, 10);
        } else if (arg == "--stall-ms") {
            o.stall_ms = std::strtod(value, nullptr);
        } else if (arg == "--stall-every-ms") {
            o.stall_every_ms = std::strtod(value, nullptr);
        } else {
            usage("unknown option");
        }
    }
    if (o.rate < 0 || o.duration_s < 0) {
        usage("--rate and --duration must be >= 0");
    }
    if (o.stall_ms < 0 || o.stall_every_ms < 0 ||
        (o.stall_every_ms > 0 && o.stall_ms >= o.stall_every_ms)) {
        usage("--stall-ms must be >= 0 and shorter than --stall-every-ms");
    }
    return o;
}

std::int64_t now_ns(clockid_t clock) noexcept {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One rendered datagram and where its variable fields sit.
struct Layout {
    std::string text;
    std::size_t id_at = 0;     // 16 hex digits
    std::size_t trace_at = 0;  // the 24 hex digits after "1-xxxxxxxx-"
    std::size_t sent_at = 0;   // 20 decimal digits
};

std::size_t must_find(const std::string& text, std::string_view marker) {
    const auto at = text.find(marker);
    if (at == std::string::npos) {
        std::fprintf(stderr, "xrayd-loadgen: template lacks %.*s\n",
                     static_cast<int>(marker.size()), marker.data());
        std::exit(1);
    }
    return at;
}

// The shapes follow tests/data/segment-docs: a minimal Go-SDK segment (~300 B), the Go SDK's
// server sample with http/aws/service (~1 KB), and the Node SDK's request segment with nested
// subsegments, annotations and metadata (~8 KB). Each is padded with metadata to the size asked.
std::string segment_body(std::size_t size, double start_time) {
    char times[96];
    std::snprintf(times, sizeof times, "\"start_time\":%.6f,\"end_time\":%.6f", start_time,
                  start_time + 0.0125);
    std::string doc = "{\"trace_id\":\"1-XXXXXXXX-TTTTTTTTTTTTTTTTTTTTTTTT\","
                      "\"id\":\"IIIIIIIIIIIIIIII\",";
    doc += times;
    if (size < 800) {
        doc += ",\"name\":\"bench-service\",\"origin\":\"AWS::EC2::Instance\","
               "\"annotations\":{\"bench_sent_ns\":\"SSSSSSSSSSSSSSSSSSSS\"}";
    } else {
        doc += ",\"name\":\"orders-app\",\"origin\":\"AWS::EC2::Instance\","
               "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"http://localhost:8000/order\","
               "\"client_ip\":\"10.0.3.17\",\"user_agent\":\"Go-http-client/1.1\","
               "\"x_forwarded_for\":true},\"response\":{\"status\":200,"
               "\"content_length\":1873}},"
               "\"aws\":{\"xray\":{\"sdk_version\":\"1.1.0\",\"sdk\":\"X-Ray for Go\"},"
               "\"ec2\":{\"instance_id\":\"i-0123456789abcdef0\","
               "\"availability_zone\":\"us-east-1a\"}},"
               "\"service\":{\"compiler_version\":\"go1.14.6\",\"compiler\":\"gc\"},"
               "\"user\":\"user-42\","
               "\"annotations\":{\"bench_sent_ns\":\"SSSSSSSSSSSSSSSSSSSS\",\"route\":\"keep\","
               "\"is_even\":true,\"note\":\"gr\\u00fc\\u00dfe\"}";
        if (size >= 4096) {
            doc += ",\"subsegments\":[";
            for (int i = 0; i < 12; ++i) {
                char sub[640];
                std::snprintf(
                    sub, sizeof sub,
                    "%s{\"id\":\"%016x\",\"name\":\"downstream-%d\",\"start_time\":%.6f,"
                    "\"end_time\":%.6f,\"namespace\":\"remote\",\"http\":{\"request\":{\"url\":"
                    "\"http://inventory.internal/items/%d\",\"method\":\"GET\"},\"response\":"
                    "{\"status\":200,\"content_length\":%d}},\"traced\":true,\"annotations\":"
                    "{\"step\":\"fetch\"},\"metadata\":{\"default\":{\"items\":[1,2,3],\"query\":"
                    "{\"i\":\"%d\",\"status\":\"200\"}}},\"subsegments\":[{\"id\":\"%016x\","
                    "\"name\":\"inner-compute\",\"start_time\":%.6f,\"end_time\":%.6f,"
                    "\"metadata\":{\"default\":{\"result\":{\"sum\":6}}}}]}",
                    i == 0 ? "" : ",", 0x1000 + i, i, start_time + 0.001 * i,
                    start_time + 0.001 * i + 0.0005, i, 100 + i, i, 0x2000 + i,
                    start_time + 0.001 * i, start_time + 0.001 * i + 0.0002);
                doc += sub;
            }
            doc += "]";
        }
    }
    // Pad to the requested datagram size with a metadata string.
    const std::string tail_open = ",\"metadata\":{\"default\":{\"pad\":\"";
    const std::string tail_close = "\"}}}";
    const std::size_t fixed = header.size() + doc.size() + tail_open.size() + tail_close.size();
    const std::size_t pad = size > fixed ? size - fixed : 0;
    doc += tail_open;
    for (std::size_t i = 0; i < pad; ++i) {
        doc += static_cast<char>('a' + i % 26);
    }
    doc += tail_close;
    return doc;
}

Layout make_layout(std::size_t size) {
    const double start_time = static_cast<double>(now_ns(CLOCK_REALTIME)) / 1e9;
    Layout l;
    l.text = std::string(header) + segment_body(size, start_time);
    char epoch[16];
    std::snprintf(epoch, sizeof epoch, "%08" PRIx64,
                  static_cast<std::uint64_t>(start_time) & std::uint64_t{0xffffffff});
    std::memcpy(l.text.data() + must_find(l.text, "XXXXXXXX"), epoch, 8);
    l.id_at = must_find(l.text, "IIIIIIIIIIIIIIII");
    l.trace_at = must_find(l.text, "TTTTTTTTTTTTTTTTTTTTTTTT");
    l.sent_at = must_find(l.text, "SSSSSSSSSSSSSSSSSSSS");
    return l;
}

constexpr char hex_digits[] = "0123456789abcdef";

void put_hex(char* out, std::uint64_t value, int digits) noexcept {
    for (int i = digits - 1; i >= 0; --i) {
        out[i] = hex_digits[value & 0xf];
        value >>= 4;
    }
}

void put_decimal20(char* out, std::uint64_t value) noexcept {
    for (int i = 19; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

struct Sender {
    std::vector<xrayd::UniqueFd> fds;
    std::vector<std::string> buffers;  // max_batch copies of the layout
    std::vector<iovec> iovs;
    std::vector<mmsghdr> msgs;
    Layout layout;
    std::uint64_t next_seq = 0;
    std::uint64_t sent = 0;
    std::uint64_t send_errors = 0;
    std::uint64_t calls = 0;
    std::size_t socket_turn = 0;

    // Sends `count` (<= max_batch) datagrams on the next socket; returns how many went out.
    std::size_t send_batch(std::size_t count) noexcept {
        const std::uint64_t sent_ns = static_cast<std::uint64_t>(now_ns(CLOCK_MONOTONIC));
        for (std::size_t i = 0; i < count; ++i) {
            char* text = buffers[i].data();
            const std::uint64_t seq = next_seq + i;
            put_hex(text + layout.id_at, seq, 16);
            // A new trace per segment; the low bits carry the sequence to stay unique.
            put_hex(text + layout.trace_at, 0xbe7c00000000ULL, 12);
            put_hex(text + layout.trace_at + 12, seq, 12);
            put_decimal20(text + layout.sent_at, sent_ns);
        }
        const int fd = fds[socket_turn].get();
        socket_turn = (socket_turn + 1) % fds.size();
        std::size_t done = 0;
        while (done < count) {
            ++calls;
            const int n = sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(count - done), 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                // ECONNREFUSED (nobody bound yet) or ENOBUFS: the rest of the batch is lost at
                // the sender and must not count as sent.
                ++send_errors;
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        // Ids of unsent datagrams are skipped, never reused, so the endpoint's view stays exact.
        next_seq += count;
        sent += done;
        return done;
    }
};

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse_options(argc, argv);
    if (opt.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opt.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            std::perror("xrayd-loadgen: sched_setaffinity");
            return 1;
        }
    }

    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(static_cast<std::uint16_t>(opt.port));
    if (inet_pton(AF_INET, opt.host.c_str(), &target.sin_addr) != 1) {
        std::fprintf(stderr, "xrayd-loadgen: bad IPv4 address %s\n", opt.host.c_str());
        return 2;
    }

    Sender s;
    s.layout = make_layout(opt.size);
    s.next_seq = opt.start_seq;
    for (int i = 0; i < opt.sockets; ++i) {
        xrayd::UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd) {
            std::perror("xrayd-loadgen: socket");
            return 1;
        }
        const int sndbuf = 4 << 20;
        (void)setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
            std::perror("xrayd-loadgen: connect");
            return 1;
        }
        s.fds.push_back(std::move(fd));
    }
    s.buffers.assign(max_batch, s.layout.text);
    s.iovs.resize(max_batch);
    s.msgs.resize(max_batch);
    for (std::size_t i = 0; i < max_batch; ++i) {
        s.iovs[i] = iovec{s.buffers[i].data(), s.buffers[i].size()};
        s.msgs[i] = mmsghdr{};
        s.msgs[i].msg_hdr.msg_iov = &s.iovs[i];
        s.msgs[i].msg_hdr.msg_iovlen = 1;
    }

    const std::int64_t tick_ns = static_cast<std::int64_t>(opt.tick_us * 1000.0);
    const std::uint64_t max_burst =
        opt.max_burst > 0
            ? opt.max_burst
            : std::max<std::uint64_t>(
                  max_batch, static_cast<std::uint64_t>(opt.rate * (0.05 + opt.stall_ms / 1e3)));
    const auto stall_ns = static_cast<std::int64_t>(opt.stall_ms * 1e6);
    const auto cycle_ns = static_cast<std::int64_t>(opt.stall_every_ms * 1e6);
    std::uint64_t stalls = 0;
    const std::int64_t start = now_ns(CLOCK_MONOTONIC);
    const std::int64_t end = start + static_cast<std::int64_t>(opt.duration_s * 1e9);
    const std::uint64_t total_due = static_cast<std::uint64_t>(opt.rate * opt.duration_s);
    std::uint64_t owed_done = 0;  // datagrams accounted to the bucket (sent or failed)
    std::uint64_t shed = 0;       // datagrams the bucket gave up because the sender fell behind
    std::int64_t next_tick = start;
    for (;;) {
        std::int64_t now = now_ns(CLOCK_MONOTONIC);
        if (cycle_ns > 0 && stall_ns > 0 && now < end) {
            // In the first S ms of a cycle: sleep the rest of it, then owe all of it at once.
            const std::int64_t phase = (now - start) % cycle_ns;
            if (phase < stall_ns) {
                const std::int64_t resume = std::min(end, now + (stall_ns - phase));
                timespec wake{static_cast<time_t>(resume / 1'000'000'000),
                              static_cast<long>(resume % 1'000'000'000)};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nullptr) == EINTR) {
                }
                ++stalls;
                now = now_ns(CLOCK_MONOTONIC);
                next_tick = now;
            }
        }
        const std::int64_t elapsed = std::min(now, end) - start;
        std::uint64_t due = std::min(
            total_due, static_cast<std::uint64_t>(opt.rate * (static_cast<double>(elapsed) / 1e9)));
        if (due > owed_done + max_burst) {
            shed += due - (owed_done + max_burst);
            owed_done = due - max_burst;
        }
        while (owed_done < due) {
            const std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(max_batch, due - owed_done));
            (void)s.send_batch(n);
            owed_done += n;
        }
        if (now >= end) {
            break;
        }
        next_tick += tick_ns;
        if (next_tick < now) {
            next_tick = now;  // behind: do not sleep, but do not accumulate debt either
            continue;
        }
        timespec wake{static_cast<time_t>(next_tick / 1'000'000'000),
                      static_cast<long>(next_tick % 1'000'000'000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nullptr) == EINTR) {
        }
    }
    const double elapsed_s = static_cast<double>(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    std::printf(
        "{\"sent\":%" PRIu64 ",\"target_rate\":%.1f,\"achieved_rate\":%.1f,"
        "\"duration_s\":%.3f,\"size_bytes\":%zu,\"first_seq\":%" PRIu64 ",\"next_seq\":%" PRIu64
        ",\"send_errors\":%" PRIu64 ",\"shed\":%" PRIu64 ",\"sendmmsg_calls\":%" PRIu64
        ",\"stalls\":%" PRIu64 ",\"sockets\":%d,\"cpu_s\":%.3f,\"cpu_pct\":%.1f}\n",
        s.sent, opt.rate, elapsed_s > 0 ? static_cast<double>(s.sent) / elapsed_s : 0.0, elapsed_s,
        s.layout.text.size(), opt.start_seq, s.next_seq, s.send_errors, shed, s.calls, stalls,
        opt.sockets, cpu_s, elapsed_s > 0 ? 100.0 * cpu_s / elapsed_s : 0.0);
    return 0;
}

// OtlpSpool: one file per spilled OTLP request, written under a temporary name and renamed,
// read back oldest first, deleted once settled.
#include <xrayd/otlp/otlp_spool.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include <fmt/format.h>

#include <xrayd/common/fd_io.h>
#include <xrayd/common/startup_error.h>

namespace xrayd::otlp {
namespace {

constexpr std::string_view magic = "xrotlp1\n";
constexpr std::size_t header_size = 32;
constexpr std::string_view tmp_suffix = ".tmp";
constexpr std::string_view bad_suffix = ".bad";

void put_le(char* out, std::uint64_t value, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < bytes; ++i) {
        out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
    }
}

std::uint64_t get_le(const char* in, std::size_t bytes) noexcept {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
        value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    }
    return value;
}

std::uint32_t crc_of(std::string_view data) noexcept {
    return static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

std::string file_name(std::uint64_t number) {
    return fmt::format("{:016x}{}", number, otlp_file_suffix);
}

// What a file's bytes say, or nullopt when they do not check out.
std::optional<SpooledRequest> parse_file(std::string_view bytes) {
    if (bytes.size() < header_size || bytes.substr(0, magic.size()) != magic) {
        return std::nullopt;
    }
    const char* h = bytes.data();
    const auto encoding = static_cast<unsigned char>(h[8]);
    const std::uint64_t length = get_le(h + 24, 4);
    if (encoding > 1 || length != bytes.size() - header_size) {
        return std::nullopt;
    }
    const std::string_view body = bytes.substr(header_size);
    if (crc_of(body) != static_cast<std::uint32_t>(get_le(h + 28, 4))) {
        return std::nullopt;
    }
    SpooledRequest request;
    request.encoding = encoding == 0 ? OtlpEncoding::protobuf : OtlpEncoding::json;
    request.spans = static_cast<std::size_t>(get_le(h + 12, 4));
    request.arrival_unix_ns = get_le(h + 16, 8);
    request.body.assign(body);
    return request;
}

std::uint64_t now_unix_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now().time_since_epoch())
            .count());
}

}  // namespace

struct OtlpSpool::State {
    struct Entry {
        std::uint64_t number = 0;
        std::uint64_t bytes = 0;
        std::size_t spans = 0;
        bool taken = false;  // read back and not settled or unread
    };

    OtlpSpoolOptions options;
    Counters& counters;
    Logger& logger;
    UniqueFd dir;
    std::deque<Entry> files;  // by number, oldest first
    std::uint64_t next_number = 1;
    std::uint64_t bytes = 0;
    std::uint64_t unread_spans = 0;
    OtlpSpoolGauges gauges;
    RateLimiter failure_log{std::chrono::seconds(10)};

    State(OtlpSpoolOptions o, Counters& c, Logger& l)
        : options(std::move(o)), counters(c), logger(l) {}

    void publish() noexcept {
        gauges.spans.store(unread_spans, std::memory_order_relaxed);
        gauges.bytes.store(bytes, std::memory_order_relaxed);
        gauges.files.store(files.size(), std::memory_order_relaxed);
    }

    template <typename... Args>
    void log_failure(int err, fmt::format_string<Args...> what, Args&&... args) noexcept {
        try {
            std::uint64_t suppressed = 0;
            if (failure_log.allow(Clock::now(), &suppressed)) {
                logger.error("OTLP spool {}: {}: {}", options.dir,
                             fmt::format(what, std::forward<Args>(args)...), std::strerror(err));
            }
        } catch (...) {
        }
    }

    // The whole file, or nullopt with errno's value in *err.
    std::optional<std::string> read_file(const std::string& name, int* err) noexcept {
        try {
            UniqueFd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_CLOEXEC));
            struct stat st {};
            if (!fd || ::fstat(fd.get(), &st) != 0) {
                *err = errno;
                return std::nullopt;
            }
            std::string content(static_cast<std::size_t>(st.st_size), '\0');
            if (const int rc = pread_all(fd.get(), 0, content.data(), content.size()); rc != 0) {
                *err = rc;
                return std::nullopt;
            }
            return content;
        } catch (...) {
            *err = ENOMEM;
            return std::nullopt;
        }
    }

    // Moves a file that does not check out aside, so it is neither read again nor lost.
    void set_aside(const std::string& name) noexcept {
        counters.add(Counter::otlp_spool_corrupt_files);
        try {
            const std::string bad = name + std::string(bad_suffix);
            if (::renameat(dir.get(), name.c_str(), dir.get(), bad.c_str()) != 0) {
                log_failure(errno, "setting aside the damaged file {}", name);
            } else {
                logger.warn("OTLP spool {}: {} is damaged; set aside as {}", options.dir, name,
                            bad);
            }
        } catch (...) {
        }
    }

    void remove(std::size_t index) noexcept {
        const Entry entry = files[index];
        try {
            if (::unlinkat(dir.get(), file_name(entry.number).c_str(), 0) != 0 && errno != ENOENT) {
                log_failure(errno, "deleting {}", file_name(entry.number));
            }
        } catch (...) {
        }
        bytes -= std::min(bytes, entry.bytes);
        if (!entry.taken) {
            unread_spans -= std::min<std::uint64_t>(unread_spans, entry.spans);
        }
        files.erase(files.begin() + static_cast<std::ptrdiff_t>(index));
    }

    // Makes room for `size` more bytes: false when it cannot (drop-newest, or nothing left to
    // delete under drop-oldest).
    bool make_room(std::uint64_t size) noexcept {
        while (bytes + size > options.max_bytes) {
            if (options.at_quota != Backpressure::drop_oldest) {
                return false;
            }
            const auto oldest =
                std::find_if(files.begin(), files.end(), [](const Entry& e) { return !e.taken; });
            if (oldest == files.end()) {
                return false;
            }
            counters.add(Counter::otlp_spans_dropped_spool_full, oldest->spans);
            remove(static_cast<std::size_t>(oldest - files.begin()));
        }
        return true;
    }

    void scan();
    int write_file(std::uint64_t number, std::string_view header, std::string_view body) noexcept;
};

void OtlpSpool::State::scan() {
    UniqueFd listing(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR* d = listing ? ::fdopendir(listing.get()) : nullptr;
    if (d == nullptr) {
        throw StartupError(fmt::format("cannot read the OTLP spool directory {}: {}", options.dir,
                                       std::strerror(errno)));
    }
    (void)listing.release();  // closedir closes it
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
        names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    std::uint64_t recovered = 0;
    for (const std::string& name : names) {
        if (name.ends_with(tmp_suffix)) {  // a write cut short by a crash: never renamed
            (void)::unlinkat(dir.get(), name.c_str(), 0);
            continue;
        }
        if (!name.ends_with(otlp_file_suffix) || name.size() != 16 + otlp_file_suffix.size()) {
            continue;
        }
        std::uint64_t number = 0;
        try {
            number = std::stoull(name.substr(0, 16), nullptr, 16);
        } catch (...) {
            continue;
        }
        int err = 0;
        const std::optional<std::string> content = read_file(name, &err);
        if (!content) {
            throw StartupError(fmt::format("cannot read the OTLP spool file {}/{}: {}", options.dir,
                                           name, std::strerror(err)));
        }
        const std::optional<SpooledRequest> request = parse_file(*content);
        if (!request) {
            set_aside(name);
            continue;
        }
        files.push_back(Entry{number, content->size(), request->spans, false});
        bytes += content->size();
        unread_spans += request->spans;
        recovered += request->spans;
        next_number = std::max(next_number, number + 1);
    }
    if (recovered > 0) {
        counters.add(Counter::otlp_spans_spool_recovered, recovered);
        logger.info("OTLP spool {}: found {} spans in {} requests ({} bytes)", options.dir,
                    recovered, files.size(), bytes);
    }
}

int OtlpSpool::State::write_file(std::uint64_t number, std::string_view header,
                                 std::string_view body) noexcept {
    try {
        const std::string name = file_name(number);
        const std::string tmp = name + std::string(tmp_suffix);
        UniqueFd fd(
            ::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd) {
            return errno;
        }
        int rc = write_all(fd.get(), header);
        if (rc == 0) {
            rc = write_all(fd.get(), body);
        }
        if (rc == 0 && options.sync != spool::SpoolSync::none && ::fdatasync(fd.get()) != 0) {
            rc = errno;
        }
        if (rc == 0 && ::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
            rc = errno;
        }
        if (rc != 0) {
            (void)::unlinkat(dir.get(), tmp.c_str(), 0);
        }
        return rc;
    } catch (...) {
        return ENOMEM;
    }
}

OtlpSpool::OtlpSpool(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
OtlpSpool::~OtlpSpool() = default;

std::unique_ptr<OtlpSpool> OtlpSpool::open(OtlpSpoolOptions options, Counters& counters,
                                           Logger& logger) {
    auto state = std::make_unique<State>(std::move(options), counters, logger);
    const std::string& dir = state->options.dir;
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        throw StartupError(fmt::format("cannot create the OTLP spool directory {}: {}", dir,
                                       std::strerror(errno)));
    }
    state->dir = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!state->dir) {
        throw StartupError(
            fmt::format("cannot open the OTLP spool directory {}: {}", dir, std::strerror(errno)));
    }
    state->scan();
    state->publish();
    return std::unique_ptr<OtlpSpool>(new OtlpSpool(std::move(state)));
}

bool OtlpSpool::write(OtlpEncoding encoding, std::string_view body, std::size_t spans,
                      std::uint64_t arrival_unix_ns) noexcept {
    State& s = *state_;
    const std::uint64_t size = header_size + body.size();
    if (body.size() > UINT32_MAX || spans > UINT32_MAX) {
        s.counters.add(Counter::otlp_spans_dropped_spool_error, spans);
        return false;
    }
    if (!s.make_room(size)) {
        s.counters.add(Counter::otlp_spans_dropped_spool_full, spans);
        s.log_failure(ENOSPC, "quota of {} bytes reached; {} spans dropped", s.options.max_bytes,
                      spans);
        s.publish();
        return false;
    }
    char header[header_size]{};
    std::memcpy(header, magic.data(), magic.size());
    header[8] = static_cast<char>(encoding == OtlpEncoding::protobuf ? 0 : 1);
    put_le(header + 12, spans, 4);
    put_le(header + 16, arrival_unix_ns, 8);
    put_le(header + 24, body.size(), 4);
    put_le(header + 28, crc_of(body), 4);
    const std::uint64_t number = s.next_number++;
    if (const int rc = s.write_file(number, std::string_view(header, header_size), body); rc != 0) {
        const bool full = rc == ENOSPC || rc == EDQUOT;
        s.counters.add(
            full ? Counter::otlp_spans_dropped_spool_full : Counter::otlp_spans_dropped_spool_error,
            spans);
        s.log_failure(rc, "writing a request of {} spans", spans);
        return false;
    }
    try {
        s.files.push_back(State::Entry{number, size, spans, false});
    } catch (...) {
        // The file is on disk: the next start finds it. Until then it is not counted here.
    }
    s.bytes += size;
    s.unread_spans += spans;
    s.counters.add(Counter::otlp_spans_spooled, spans);
    s.publish();
    return true;
}

std::optional<SpooledRequest> OtlpSpool::read_oldest() noexcept {
    State& s = *state_;
    const std::uint64_t now = now_unix_ns();
    const auto max_age = static_cast<std::uint64_t>(s.options.max_age.count());
    for (std::size_t i = 0; i < s.files.size();) {
        State::Entry& entry = s.files[i];
        if (entry.taken) {
            ++i;
            continue;
        }
        int err = 0;
        std::optional<SpooledRequest> request;
        bool read = false;
        try {
            const std::optional<std::string> content = s.read_file(file_name(entry.number), &err);
            read = content.has_value();
            request = content ? parse_file(*content) : std::nullopt;
        } catch (...) {
            return std::nullopt;  // out of memory: tried again later
        }
        if (!request || request->spans != entry.spans) {
            s.log_failure(read ? EBADMSG : err, "reading {}", file_name(entry.number));
            s.counters.add(Counter::otlp_spans_dropped_spool_error, entry.spans);
            s.remove(i);
            continue;
        }
        if (now > request->arrival_unix_ns && now - request->arrival_unix_ns > max_age) {
            s.counters.add(Counter::otlp_spans_dropped_spool_expired, entry.spans);
            s.remove(i);
            continue;
        }
        entry.taken = true;
        s.unread_spans -= std::min<std::uint64_t>(s.unread_spans, entry.spans);
        request->number = entry.number;
        s.publish();
        return request;
    }
    s.publish();
    return std::nullopt;
}

void OtlpSpool::settle(std::uint64_t number) noexcept {
    State& s = *state_;
    for (std::size_t i = 0; i < s.files.size(); ++i) {
        if (s.files[i].number == number) {
            if (s.files[i].taken) {
                s.counters.add(Counter::otlp_spans_replayed, s.files[i].spans);
            }
            s.remove(i);
            break;
        }
    }
    s.publish();
}

void OtlpSpool::unread(std::uint64_t number) noexcept {
    State& s = *state_;
    for (State::Entry& entry : s.files) {
        if (entry.number == number && entry.taken) {
            entry.taken = false;
            s.unread_spans += entry.spans;
            break;
        }
    }
    s.publish();
}

bool OtlpSpool::has_unread() const noexcept {
    return std::any_of(state_->files.begin(), state_->files.end(),
                       [](const State::Entry& e) { return !e.taken; });
}

const OtlpSpoolGauges& OtlpSpool::gauges() const noexcept {
    return state_->gauges;
}

const std::string& OtlpSpool::path() const noexcept {
    return state_->options.dir;
}

}  // namespace xrayd::otlp

// Zero allocation on the hot path (ingest → queue → batch → body → sign), counted by an
// interposed malloc/operator new; and the pooled storage that makes it so.
#include <xrayd/queue/block_pool.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/batch/batch.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/time.h>
#include <xrayd/http/curl.h>
#include <xrayd/ingest/ingest.h>
#include <xrayd/ingest/validator.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/receiver.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/stats/counters.h>
#include <xrayd/xray/xray_request.h>

// ---- The allocation counter ---------------------------------------------------------------
// Every heap allocation in the process goes through malloc and friends (libstdc++'s operator
// new, OpenSSL's CRYPTO_malloc and libcurl all call them), so defining them here, on top of
// glibc's __libc_* entry points, sees them all. Counting is on only while a test sets the flag.
// Sanitizer builds bring their own allocator: there the counter is left out and the test says so.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XRAYD_COUNTING_ALLOCATIONS 0
#else
#define XRAYD_COUNTING_ALLOCATIONS 1
#endif

namespace {

std::atomic<bool> counting{false};
std::atomic<std::uint64_t> allocations{0};

inline void count_one() noexcept {
    if (counting.load(std::memory_order_relaxed)) {
        allocations.fetch_add(1, std::memory_order_relaxed);
    }
}

// Counts the allocations made while it lives (on any thread).
class AllocationCounter {
public:
    AllocationCounter() noexcept {
        allocations.store(0, std::memory_order_relaxed);
        counting.store(true, std::memory_order_seq_cst);
    }
    ~AllocationCounter() { counting.store(false, std::memory_order_seq_cst); }
    AllocationCounter(const AllocationCounter&) = delete;
    AllocationCounter& operator=(const AllocationCounter&) = delete;
    [[nodiscard]] std::uint64_t count() const noexcept {
        return allocations.load(std::memory_order_seq_cst);
    }
};

}  // namespace

#if XRAYD_COUNTING_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* p);
// Obsolete, so no header this test includes declares it; replaced all the same, since a library
// may still call it.
void* memalign(std::size_t alignment, std::size_t size);

void* malloc(std::size_t size) {
    count_one();
    return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
    count_one();
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) {
    count_one();
    return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}
void* memalign(std::size_t alignment, std::size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
    count_one();
    void* p = __libc_memalign(alignment, size);
    if (p == nullptr) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}
}  // extern "C"

// operator new, replaced as well so the count does not depend on how libstdc++ implements it.
// Each counts once: they call the __libc_* functions directly.
void* operator new(std::size_t size) {
    count_one();
    if (void* p = __libc_malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    return ::operator new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    count_one();
    return __libc_malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, tag);
}
void* operator new(std::size_t size, std::align_val_t align) {
    count_one();
    if (void* p = __libc_memalign(static_cast<std::size_t>(align), size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
    return ::operator new(size, align);
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
    count_one();
    return __libc_memalign(static_cast<std::size_t>(align), size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, align, tag);
}
void operator delete(void* p) noexcept {
    __libc_free(p);
}
void operator delete[](void* p) noexcept {
    __libc_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    __libc_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    __libc_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    __libc_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    __libc_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    __libc_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    __libc_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    __libc_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    __libc_free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    __libc_free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    __libc_free(p);
}
#endif  // XRAYD_COUNTING_ALLOCATIONS

namespace xrayd {
namespace {

constexpr std::size_t measured_segments = 100'000;
constexpr std::size_t warm_up_segments = 20'000;
constexpr std::size_t receive_burst = 32;  // datagrams per receive call
constexpr std::size_t upload_slots = 4;    // batches "in flight" at once

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every sample datagram (header + document, 249 B to 60 KB; JSON segments and ADOT's
// OTLP-over-UDP T1S document), in sorted order.
std::vector<std::string> sample_datagrams() {
    std::vector<std::filesystem::path> paths;
    const auto data = std::filesystem::path(XRAYD_TEST_DATA_DIR);
    for (const auto& root : {data / "segment-docs", data / "otlp-udp"}) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
            if (entry.is_regular_file() && entry.path().extension() == ".udp") {
                paths.push_back(entry.path());
            }
        }
    }
    std::sort(paths.begin(), paths.end());
    std::vector<std::string> out;
    for (const auto& p : paths) {
        out.push_back(read_file(p));
    }
    return out;
}

// The daemon's data path on one thread: what the receiver threads and the pipeline thread do,
// with the uploader reduced to "sign the batch, hold it while it is in flight, then drop it".
struct HotPath {
    Logger logger{LogLevel::critical};
    Counters counters;
    MemoryBudget budget{64u << 20};
    SegmentQueue queue{16384};
    IngestLogLimits limits;
    Ingest ingest{queue, budget, counters, logger, limits, 65536};
    Batcher batcher{BatchLimits{}, budget, counters};
    SigV4Signer signer{"us-east-1", "xray"};
    XRayTarget target = make_xray_target("https://xray.us-east-1.amazonaws.com", "/TraceSegments");
    Credentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789abcdef"};
    // A fixed day, so the signing key is derived once (it changes at midnight UTC).
    WallClock::time_point sign_time = WallClock::from_time_t(1'763'772'508);
    std::array<CurlSlist, upload_slots> headers;
    std::array<std::optional<Batch>, upload_slots> in_flight;
    std::size_t batches = 0;
    std::size_t segments_batched = 0;
    std::size_t sign_failures = 0;
    Batcher::Emit emit = [this](Batch&& batch) {
        const std::size_t slot = batches++ % upload_slots;
        in_flight[slot].reset();  // the previous upload in this slot finished
        sign_time += std::chrono::milliseconds(3);
        if (!build_signed_headers(signer, target, batch.body(), credentials, sign_time,
                                  headers[slot])) {
            ++sign_failures;
        }
        segments_batched += batch.segment_count();
        in_flight[slot].emplace(std::move(batch));
    };
    std::vector<std::string> slots;
    std::size_t next = 0;

    HotPath() : slots(sample_datagrams()) {
        for (std::string& s : slots) {
            s.append(datagram_padding, '\0');  // the receive slot's padding
        }
    }

    void run(std::size_t n) noexcept {
        std::array<Datagram, receive_burst> burst{};
        for (std::size_t done = 0; done < n;) {
            const TimePoint now = Clock::now();
            const std::size_t count = std::min(receive_burst, n - done);
            for (std::size_t i = 0; i < count; ++i) {
                std::string& slot = slots[next++ % slots.size()];
                burst[i] = Datagram{slot.data(), slot.size() - datagram_padding, false, now};
            }
            ingest.on_datagrams(std::span<Datagram>(burst.data(), count));
            SegmentPtr segment;
            while (queue.pop(segment)) {
                batcher.add(std::move(segment), now, emit);
            }
            batcher.flush_due(now, emit);
            done += count;
        }
    }
};

#if XRAYD_COUNTING_ALLOCATIONS
TEST_CASE("The allocation counter sees operator new, malloc and allocations inside OpenSSL") {
    std::uint64_t by_new = 0;
    std::uint64_t by_malloc = 0;
    std::uint64_t by_openssl = 0;
    {
        AllocationCounter counter;
        auto p = std::make_unique<std::array<char, 100>>();
        by_new = counter.count();
        void* m = std::malloc(100);
        by_malloc = counter.count() - by_new;
        std::free(m);
        const std::string digest = sha256_hex("abc");  // EVP_Digest: contexts on the heap
        by_openssl = counter.count() - by_new - by_malloc;
        CHECK(digest.size() == 64);
    }
    CHECK(by_new == 1);
    CHECK(by_malloc == 1);
    CHECK(by_openssl >= 2);  // the digest context and the returned string, at least
}
#endif

TEST_CASE("After warm-up, 100 000 sample segments go from datagram to signed batch without a "
          "single allocation") {
    HotPath path;
    REQUIRE(path.slots.size() >= 10);
    path.run(warm_up_segments);
    const std::size_t batches_before = path.batches;

    std::uint64_t counted = 0;
    {
        AllocationCounter counter;
        path.run(measured_segments);
        counted = counter.count();
    }
    const std::size_t measured_batches = path.batches - batches_before;
    MESSAGE("measured " << measured_segments << " segments in " << measured_batches
                        << " batches; allocations: " << counted);
#if XRAYD_COUNTING_ALLOCATIONS
    CHECK(counted == 0);
#else
    MESSAGE("sanitizer build: allocations are not counted here");
#endif
    // The path really ran: every segment accepted and batched, every batch signed.
    CHECK(path.counters.get(Counter::datagrams_received) == warm_up_segments + measured_segments);
    CHECK(path.counters.get(Counter::received_otlp_udp) > 0);  // the T1S case ran too
    CHECK(path.counters.get(Counter::dropped_buffer_full) == 0);
    CHECK(path.counters.get(Counter::dropped_queue_full) == 0);
    CHECK(path.sign_failures == 0);
    CHECK(measured_batches >= measured_segments / BatchLimits{}.max_segments);
    path.batcher.flush(path.emit);
    CHECK(path.segments_batched == warm_up_segments + measured_segments);
    for (auto& b : path.in_flight) {
        b.reset();
    }
    CHECK(path.budget.used() == 0);  // every block's charge came back
}

// The lines of a curl header list.
std::vector<std::string> lines_of(const CurlSlist& list) {
    std::vector<std::string> out;
    for (const curl_slist* n = list.get(); n != nullptr; n = n->next) {
        out.emplace_back(n->data);
    }
    return out;
}

TEST_CASE("A header list rewritten in place is identical to one built fresh, and is rebuilt "
          "when its shape changes") {
    SigV4Signer reused_signer("us-east-1", "xray");
    SigV4Signer fresh_signer("us-east-1", "xray");
    const XRayTarget target =
        make_xray_target("https://xray.us-east-1.amazonaws.com", "/TraceSegments");
    const Credentials with_token("AKIDEXAMPLE", "secret", "token-1234");
    const Credentials without_token("AKIDEXAMPLE", "secret");
    CurlSlist reused;
    const WallClock::time_point t0 = WallClock::from_time_t(1'763'772'508);
    int call = 0;
    for (const Credentials* creds :
         {&with_token, &with_token, &without_token, &without_token, &with_token}) {
        const WallClock::time_point now = t0 + std::chrono::milliseconds(1234567 * call);
        const std::string body =
            R"({"TraceSegmentDocuments":["{\"n\":)" + std::to_string(call) + R"(}"]})";
        ++call;
        CurlSlist fresh;
        REQUIRE(build_signed_headers(reused_signer, target, body, *creds, now, reused));
        REQUIRE(build_signed_headers(fresh_signer, target, body, *creds, now, fresh));
        CAPTURE(call);
        CHECK(lines_of(reused) == lines_of(fresh));
        CHECK(lines_of(reused).size() == (creds->session_token.empty() ? 6u : 7u));
    }
    // And the lines are what the allocating API signs.
    SigV4Signer check_signer("us-east-1", "xray");
    const std::string timestamp = xray_timestamp(t0);
    SigningRequest request{"POST",
                           target.path,
                           {},
                           {{"host", target.host},
                            {"content-length", "2"},
                            {"content-type", "application/json"},
                            {"x-amzn-xray-timestamp", timestamp}},
                           "{}"};
    const SignedHeaders expected = check_signer.sign(request, with_token, t0);
    REQUIRE_FALSE(expected.authorization.empty());
    REQUIRE(build_signed_headers(reused_signer, target, "{}", with_token, t0, reused));
    const auto lines = lines_of(reused);
    CHECK(lines.at(2) == "X-Amz-Date: " + expected.amz_date);
    CHECK(lines.at(3) == "X-Amzn-Xray-Timestamp: " + timestamp);
    CHECK(lines.at(4) == "Authorization: " + expected.authorization);
    CHECK(lines.at(6) == "X-Amz-Security-Token: " + expected.security_token);
}

TEST_CASE("An OTLP request's headers: gzip and its media type signed, no X-Ray timestamp, and "
          "rewritten in place without allocating") {
    SigV4Signer signer("us-east-2", "xray");
    const XRayTarget target =
        make_xray_target("https://xray.us-east-2.amazonaws.com", "/v1/traces");
    const Credentials creds("AKIDEXAMPLE", "secret", "token-1234");
    const PostContent content{"application/x-protobuf", "gzip", false};
    const std::string body(4096, 'z');
    const WallClock::time_point t0 = WallClock::from_time_t(1'763'772'508);
    CurlSlist headers;
    REQUIRE(build_signed_headers(signer, target, body, content, creds, t0, headers));
    // What the allocating API signs for the same request.
    SigV4Signer check_signer("us-east-2", "xray");
    const SigningRequest request{"POST",
                                 "/v1/traces",
                                 {},
                                 {{"host", target.host},
                                  {"content-encoding", "gzip"},
                                  {"content-length", "4096"},
                                  {"content-type", "application/x-protobuf"}},
                                 body};
    const SignedHeaders expected = check_signer.sign(request, creds, t0);
    REQUIRE_FALSE(expected.authorization.empty());
    CHECK(lines_of(headers) ==
          std::vector<std::string>{"Host: xray.us-east-2.amazonaws.com",
                                   "Content-Type: application/x-protobuf", "Content-Encoding: gzip",
                                   "X-Amz-Date: " + expected.amz_date,
                                   "Authorization: " + expected.authorization,
                                   "Expect:", "X-Amz-Security-Token: token-1234"});
    // The next request of the same shape: signed and written into the same list, no allocation.
    std::size_t allocated = 0;
    {
        AllocationCounter counter;
        REQUIRE(build_signed_headers(signer, target, body, content, creds,
                                     t0 + std::chrono::seconds(7), headers));
        allocated = counter.count();
    }
#if XRAYD_COUNTING_ALLOCATIONS
    CHECK(allocated == 0);
#else
    MESSAGE("sanitizer build: allocations are not counted here (" << allocated << ")");
#endif
}

TEST_CASE("BlockPool rounds up to power-of-two classes, a top class just over 64 KiB, and exact "
          "heap blocks beyond") {
    BlockPool pool(segment_pool_shape, 1u << 20);
    CHECK(pool.block_size(1) == 256);
    CHECK(pool.block_size(256) == 256);
    CHECK(pool.block_size(257) == 512);
    CHECK(pool.block_size(40'000) == 65536);
    CHECK(pool.block_size(65536) == 65536);
    CHECK(pool.block_size(65537) == 65536 + 256);
    CHECK(pool.block_size(65536 + 256) == 65536 + 256);
    CHECK(pool.block_size(65536 + 257) == 65536 + 257);  // exact, unpooled
    const PoolBlock big = pool.acquire(70'000);
    REQUIRE(big.data != nullptr);
    CHECK(big.size == 70'000);
    CHECK(big.size_class == BlockPool::unpooled);
    pool.recycle(big);
    CHECK(pool.idle_bytes() == 0);  // never kept
}

TEST_CASE("A recycled block is handed out again for its class, and idle bytes stay within the "
          "bound") {
    BlockPool pool(segment_pool_shape, 4096);  // room for 16 idle 256 B blocks, or 4 of 1 KiB
    const PoolBlock a = pool.acquire(100);
    REQUIRE(a.data != nullptr);
    CHECK(a.size == 256);
    pool.recycle(a);
    CHECK(pool.idle_bytes() == 256);
    const PoolBlock b = pool.acquire(200);
    CHECK(b.data == a.data);  // the same block came back
    CHECK(pool.idle_bytes() == 0);
    pool.recycle(b);

    std::vector<PoolBlock> many;
    for (int i = 0; i < 10; ++i) {
        many.push_back(pool.acquire(1000));
        REQUIRE(many.back().data != nullptr);
    }
    for (const PoolBlock& block : many) {
        pool.recycle(block);
        CHECK(pool.idle_bytes() <= pool.max_idle_bytes());
    }
    CHECK(pool.idle_bytes() == 256 + 3 * 1024);  // the rest went back to the heap
    pool.trim();
    CHECK(pool.idle_bytes() == 0);
}

TEST_CASE("Blocks recycled on one thread and reused on others are never handed out twice") {
    BlockPool pool(segment_pool_shape, 1u << 20);
    constexpr int threads = 4;
    constexpr int rounds = 20'000;
    std::atomic<int> corrupted{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&pool, &corrupted, t] {
            std::array<PoolBlock, 8> held{};
            for (int r = 0; r < rounds; ++r) {
                PoolBlock& slot = held[static_cast<std::size_t>(r) % held.size()];
                if (slot.data != nullptr) {
                    const auto* bytes = static_cast<const unsigned char*>(slot.data);
                    // Still our pattern: nobody else was given this block meanwhile.
                    if (bytes[0] != t || bytes[slot.size - 1] != t) {
                        corrupted.fetch_add(1);
                    }
                    pool.recycle(slot);
                }
                slot = pool.acquire(static_cast<std::size_t>(100 + (r * 97) % 3000));
                if (slot.data == nullptr) {
                    corrupted.fetch_add(1);
                    continue;
                }
                std::memset(slot.data, t, slot.size);
            }
            for (const PoolBlock& b : held) {
                pool.recycle(b);
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    CHECK(corrupted.load() == 0);
    CHECK(pool.idle_bytes() <= pool.max_idle_bytes());
}

TEST_CASE("Pooled segments are charged their block size and the memory limit counts blocks") {
    const std::string body(200, 'x');
    MemoryBudget budget(3 * 512);  // three 512 B blocks: 80 B header + 200 B body each
    std::vector<SegmentPtr> held;
    for (int i = 0; i < 4; ++i) {
        held.push_back(Segment::make_pooled(budget, body, "id", "trace", TimePoint{}));
    }
    REQUIRE(held[0] != nullptr);
    CHECK(held[0]->body() == body);
    CHECK(held[0]->charged_bytes() == budget.segment_blocks().block_size(sizeof(Segment) + 200));
    CHECK(held[2] != nullptr);
    CHECK(held[3] == nullptr);  // the limit is reached: the caller counts a buffer-full drop
    CHECK(budget.used() == 3 * held[0]->charged_bytes());
    held.clear();
    CHECK(budget.used() == 0);  // every charge comes back
    CHECK(Segment::make_pooled(budget, body, "id", "trace", TimePoint{}) != nullptr);
}

TEST_CASE("A batch destroyed on another thread gives its blocks and its charge back") {
    MemoryBudget budget(64u << 20);
    std::optional<Batch> batch(std::in_place, budget);
    {
        SegmentPtr s = Segment::make_pooled(budget, R"({"a":1})", "id", "trace", TimePoint{});
        REQUIRE(s != nullptr);
        REQUIRE(batch->append(*s));
    }
    batch->seal();
    CHECK(batch->body() == R"({"TraceSegmentDocuments":["{\"a\":1}"]})");
    const std::size_t charged = budget.used();
    CHECK(charged > 0);
    std::thread([&batch] { batch.reset(); }).join();
    CHECK(budget.used() == 0);
    CHECK(budget.batch_blocks().idle_bytes() == charged);  // both blocks wait for the next batch
}

}  // namespace
}  // namespace xrayd

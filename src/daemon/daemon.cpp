// Daemon: start-up order, threads, signals, drain and the exit summary.
#include <xrayd/daemon/daemon.h>

#include <poll.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <thread>
#include <vector>

#include <xrayd/admin/admin_server.h>
#include <xrayd/admin/notifier.h>
#include <xrayd/admin/periodic_summary.h>
#include <xrayd/aws/credential_chain.h>
#include <xrayd/aws/credentials.h>
#include <xrayd/aws/credentials_clock.h>
#include <xrayd/aws/endpoint.h>
#include <xrayd/aws/imds.h>
#include <xrayd/aws/region.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/thread_name.h>
#include <xrayd/config/reload.h>
#include <xrayd/daemon/pipeline.h>
#include <xrayd/flow/event_loop.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/http/proxy_url.h>
#include <xrayd/ingest/ingest.h>
#include <xrayd/net/io_backend.h>
#include <xrayd/net/receiver.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd/otlp/otlp_exporter.h>
#include <xrayd/otlp/otlp_receiver.h>
#include <xrayd/proxy/sampling_proxy.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/spool/spool.h>
#include <xrayd/spool/spool_stage.h>
#include <xrayd/stats/summary.h>
#include <xrayd/telemetry/telemetry.h>
#include <xrayd/upload/local_sink.h>
#include <xrayd/upload/uploader.h>
#include "xrayd_config.h"

#include "daemon_state.h"
#include "startup_signal_watch.h"

namespace xrayd {

namespace {

constexpr std::size_t max_datagram_bytes = 65536;  // the UDP payload limit, rounded up
constexpr std::size_t queue_capacity = 16384;      // segments between receivers and batcher
constexpr int max_default_receivers = 4;
// Datagrams per recvmmsg call and per hand-over to the ingest (the epoll backend's slots).
constexpr std::size_t receive_batch = 16;
// io_uring receive slots per thread: a paced receiver gathers up to half of them per wake-up,
// which covers a whole batch of 50. Only the pages datagrams reach become resident.
constexpr std::size_t receive_ring_buffers = 128;

// The Go daemon's "OS/<goos>-<goarch>" spelling.
std::string os_arch() {
    utsname u{};
    if (uname(&u) != 0) {
        return "linux-unknown";
    }
    std::string_view m = u.machine;
    if (m == "x86_64") {
        return "linux-amd64";
    }
    if (m == "aarch64") {
        return "linux-arm64";
    }
    return fmt::format("linux-{}", m);
}

std::string user_agent(const Environment& env) {
    return fmt::format("xrayd/{} xray-agent/xray-daemon/{} exec-env/{} OS/{}", XRAYD_VERSION,
                       XRAYD_VERSION, env.get_non_empty("AWS_EXECUTION_ENV").value_or("UNKNOWN"),
                       os_arch());
}

std::string_view signal_name(std::uint32_t signo) {
    switch (signo) {
    case SIGINT: return "interrupt";  // Go's names, as the Go daemon logs them
    case SIGTERM: return "terminated";
    default: return "unknown";
    }
}

}  // namespace

Daemon::State::State(const Config& c, const Environment& e, Logger& l, std::vector<std::string> a)
    : config(c),
      logger(l),
      budget(static_cast<std::size_t>(c.queue.buffer_memory_mb) << 20),
      queue{queue_capacity},
      args(std::move(a)),
      env(e),
      current(c) {}

void Daemon::State::sample(HealthState& h) {
    // First the kernel drops a burst left uncounted (SO_RXQ_OVFL waits for a datagram).
    std::size_t failed = 0;
    for (const auto& r : receivers) {
        r->sync_kernel_drops();
        failed += r->failed() ? 1 : 0;
    }
    h.set_receivers(receivers.size(), failed);
    const CounterSnapshot now = counters.snapshot();
    upload_health.update(now, Clock::now(), h);
    h.set(Gauge::queue_depth, static_cast<std::int64_t>(queue.size_approx()));
    h.set(Gauge::memory_in_use_bytes, static_cast<std::int64_t>(budget.used()));
    h.set(Gauge::memory_limit_bytes, static_cast<std::int64_t>(budget.limit()));
    // Derived from the counters: the sink's own count belongs to the pipeline thread.
    const std::uint64_t out = now.total(CounterKind::sent) + now.total(CounterKind::rejected) +
                              now.total(CounterKind::dropped);
    const std::uint64_t in = now.total(CounterKind::received);
    const std::uint64_t spooled = spool ? spool->gauges().segments.load() : 0;
    h.set(Gauge::held_segments,
          static_cast<std::int64_t>(in > out + spooled ? in - out - spooled : 0));
    if (spool) {
        h.set(Gauge::spool_segments, static_cast<std::int64_t>(spooled));
        h.set(Gauge::spool_bytes, static_cast<std::int64_t>(spool->gauges().bytes.load()));
        h.set(Gauge::spool_files, static_cast<std::int64_t>(spool->gauges().files.load()));
    }
    if (otlp_spool) {
        const otlp::OtlpSpoolGauges& g = otlp_spool->gauges();
        h.set(Gauge::otlp_spool_spans, static_cast<std::int64_t>(g.spans.load()));
        h.set(Gauge::otlp_spool_bytes, static_cast<std::int64_t>(g.bytes.load()));
        h.set(Gauge::otlp_spool_files, static_cast<std::int64_t>(g.files.load()));
    }
    if (otlp_exporter) {
        h.set(Gauge::otlp_held_spans, static_cast<std::int64_t>(otlp_exporter->held_spans()));
        h.set(Gauge::otlp_uploads_in_flight, static_cast<std::int64_t>(otlp_exporter->in_flight()));
    }
    h.set_credentials_usable(!credentials || credentials->current() != nullptr);
}

Daemon::Daemon(const Config& config, const Environment& env, Logger& logger,
               std::vector<std::string> args)
    : state_(std::make_unique<State>(config, env, logger, std::move(args))) {
    // SIGTERM or SIGINT during start-up ends the credential fetches that can block it.
    const StartupSignalWatch watch(*state_->credentials_cancel);
    try {
        start_up();
    } catch (const StartupError&) {
        if (watch.signalled()) {  // the failure is the cancelled fetch: a requested exit
            throw StartupError("Got shutdown signal during start-up; exiting", 0);
        }
        throw;
    }
}

void Daemon::start_up() {
    State& s = *state_;
    const Config& config = s.config;
    const Environment& env = s.env;
    Logger& logger = s.logger;
    logger.info("Initializing AWS X-Ray daemon {} (xrayd)", XRAYD_VERSION);
    logger.info("Using buffer memory limit of {} MB", config.queue.buffer_memory_mb);

    BatchLimits limits;
    limits.max_body_bytes = config.batch.max_batch_bytes;
    limits.linger = config.batch.linger;

    // The disk spool, before binding: a directory that cannot be used (missing, read-only,
    // another daemon's) exits before the port is taken.
    if (config.spool.enabled()) {
        s.open_spools(limits);
    }

    // Where batches go. Decided before binding so that a bad setting exits before the port is
    // taken.
    if (!config.upload.local_sink.empty()) {
        // No credentials, so no sampling proxy; -t is still checked, as the Go daemon does.
        if (auto tcp = resolve_udp_address(config.proxy.tcp_address); !tcp) {
            throw StartupError(fmt::format("Bad TCP address (-t) \"{}\": {}",
                                           config.proxy.tcp_address, tcp.error()));
        }
        auto local = LocalSink::create(config.upload.local_sink, s.counters, logger);
        s.sink_loop = local.get();
        s.sink = std::move(local);
        logger.info("Writing batches to the local sink {} instead of uploading to X-Ray (no "
                    "sampling proxy, no telemetry)",
                    config.upload.local_sink == "-" ? "(stdout)" : config.upload.local_sink);
    } else {
        if (!config.transport.proxy.empty()) {
            if (auto checked = check_proxy_url(config.transport.proxy); !checked) {
                throw StartupError(checked.error());
            }
            logger.debug("Using proxy address: {}", config.transport.proxy);
        }
        // One IMDS client for region, credentials and host identity: it remembers the token
        // and whether IMDSv1 is in use.
        s.imds = std::make_shared<ImdsClient>(ImdsOptions::from_environment(env), s.clock,
                                              s.credentials_cancel);
        auto region = resolve_region(RegionOptions{config.aws.region, config.aws.local_mode}, env,
                                     s.imds.get(), logger);
        if (!region) {
            throw StartupError(std::string(region_not_found_message));
        }
        const EndpointResolver endpoints(
            region->region, EndpointSettings::from_environment(config.aws.endpoint, env));
        const ResolvedEndpoint endpoint = endpoints.xray_or_throw();
        if (endpoint.source == std::string_view("default")) {
            logger.debug("Using default X-Ray endpoint");
        }
        logger.debug("Using Endpoint: {} (from {})", endpoint.url, endpoint.source);

        CredentialOptions credential_options;
        credential_options.region = region->region;
        credential_options.role_arn = config.aws.role_arn;
        credential_options.endpoints = endpoints.settings();
        credential_options.imds = s.imds->options();
        credential_options.imds_client = s.imds;
        credential_options.cancel = s.credentials_cancel;
        s.credentials = make_default_credentials_chain(credential_options, env, s.clock, logger);
        logger.info("Using AWS credentials from {}", s.credentials->source());

        UploaderOptions options;
        options.endpoint = endpoint.url;
        options.region = endpoint.signing_region.empty() ? region->region : endpoint.signing_region;
        options.concurrency = std::max(1, config.upload.concurrency);
        options.request_timeout = config.upload.request_timeout;
        options.transport = config.transport;
        options.transport.user_agent = user_agent(env);
        options.retry_budget = config.upload.retry_budget;
        options.backpressure = config.queue.backpressure;
        options.latency = &s.upload_latency;
        options.spill = s.spool_stage.get();

        // Telemetry (the Go daemon's step 7): records start once a datagram has arrived.
        const HostIdentity host =
            resolve_host_identity(env, config.aws.local_mode, s.imds.get(), logger);
        TelemetryOptions telemetry;
        telemetry.endpoint = options.endpoint;
        telemetry.region = options.region;
        telemetry.resource_arn = config.aws.resource_arn;
        telemetry.instance_id = host.instance_id;
        telemetry.hostname = host.hostname;
        telemetry.request_timeout = config.upload.request_timeout;
        telemetry.transport = options.transport;
        if (!config.aws.resource_arn.empty()) {
            logger.debug("ARN of the AWS resource running the daemon: {}", config.aws.resource_arn);
        }
        s.telemetry = Telemetry::create(std::move(telemetry), *s.credentials, s.counters, logger);

        // The sampling proxy (step 9): listens when the receivers start.
        SamplingProxyOptions proxy;
        proxy.address = config.proxy.tcp_address;
        proxy.upstream = options.endpoint;
        proxy.region = options.region;
        proxy.forward_all = config.proxy.forward_all;
        proxy.listen_failure_non_fatal = config.proxy.optional;
        proxy.transport = config.transport;
        s.proxy = SamplingProxy::create(std::move(proxy), *s.credentials, s.counters, logger);
        if (config.otlp.enabled()) {
            start_otlp(endpoint.url, options);
        }
        auto uploader =
            Uploader::create(std::move(options), *s.credentials, s.counters, logger, &s.budget);
        s.uploader = uploader.get();
        s.sink_loop = uploader.get();
        s.sink = std::move(uploader);
    }

    s.batcher = std::make_unique<Batcher>(limits, s.budget, s.counters);
    logger.debug("Batch size: {}", limits.max_segments);
    s.pipeline =
        std::make_unique<Pipeline>(s.queue, *s.batcher, *s.sink, *s.sink_loop, s.spool_stage.get());
    s.queue.set_waker(*s.sink_loop);

    const int receivers = config.net.receivers > 0 ? config.net.receivers
                                                   : default_receiver_count(max_default_receivers);
    // Probe before binding, so a forced io_uring that cannot work exits before the port is taken.
    const IoUringSupport io_uring = probe_io_uring();
    (void)resolve_io_backend(config.net.io_backend, io_uring);
    std::vector<UniqueFd> sockets = open_udp_sockets(
        config.net.udp_address,
        UdpSocketOptions{receivers, config.net.receive_buffer_bytes, config.net.steer_by_cpu},
        logger);
    s.bound_address = local_address(sockets.front().get());
    logger.debug("Listening on UDP {}", s.bound_address);
    logger.info("{}", backend_choice_message(config.net.io_backend, io_uring));

    ReceiverOptions receiver_options;
    receiver_options.slot_bytes = max_datagram_bytes;
    receiver_options.padding = datagram_padding;
    receiver_options.batch = receive_batch;
    receiver_options.ring_buffers = receive_ring_buffers;
    for (UniqueFd& socket : sockets) {
        auto& ingest = s.ingests.emplace_back(std::make_unique<Ingest>(
            s.queue, s.budget, s.counters, logger, s.ingest_limits, max_datagram_bytes));
        ingest->pace_with(s.pipeline->delivery_hint(), sockets.size());
        receiver_options.pace = ingest.get();
        s.receivers.push_back(make_receiver(config.net.io_backend, std::move(socket), *ingest,
                                            s.counters, logger, receiver_options, io_uring));
    }
    // The Go daemon's line, with xrayd's meaning: receive slots, not a cap on held segments
    // (those are bounded by the memory limit, by their real size).
    if (config.admin.enabled()) {
        AdminOptions admin;
        admin.address = config.admin.address;
        admin.ready_failure_threshold = config.admin.ready_failure_threshold;
        admin.build_info = {{"version", XRAYD_VERSION},
                            {"io_backend", std::string(s.receivers.front()->backend())}};
        admin.refresh = [&s](HealthState& h) { s.sample(h); };
        s.admin = std::make_unique<AdminServer>(std::move(admin), s.counters, s.health,
                                                s.upload_latency, logger);
        s.admin->start();  // StartupError (exit 1) when the port is taken, before any thread
    }
    if (s.otlp_receiver) {
        s.otlp_receiver->start();  // StartupError (exit 1) when the port is taken
        s.otlp_exporter->start();
    }
    const std::size_t slots = s.receivers.front()->receive_slots();
    logger.info("{} segment buffers allocated ({} receive slots of 64 KiB per thread, {} threads)",
                receivers * slots, slots, receivers);
}

Daemon::~Daemon() = default;

const Counters& Daemon::counters() const noexcept {
    return state_->counters;
}

void Daemon::reload(PeriodicSummary& summary) {
    State& s = *state_;
    auto result = reload_config(s.args, s.env, s.current);
    if (!result) {
        for (const std::string& e : result.error()) {
            s.logger.error("Reload refused: {}", e);
        }
        s.logger.warn("Keeping the running configuration");
        return;
    }
    ConfigReload& r = result.value();
    if (r.changes.empty()) {
        s.logger.info("Reload: configuration unchanged");
        return;
    }
    // Every reloadable setting applies now: log level, readiness threshold, summary interval,
    // proxy allow-list, linger, upload concurrency, retry budget and request timeout.
    for (const std::string& change : r.changes) {  // before a quieter level takes effect
        s.logger.info("Reload: {}", change);
    }
    s.logger.set_level(r.next.log.level);
    if (s.admin) {
        s.admin->set_ready_failure_threshold(r.next.admin.ready_failure_threshold);
    }
    summary.set_interval(r.next.admin.summary_interval, Clock::now());
    if (s.proxy) {
        s.proxy->set_forward_all(r.next.proxy.forward_all);
    }
    if (r.next.batch.linger != s.current.batch.linger) {
        s.pipeline->set_linger(r.next.batch.linger);
    }
    if (s.uploader != nullptr) {
        if (r.next.upload.concurrency != s.current.upload.concurrency) {
            s.uploader->set_concurrency(std::max(1, r.next.upload.concurrency));
        }
        s.uploader->set_retry_settings(r.next.upload.retry_budget, r.next.upload.request_timeout);
    }
    s.current = std::move(r.next);
}

int Daemon::run(int signal_fd) {
    State& s = *state_;
    if (s.proxy) {
        (void)s.proxy->start();  // false: --proxy-optional and the address was taken (logged)
    }
    if (s.telemetry) {
        s.telemetry->start();
    }
    std::thread pipeline_thread([&s] {
        name_this_thread("xrayd-pipeline");
        s.pipeline->run();
    });
    std::vector<std::thread> receiver_threads;
    const std::vector<int> cpus = s.config.net.pin_receivers ? allowed_cpus() : std::vector<int>{};
    for (std::size_t i = 0; i < s.receivers.size(); ++i) {
        const int cpu = cpus.empty() ? -1 : cpus[i % cpus.size()];
        receiver_threads.emplace_back([&s, i, cpu] {
            const std::string name = fmt::format("xrayd-recv{}", i);
            name_this_thread(name.c_str());
            if (cpu >= 0) {
                if (auto pinned = pin_current_thread_to_cpu(cpu); !pinned) {
                    s.logger.warn("Could not pin receiver {} to CPU {}: {}", i, cpu,
                                  std::strerror(pinned.error()));
                }
            }
            s.receivers[i]->run();
        });
    }
    s.logger.info("Receiving segments on UDP {} with {} {} receiver thread(s)", s.bound_address,
                  s.receivers.size(), s.receivers.front()->backend());

    Notifier notifier(s.logger);
    s.health.set_listening(true);
    notifier.ready(fmt::format("Receiving segments on UDP {}", s.bound_address));
    PeriodicSummary summary(s.config.admin.summary_interval, s.counters.snapshot(), Clock::now());

    std::uint32_t signo = 0;
    while (signo == 0) {
        pollfd p{signal_fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, summary.poll_timeout_ms(Clock::now()));
        if (ready == 0) {
            s.sample(s.health);
            if (auto line = summary.tick(s.counters.snapshot(), Clock::now(), &s.health)) {
                s.logger.info("{}", *line);
            }
            continue;
        }
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        signalfd_siginfo info{};
        const ssize_t n = ::read(signal_fd, &info, sizeof info);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != static_cast<ssize_t>(sizeof info)) {
            s.logger.error("Reading signals failed ({}); shutting down", std::strerror(errno));
            signo = SIGTERM;
            break;
        }
        if (info.ssi_signo == SIGHUP) {
            s.logger.reopen();
            s.logger.info("Got SIGHUP: log file reopened");
            notifier.reloading();
            reload(summary);
            notifier.ready(fmt::format("Receiving segments on UDP {}", s.bound_address));
            continue;
        }
        signo = info.ssi_signo;
    }
    s.logger.info("Got shutdown signal: {}", signal_name(signo));
    s.credentials_cancel->cancel();  // a hung credential refresh must not hold up the exit
    s.health.set_listening(false);
    notifier.stopping("Draining buffered segments");

    // Stop receiving first (each receiver reads what its socket already holds), then drain.
    if (s.proxy) {
        s.proxy->stop();
    }
    if (s.otlp_receiver) {
        s.otlp_receiver->stop();  // requests being answered finish first
    }
    for (auto& r : s.receivers) {
        r->stop();
    }
    for (auto& t : receiver_threads) {
        t.join();
    }
    const TimePoint deadline = Clock::now() + s.config.daemon.shutdown_timeout;
    if (s.otlp_exporter) {
        s.otlp_exporter->begin_drain(deadline);  // spans drain beside the segments
    }
    s.pipeline->drain(deadline);
    pipeline_thread.join();
    const std::size_t otlp_held = s.otlp_exporter ? s.otlp_exporter->drain(deadline) : 0;
    if (s.telemetry) {
        // After the drain, so the final record has the final sends; within the same deadline.
        s.telemetry->stop(deadline);
    }

    const std::size_t held = s.pipeline->held_at_exit();
    const CounterSnapshot snapshot = s.counters.snapshot();
    if (held > 0) {
        s.logger.warn("Shutdown deadline of {} ms passed with {} segments not sent",
                      s.config.daemon.shutdown_timeout.count(), held);
    }
    std::optional<std::uint64_t> spooled;
    if (s.spool) {
        spooled = s.spool->gauges().segments.load();
        if (*spooled > 0) {
            s.logger.info("{} segments stay in the spool {}; they are sent after the next start",
                          *spooled, s.spool->path());
        }
    }
    s.logger.info("Exit summary: {}", format_summary(snapshot, held, spooled));
    if (s.otlp_exporter) {
        if (otlp_held > 0) {
            s.logger.warn("Shutdown deadline of {} ms passed with {} OTLP spans not sent",
                          s.config.daemon.shutdown_timeout.count(), otlp_held);
        }
        std::optional<std::uint64_t> otlp_spooled;
        if (s.otlp_spool) {
            otlp_spooled = s.otlp_spool->gauges().spans.load();
            if (*otlp_spooled > 0) {
                s.logger.info("{} OTLP spans stay in the spool {}; they are sent after the next "
                              "start",
                              *otlp_spooled, s.otlp_spool->path());
            }
        }
        s.logger.info("Exit summary: {}", format_otlp_summary(snapshot, otlp_held, otlp_spooled));
        if (!otlp_accounting_balances(snapshot, otlp_held, otlp_spooled.value_or(0))) {
            s.logger.error("OTLP accounting does not balance: received != sent + rejected + "
                           "dropped + held{}",
                           s.otlp_spool ? " + spooled" : "");
        }
    }
    if (s.admin) {
        s.admin->stop();
    }
    if (!accounting_balances(snapshot, held, spooled.value_or(0))) {
        s.logger.error(
            "Accounting does not balance: received != sent + rejected + dropped + held{}",
            s.spool ? " + spooled" : "");
    }
    return 0;
}

}  // namespace xrayd
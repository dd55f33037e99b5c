// Daemon::State, private to src/daemon: what a Daemon holds, shared by the start-up and run
// loop (daemon.cpp) and the set-up of the spools and OTLP (daemon_spool_otlp.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <xrayd/admin/admin_server.h>
#include <xrayd/admin/health_state.h>
#include <xrayd/aws/credentials.h>
#include <xrayd/aws/credentials_clock.h>
#include <xrayd/aws/imds.h>
#include <xrayd/batch/batch_sink.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/environment.h>
#include <xrayd/config/config.h>
#include <xrayd/daemon/daemon.h>
#include <xrayd/daemon/pipeline.h>
#include <xrayd/flow/event_loop.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/ingest/ingest.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/receiver.h>
#include <xrayd/otlp/otlp_exporter.h>
#include <xrayd/otlp/otlp_receiver.h>
#include <xrayd/otlp/otlp_spool.h>
#include <xrayd/proxy/sampling_proxy.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/spool/spool.h>
#include <xrayd/spool/spool_stage.h>
#include <xrayd/stats/counters.h>
#include <xrayd/stats/latency_histogram.h>
#include <xrayd/telemetry/telemetry.h>
#include <xrayd/upload/uploader.h>

namespace xrayd {

struct Daemon::State {
    const Config& config;
    Logger& logger;
    Counters counters;
    MemoryBudget budget;
    SegmentQueue queue;
    IngestLogLimits ingest_limits;
    // Declared before the credentials: the provider's refresh thread uses the clock.
    SystemCredentialsClock clock;
    // Fired at shutdown: ends any credential fetch in progress (IMDS, container, STS, process).
    std::shared_ptr<Cancellation> credentials_cancel = Cancellation::create();
    std::shared_ptr<ImdsClient> imds;
    std::unique_ptr<CredentialsProvider> credentials;
    LatencyHistogram upload_latency;  // before the sink: the uploader records into it
    // The disk spool (--spool-dir), before the sink: the uploader spills into its stage.
    std::unique_ptr<spool::Spool> spool;
    std::unique_ptr<spool::SpoolStage> spool_stage;
    std::unique_ptr<BatchSink> sink;
    // The sink's I/O loop (the same object), driven by the pipeline.
    EventLoop* sink_loop = nullptr;
    Uploader* uploader = nullptr;  // the sink when uploading to X-Ray; null with the local sink
    std::unique_ptr<Telemetry> telemetry;  // null with the local sink
    std::unique_ptr<SamplingProxy> proxy;  // null with the local sink
    // --otlp-address: its spool (with --spool-dir), the exporter, then the receiver that
    // offers to it (destroyed first).
    std::unique_ptr<otlp::OtlpSpool> otlp_spool;
    std::unique_ptr<otlp::OtlpExporter> otlp_exporter;
    std::unique_ptr<otlp::OtlpReceiver> otlp_receiver;
    std::unique_ptr<Batcher> batcher;
    std::unique_ptr<Pipeline> pipeline;
    std::vector<std::unique_ptr<Ingest>> ingests;
    std::vector<std::unique_ptr<Receiver>> receivers;
    std::string bound_address;  // the UDP address as bound (the real port when asked for 0)
    HealthState health;
    UploadHealthTracker upload_health;
    // Last: destroyed first, so its thread stops before what its refresh callback reads.
    std::unique_ptr<AdminServer> admin;

    // Samples what /readyz, /metrics and the summary show. Any thread (daemon.cpp).
    void sample(HealthState& h);

    // --spool-dir: opens the segment spool and its stage, and with --otlp-address the OTLP
    // spool beside it (daemon_spool_otlp.cpp). Throws StartupError.
    void open_spools(const BatchLimits& limits);

    // SIGHUP reload: the start-up arguments, the environment, and the configuration in force.
    std::vector<std::string> args;
    const Environment& env;
    Config current;

    State(const Config& c, const Environment& e, Logger& l, std::vector<std::string> a);
};

}  // namespace xrayd

// Daemon start-up of --spool-dir (the segment spool, and the OTLP spool beside it) and of
// --otlp-address (the OTLP exporter and receiver).
#include <xrayd/daemon/daemon.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include <xrayd/batch/batcher.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/config/config.h>
#include <xrayd/otlp/otlp_exporter.h>
#include <xrayd/otlp/otlp_receiver.h>
#include <xrayd/otlp/otlp_spool.h>
#include <xrayd/spool/spool.h>
#include <xrayd/spool/spool_options.h>
#include <xrayd/spool/spool_stage.h>
#include <xrayd/upload/uploader.h>
#include <xrayd/xray/xray_request.h>

#include "daemon_state.h"

namespace xrayd {

void Daemon::State::open_spools(const BatchLimits& limits) {
    if (!config.upload.local_sink.empty()) {
        throw StartupError("--spool-dir cannot be combined with --local-sink: the spool keeps "
                           "segments for X-Ray, and the local sink never fails to take them; "
                           "drop one of the two");
    }
    spool::SpoolOptions options;
    options.dir = config.spool.dir;
    // With OTLP on, its requests get a quarter of the quota in a directory of their own.
    const std::uint64_t segment_quota =
        config.otlp.enabled() ? config.spool.max_bytes / 4 * 3 : config.spool.max_bytes;
    options.max_bytes = segment_quota;
    options.sync = config.spool.sync;
    options.at_quota = config.queue.backpressure;
    spool = spool::Spool::open(std::move(options), counters, logger);
    spool_stage = std::make_unique<spool::SpoolStage>(*spool, config.spool.mode, budget, limits);
    logger.info("Spooling to {} ({} mode, at most {} bytes, {} sync)", config.spool.dir,
                spool::to_string(config.spool.mode), segment_quota,
                spool::to_string(config.spool.sync));
    if (config.otlp.enabled()) {
        otlp::OtlpSpoolOptions otlp_options;
        otlp_options.dir = (std::filesystem::path(config.spool.dir) / "otlp").string();
        otlp_options.max_bytes = config.spool.max_bytes / 4;
        otlp_options.sync = config.spool.sync;
        otlp_options.at_quota = config.queue.backpressure;
        otlp_spool = otlp::OtlpSpool::open(std::move(otlp_options), counters, logger);
        logger.info("Spooling OTLP requests to {} (at most {} bytes)", otlp_spool->path(),
                    config.spool.max_bytes / 4);
    }
}

void Daemon::start_otlp(const std::string& xray_endpoint, const UploaderOptions& uploads) {
    State& s = *state_;
    const Config& config = s.config;
    otlp::OtlpExporterOptions exporter;
    // The X-Ray endpoint as resolved for segments (FIPS, dual-stack, partition,
    // AWS_ENDPOINT_URL_XRAY, --endpoint) + /v1/traces, unless --otlp-endpoint names the URL.
    exporter.url = config.otlp.endpoint.empty()
                       ? make_xray_target(xray_endpoint, otlp::traces_path).url
                       : config.otlp.endpoint;
    exporter.region = uploads.region;
    exporter.concurrency = uploads.concurrency;
    exporter.request_timeout = uploads.request_timeout;
    exporter.transport = uploads.transport;
    exporter.retry_budget = uploads.retry_budget;
    exporter.linger = config.batch.linger;
    exporter.backpressure = config.queue.backpressure;
    exporter.spool = s.otlp_spool.get();
    s.otlp_exporter = otlp::OtlpExporter::create(std::move(exporter), *s.credentials, s.counters,
                                                 s.logger, s.budget);
    otlp::OtlpReceiverOptions receiver;
    receiver.address = config.otlp.address;
    receiver.max_body_bytes = config.otlp.max_body_bytes;
    receiver.max_inflated_bytes =
        std::max(receiver.max_inflated_bytes,
                 config.otlp.max_body_bytes * config_limits::otlp_inflate_ratio);
    s.otlp_receiver =
        otlp::OtlpReceiver::create(std::move(receiver), *s.otlp_exporter, s.counters, s.logger);
    s.logger.debug("Posting OTLP spans to {}",
                   config.otlp.endpoint.empty()
                       ? make_xray_target(xray_endpoint, otlp::traces_path).url
                       : config.otlp.endpoint);
}

}  // namespace xrayd

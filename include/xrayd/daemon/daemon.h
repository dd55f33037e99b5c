// Daemon: builds the pipeline from a Config and runs it until a shutdown signal.
// socket → receiver threads (Ingest) → SegmentQueue → pipeline thread (Batcher → BatchSink).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <xrayd/common/environment.h>
#include <xrayd/config/config.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

struct UploaderOptions;

class PeriodicSummary;

class Daemon {
public:
    // Start-up: resolves region, endpoint and credentials, builds the sink, binds the sockets.
    // Throws StartupError, with the Go daemon's message where it has one, before any pipeline
    // thread starts. Meanwhile a SIGTERM or SIGINT pending cancels the credential fetches (a
    // StartupSignalWatch thread looks), and a start-up that then fails throws StartupError with
    // exit code 0. The references must outlive the Daemon. `args` (argv without argv[0]) are
    // loaded again on SIGHUP.
    Daemon(const Config& config, const Environment& env, Logger& logger,
           std::vector<std::string> args = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts the threads and serves until SIGINT or SIGTERM is read from `signal_fd` (a
    // signalfd for SIGINT, SIGTERM and SIGHUP, blocked in every thread); SIGHUP reopens the
    // log and reloads the configuration (what can change safely). Then stops receiving, drains
    // within the shutdown timeout, logs the exit summary and returns the process exit code. Call
    // once, from the main thread.
    [[nodiscard]] int run(int signal_fd);

    [[nodiscard]] const Counters& counters() const noexcept;

private:
    void start_up();  // the constructor's work
    // --otlp-address: the OTLP exporter (posting to the X-Ray endpoint's /v1/traces, with the
    // uploads' region, transport, concurrency and retry settings) and its receiver, not started.
    void start_otlp(const std::string& xray_endpoint, const UploaderOptions& uploads);
    void reload(PeriodicSummary& summary);

    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd

// xrayd's entry point: configuration, logging, then the daemon. Exit codes as the Go daemon's.
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <xrayd/common/environment.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/config/config_loader.h>
#include <xrayd/daemon/daemon.h>
#include <xrayd/daemon/health_check.h>
#include <xrayd/http/curl.h>
#include <xrayd/log/log_file.h>
#include <xrayd/log/logger.h>

namespace {

void write_all(int fd, const std::string& text) {
    xrayd::FdSink(fd).write(text);
}

}  // namespace

int main(int argc, char** argv) {
    // The signals the daemon handles are blocked in every thread (all created later inherit
    // the mask) and read from a signalfd by the main thread. SIGPIPE is ignored: a peer closing
    // a TLS connection must not kill the process.
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &handled, nullptr) != 0) {
        std::perror("xrayd: pthread_sigmask");
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);

    const std::vector<std::string> args(argv + 1, argv + argc);
    const xrayd::Environment env = xrayd::Environment::from_process();
    const xrayd::CliOutcome outcome = xrayd::load_config(args, env);
    write_all(STDOUT_FILENO, outcome.out);
    write_all(STDERR_FILENO, outcome.err);
    if (!outcome.config) {
        return outcome.exit_code;
    }
    const xrayd::Config& config = *outcome.config;
    if (outcome.health_check) {
        try {
            const xrayd::CurlGlobal curl = xrayd::CurlGlobal::init();
            std::string why;
            const int status = xrayd::health_check(config, &why);
            write_all(status == 0 ? STDOUT_FILENO : STDERR_FILENO, "xrayd: " + why + "\n");
            return status;
        } catch (const xrayd::StartupError& e) {
            write_all(STDERR_FILENO, std::string("xrayd: ") + e.what() + "\n");
            return 1;
        }
    }

    xrayd::Logger logger(config.log.level);
    try {
        if (!config.log.file.empty()) {
            xrayd::LogFileOptions file_options;
            file_options.rotation = config.log.rotation;
            file_options.rotation_bytes = config.log.rotation_bytes;
            logger.set_sink(xrayd::FileSink::open(config.log.file, file_options));
        }
        for (const std::string& warning : outcome.warnings) {
            logger.warn("{}", warning);
        }
        const xrayd::UniqueFd signals(::signalfd(-1, &handled, SFD_CLOEXEC));
        if (!signals) {
            throw xrayd::StartupError(fmt::format("signalfd: {}", std::strerror(errno)));
        }
        const xrayd::CurlGlobal curl = xrayd::CurlGlobal::init();
        xrayd::Daemon daemon(config, env, logger, args);
        return daemon.run(signals.get());
    } catch (const xrayd::StartupError& e) {
        if (e.exit_code() == 0) {
            logger.info("{}", e.what());  // a shutdown asked for during start-up
        } else {
            logger.error("{}", e.what());
        }
        return e.exit_code();
    }
}

// GatedServer: libmicrohttpd behind a ConnectionGate.
#include <xrayd/http/gated_server.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <utility>

#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

template <typename Callback>
MHD_OptionItem callback_option(MHD_OPTION option, Callback* callback, void* cls) noexcept {
    return MHD_OptionItem{option, reinterpret_cast<std::intptr_t>(callback), cls};
}

MHD_OptionItem value_option(MHD_OPTION option, std::intptr_t value) noexcept {
    return MHD_OptionItem{option, value, nullptr};
}

}  // namespace

GatedServer::GatedServer(std::string name, Logger& logger) noexcept
    : name_(std::move(name)), logger_(logger) {}

GatedServer::~GatedServer() {
    stop();
}

void GatedServer::on_log(void* cls, const char* format, va_list args) noexcept {
    auto* server = static_cast<GatedServer*>(cls);
    if (!server->logger_.enabled(LogLevel::debug)) {
        return;
    }
    std::array<char, 512> line{};
    // libmicrohttpd passes a printf format and its arguments.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    const int n = std::vsnprintf(line.data(), line.size(), format, args);
#pragma GCC diagnostic pop
    if (n <= 0) {
        return;
    }
    std::string_view text(line.data(),
                          std::min<std::size_t>(static_cast<std::size_t>(n), line.size() - 1));
    while (!text.empty() && text.back() == '\n') {
        text.remove_suffix(1);
    }
    server->logger_.debug("{} http server: {}", server->name_, text);
}

std::unique_ptr<GatedServer> GatedServer::start(GatedServerOptions options, UniqueFd listen_fd,
                                                Counters& counters, Logger& logger) {
    std::unique_ptr<GatedServer> server(new GatedServer(options.gate.name, logger));
    const unsigned max_connections = options.gate.max_connections;
    server->gate_ =
        ConnectionGate::create(std::move(options.gate), std::move(listen_fd), counters, logger);
    std::vector<MHD_OptionItem> items = {
        callback_option(MHD_OPTION_EXTERNAL_LOGGER, &GatedServer::on_log, server.get()),
        callback_option(MHD_OPTION_NOTIFY_CONNECTION, &ConnectionGate::on_mhd_connection,
                        server->gate_.get()),
        value_option(MHD_OPTION_CONNECTION_LIMIT, max_connections),
        value_option(MHD_OPTION_CONNECTION_TIMEOUT, options.idle_timeout.count()),
    };
    if (options.memory_limit != 0) {
        items.push_back(value_option(MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                     static_cast<std::intptr_t>(options.memory_limit)));
    }
    if (!options.thread_per_connection && options.polling_threads > 1) {
        items.push_back(value_option(MHD_OPTION_THREAD_POOL_SIZE, options.polling_threads));
    }
    items.insert(items.end(), options.extra.begin(), options.extra.end());
    items.push_back(MHD_OptionItem{MHD_OPTION_END, 0, nullptr});
    // The gate accepts and checks each request head; libmicrohttpd gets the connection after.
    const unsigned int flags = (options.thread_per_connection
                                    ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD
                                    : MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL) |
                               MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    MHD_Daemon* daemon =
        MHD_start_daemon(flags, 0, nullptr, nullptr, options.handler, options.handler_cls,
                         MHD_OPTION_ARRAY, items.data(), MHD_OPTION_END);
    if (daemon == nullptr) {
        throw StartupError(server->name_ +
                           " http server failed to listen: libmicrohttpd could "
                           "not start on " +
                           options.address);
    }
    server->gate_->start(daemon);  // on a StartupError it has stopped the daemon
    server->daemon_ = daemon;
    return server;
}

void GatedServer::stop() noexcept {
    if (daemon_ == nullptr) {
        return;
    }
    // libmicrohttpd's close notifications still reach the gate while it joins: the gate goes
    // last.
    gate_->stop();
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
    gate_.reset();
}

int GatedServer::listen_fd() const noexcept {
    return gate_ ? gate_->listen_fd() : -1;
}

MHD_Result queue_closing_response(MHD_Connection* connection, unsigned status,
                                  MHD_Response* response) noexcept {
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

}  // namespace xrayd

// HttpTestServer on libmicrohttpd.
#include "http_test_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace xrayd::test {
namespace {

bool equal_nocase(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// Request state between the calls libmicrohttpd makes for one request.
struct PendingRequest {
    RecordedRequest record;
    bool counted = false;  // included in the server's active count
};

MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* record = static_cast<RecordedRequest*>(cls);
    record->headers.emplace_back(key != nullptr ? key : "", value != nullptr ? value : "");
    return MHD_YES;
}

}  // namespace

ScriptedResponse scripted(int status, std::string body,
                          std::vector<std::pair<std::string, std::string>> headers,
                          std::chrono::milliseconds delay) {
    ScriptedResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.delay = delay;
    return r;
}

std::optional<std::string> RecordedRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (equal_nocase(key, name)) {
            return value;
        }
    }
    return std::nullopt;
}

struct ServerCallbacks {
    static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                                 const char* method, const char* /*version*/,
                                 const char* upload_data, std::size_t* upload_data_size,
                                 void** request_state) {
        auto& server = *static_cast<HttpTestServer*>(cls);
        auto* pending = static_cast<PendingRequest*>(*request_state);
        if (pending == nullptr) {
            pending = new PendingRequest();
            *request_state = pending;
            pending->record.arrived = std::chrono::steady_clock::now();
            pending->record.method = method != nullptr ? method : "";
            pending->record.path = url != nullptr ? url : "";
            MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header,
                                      &pending->record);
            const MHD_ConnectionInfo* info =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (info != nullptr && info->client_addr != nullptr &&
                info->client_addr->sa_family == AF_INET) {
                const auto* in = reinterpret_cast<const sockaddr_in*>(info->client_addr);
                pending->record.client_port = ntohs(in->sin_port);
            }
            std::lock_guard lock(server.mutex_);
            pending->counted = true;
            ++server.active_;
            server.max_active_ = std::max(server.max_active_, server.active_);
            return MHD_YES;
        }
        if (*upload_data_size > 0) {
            pending->record.body.append(upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        return server_answer(server, connection, *pending);
    }

    static MHD_Result server_answer(HttpTestServer& server, MHD_Connection* connection,
                                    PendingRequest& pending) {
        ScriptedResponse response;
        {
            std::unique_lock lock(server.mutex_);
            if (server.options_.record_requests) {
                server.requests_.push_back(pending.record);
            } else {
                ++server.unrecorded_;
            }
            if (!server.script_.empty()) {
                response = std::move(server.script_.front());
                server.script_.pop_front();
            } else {
                response = server.default_response_;
            }
            if (response.delay.count() > 0) {
                server.stop_signal_.wait_for(lock, response.delay,
                                             [&] { return server.stopping_; });
            }
        }
        if (response.drop_connection) {
            return MHD_NO;
        }
        MHD_Response* reply = MHD_create_response_from_buffer(
            response.body.size(), response.body.data(), MHD_RESPMEM_MUST_COPY);
        if (reply == nullptr) {
            return MHD_NO;
        }
        for (const auto& [name, value] : response.headers) {
            (void)MHD_add_response_header(reply, name.c_str(), value.c_str());
        }
        const MHD_Result queued =
            MHD_queue_response(connection, static_cast<unsigned int>(response.status), reply);
        MHD_destroy_response(reply);
        return queued;
    }

    static void on_completed(void* cls, MHD_Connection* /*connection*/, void** request_state,
                             MHD_RequestTerminationCode why) {
        auto& server = *static_cast<HttpTestServer*>(cls);
        auto* pending = static_cast<PendingRequest*>(*request_state);
        if (pending == nullptr) {
            return;
        }
        *request_state = nullptr;
        if (pending->counted) {
            std::lock_guard lock(server.mutex_);
            --server.active_;
            server.answered_ += why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 1 : 0;
        }
        delete pending;
    }
};

HttpTestServer::HttpTestServer(HttpTestServerOptions options)
    : options_(options), port_(options.port) {
    if (options_.tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            throw std::runtime_error("libmicrohttpd was built without TLS support");
        }
        certificate_.emplace(TestCertificate::generate());
    }
    std::lock_guard lock(mutex_);
    start_locked();
}

HttpTestServer::~HttpTestServer() {
    stop();
}

void HttpTestServer::start_locked() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (options_.tls) {
        flags |= MHD_USE_TLS;
    }
    const char* key = certificate_ ? certificate_->key_pem().c_str() : nullptr;
    const char* cert = certificate_ ? certificate_->cert_pem().c_str() : nullptr;
    MHD_Daemon* daemon;
    if (options_.tls) {
        daemon = MHD_start_daemon(
            flags, port_, nullptr, nullptr, &ServerCallbacks::on_request, this,
            MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
            MHD_OPTION_NOTIFY_COMPLETED, &ServerCallbacks::on_completed, this,
            MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    } else {
        daemon = MHD_start_daemon(
            flags, port_, nullptr, nullptr, &ServerCallbacks::on_request, this,
            MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
            MHD_OPTION_NOTIFY_COMPLETED, &ServerCallbacks::on_completed, this, MHD_OPTION_END);
    }
    if (daemon == nullptr) {
        throw std::runtime_error("HttpTestServer: MHD_start_daemon failed on port " +
                                 std::to_string(port_));
    }
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == nullptr || info->port == 0) {
        MHD_stop_daemon(daemon);
        throw std::runtime_error("HttpTestServer: cannot read the bound port");
    }
    port_ = info->port;
    daemon_ = daemon;
}

void HttpTestServer::stop() {
    MHD_Daemon* daemon;
    {
        std::lock_guard lock(mutex_);
        daemon = std::exchange(daemon_, nullptr);
        if (daemon == nullptr) {
            return;
        }
        stopping_ = true;
    }
    stop_signal_.notify_all();
    // Outside the lock: the connection threads it joins take the lock.
    MHD_stop_daemon(daemon);
    std::lock_guard lock(mutex_);
    stopping_ = false;
}

void HttpTestServer::start() {
    std::lock_guard lock(mutex_);
    if (daemon_ == nullptr) {
        start_locked();
    }
}

bool HttpTestServer::running() const {
    std::lock_guard lock(mutex_);
    return daemon_ != nullptr;
}

std::string HttpTestServer::url() const {
    return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::string HttpTestServer::ca_file() const {
    return certificate_ ? certificate_->cert_path() : std::string();
}

void HttpTestServer::push_response(ScriptedResponse response) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(response));
}

void HttpTestServer::set_default_response(ScriptedResponse response) {
    std::lock_guard lock(mutex_);
    default_response_ = std::move(response);
}

std::vector<RecordedRequest> HttpTestServer::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

std::vector<RecordedRequest> HttpTestServer::take_requests() {
    std::lock_guard lock(mutex_);
    unrecorded_ += requests_.size();
    return std::exchange(requests_, {});
}

std::size_t HttpTestServer::request_count() const {
    std::lock_guard lock(mutex_);
    return requests_.size() + unrecorded_;
}

std::size_t HttpTestServer::max_concurrent() const {
    std::lock_guard lock(mutex_);
    return max_active_;
}

std::size_t HttpTestServer::answered_count() const {
    std::lock_guard lock(mutex_);
    return answered_;
}

}  // namespace xrayd::test

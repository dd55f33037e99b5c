// The default credential chain, its sources and the refreshing provider.
#include <xrayd/aws/credential_chain.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include <xrayd/aws/shared_config.h>
#include <xrayd/aws/sts.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/http_client.h>

#include "hash.h"
#include "text_util.h"

extern char** environ;

namespace xrayd {

namespace {

using aws_detail::wipe;

// --- RefreshingCredentialsProvider helpers -------------------------------------------------

// Credentials from a JSON document with AccessKeyId, SecretAccessKey, `token_key`, Expiration.
Result<std::shared_ptr<const Credentials>, std::string> credentials_from_json(
    std::string_view what, std::string_view text, std::string_view token_key,
    bool expiration_required) {
    auto doc = aws_detail::parse_json_object(text);
    if (!doc) {
        return fail(fmt::format("{}: {}", what, doc.error()));
    }
    const auto key = doc.value().string("AccessKeyId");
    const auto secret = doc.value().string("SecretAccessKey");
    const auto token = doc.value().string(token_key);
    const auto expiration = doc.value().string("Expiration");
    if (!key || !secret || key->empty() || secret->empty()) {
        return fail(fmt::format("{}: the reply has no AccessKeyId or SecretAccessKey", what));
    }
    std::optional<WallClock::time_point> expires;
    if (expiration && !expiration->empty()) {
        expires = aws_detail::parse_iso8601(*expiration);
        if (!expires) {
            return fail(fmt::format("{}: Expiration \"{}\" is not an ISO-8601 time", what,
                                    *expiration));
        }
    } else if (expiration_required) {
        return fail(fmt::format("{}: the reply has no Expiration", what));
    }
    return std::shared_ptr<const Credentials>(std::make_shared<Credentials>(
        std::string(*key), std::string(*secret), token ? std::string(*token) : std::string(),
        expires));
}

// --- Container credentials ------------------------------------------------------------------

struct HostPort {
    std::string scheme;
    std::string host;  // without brackets
};

HostPort parse_host(std::string_view url) {
    HostPort hp;
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return hp;
    }
    hp.scheme = aws_detail::to_lower(url.substr(0, scheme_end));
    std::string_view rest = url.substr(scheme_end + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
        rest.remove_prefix(at + 1);
    }
    if (!rest.empty() && rest[0] == '[') {
        const std::size_t close = rest.find(']');
        hp.host = std::string(rest.substr(1, close == std::string_view::npos ? 0 : close - 1));
    } else {
        hp.host = std::string(rest.substr(0, rest.find(':')));
    }
    return hp;
}

class ContainerSource final : public CredentialsSource {
public:
    ContainerSource(std::string url, std::string token_file, std::optional<std::string> token,
                    std::chrono::milliseconds timeout)
        : url_(std::move(url)),
          token_file_(std::move(token_file)),
          token_(std::move(token)),
          timeout_(timeout) {}
    ~ContainerSource() override {
        if (token_) {
            wipe(*token_);
        }
    }

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        HttpRequest request;
        request.url = url_;
        request.connect_timeout = std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(2));
        request.total_timeout = timeout_;
        std::string auth;
        if (!token_file_.empty()) {
            // Re-read every time: EKS rotates the file.
            auto content = aws_detail::read_whole_file(token_file_);
            if (!content) {
                return fail(fmt::format("container credentials: cannot read the authorization "
                                        "token file: {}",
                                        content.error()));
            }
            auth = std::string(aws_detail::trim(content.value()));
            wipe(content.value());
        } else if (token_) {
            auth = *token_;
        }
        if (auth.find_first_of("\r\n") != std::string::npos) {
            wipe(auth);
            return fail(std::string("container credentials: the authorization token contains a "
                                    "line break"));
        }
        if (!auth.empty()) {
            request.headers.emplace_back("Authorization", auth);
            wipe(auth);
        }
        request.headers.emplace_back("Accept", "application/json");
        auto response = http_.perform(request);
        for (auto& [name, value] : request.headers) {
            wipe(value);
        }
        if (!response) {
            return fail(fmt::format("container credentials: GET {} failed: {}", url_,
                                    response.error().message));
        }
        HttpResponse& r = response.value();
        if (r.status != 200) {
            std::string detail;
            if (auto doc = aws_detail::parse_json_object(r.body)) {
                detail = fmt::format(": {}: {}",
                                     doc.value().string("code").value_or("error"),
                                     doc.value().string("message").value_or(""));
            }
            wipe(r.body);
            return fail(fmt::format("container credentials: GET {} returned status {}{}", url_,
                                    r.status, detail));
        }
        auto credentials = credentials_from_json("container credentials", r.body, "Token", false);
        wipe(r.body);
        return credentials;
    }
    std::string_view name() const noexcept override { return "container"; }

private:
    std::string url_;
    std::string token_file_;
    std::optional<std::string> token_;
    std::chrono::milliseconds timeout_;
    HttpClient http_;
};

// --- IMDS -----------------------------------------------------------------------------------

class ImdsSource final : public CredentialsSource {
public:
    explicit ImdsSource(std::shared_ptr<ImdsClient> imds) : imds_(std::move(imds)) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        constexpr std::string_view base = "/latest/meta-data/iam/security-credentials/";
        auto roles = imds_->get(base);
        if (!roles) {
            return fail(fmt::format("EC2 instance profile: {}", roles.error()));
        }
        std::string_view list = aws_detail::trim(roles.value());
        const std::string role(aws_detail::trim(list.substr(0, list.find('\n'))));
        if (role.empty()) {
            return fail(std::string("EC2 instance profile: no IAM role is attached"));
        }
        auto body = imds_->get(std::string(base) + role);
        if (!body) {
            return fail(fmt::format("EC2 instance profile: {}", body.error()));
        }
        auto doc = aws_detail::parse_json_object(body.value());
        if (doc) {
            if (auto code = doc.value().string("Code"); code && *code != "Success") {
                wipe(body.value());
                return fail(fmt::format("EC2 instance profile: role {} credentials Code {}", role,
                                        *code));
            }
        }
        auto credentials =
            credentials_from_json("EC2 instance profile", body.value(), "Token", false);
        wipe(body.value());
        return credentials;
    }
    std::string_view name() const noexcept override { return "ec2 instance profile"; }

private:
    std::shared_ptr<ImdsClient> imds_;
};

// --- STS ------------------------------------------------------------------------------------

std::string default_session_name() {
    return fmt::format(
        "xray-daemon-{}",
        std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now().time_since_epoch())
            .count());
}

class WebIdentitySource final : public CredentialsSource {
public:
    WebIdentitySource(const CredentialOptions& options, const Environment& env,
                      std::string role_arn, std::string token_file, std::string session_name)
        : resolver_(options.region, options.endpoints),
          sts_(resolver_, env, options.http_timeout),
          region_(options.region),
          token_file_(std::move(token_file)) {
        params_.role_arn = std::move(role_arn);
        params_.session_name = session_name.empty() ? default_session_name() : std::move(session_name);
        name_ = fmt::format("web identity {}", params_.role_arn);
    }

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        auto token = aws_detail::read_whole_file(token_file_);
        if (!token) {
            return fail(fmt::format("web identity: cannot read the token file: {}", token.error()));
        }
        std::string trimmed(aws_detail::trim(token.value()));
        wipe(token.value());
        auto r = sts_.assume_role_with_web_identity(params_, trimmed, region_);
        wipe(trimmed);
        if (!r) {
            return fail(fmt::format("AssumeRoleWithWebIdentity {} failed: {}", params_.role_arn,
                                    to_string(r.error())));
        }
        return std::shared_ptr<const Credentials>(std::move(r).value());
    }
    std::string_view name() const noexcept override { return name_; }

private:
    EndpointResolver resolver_;
    StsClient sts_;
    std::string region_;
    std::string token_file_;
    AssumeRoleParams params_;
    std::string name_;
};

class AssumeRoleSource final : public CredentialsSource {
public:
    AssumeRoleSource(const CredentialOptions& options, const Environment& env,
                     std::unique_ptr<CredentialsProvider> base, AssumeRoleParams params,
                     Logger& logger)
        : resolver_(options.region, options.endpoints),
          sts_(resolver_, env, options.http_timeout),
          base_(std::move(base)),
          params_(std::move(params)),
          region_(options.region),
          logger_(logger),
          name_(fmt::format("assume role {}", params_.role_arn)) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        const auto base = base_->current();
        if (base == nullptr) {
            return fail(fmt::format("Unable to assume role {}: no base credentials from {}",
                                    params_.role_arn, base_->source()));
        }
        auto r = sts_.assume_role(params_, *base, region_, WallClock::now());
        if (!r && r.error().code == "RegionDisabledException") {
            const std::string_view primary = partition_of(region_).primary_region;
            if (primary != region_) {
                logger_.warn("STS is not activated in {}; assuming role {} through {}",
                             region_, params_.role_arn, primary);
                region_ = std::string(primary);  // remembered for later refreshes
                r = sts_.assume_role(params_, *base, region_, WallClock::now());
            }
        }
        if (!r) {
            return fail(fmt::format("Unable to assume role {}: {}", params_.role_arn,
                                    to_string(r.error())));
        }
        return std::shared_ptr<const Credentials>(std::move(r).value());
    }
    std::string_view name() const noexcept override { return name_; }

private:
    EndpointResolver resolver_;
    StsClient sts_;
    std::unique_ptr<CredentialsProvider> base_;
    AssumeRoleParams params_;
    std::string region_;
    Logger& logger_;
    std::string name_;
};

// --- credential_process ---------------------------------------------------------------------

class ProcessSource final : public CredentialsSource {
    using JsonValue = aws_detail::JsonValue;

public:
    ProcessSource(std::string command, std::chrono::milliseconds timeout)
        : command_(std::move(command)), timeout_(timeout) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        auto output = run();
        if (!output) {
            return fail(output.error());
        }
        auto doc = aws_detail::parse_json_object(output.value());
        if (!doc) {
            wipe(output.value());
            return fail(fmt::format("credential_process: {}", doc.error()));
        }
        const JsonValue* version = doc.value().find("Version");
        if (version == nullptr || version->kind != JsonValue::Kind::number || version->text != "1") {
            wipe(output.value());
            return fail(std::string("credential_process: the output's Version is not 1"));
        }
        auto credentials =
            credentials_from_json("credential_process", output.value(), "SessionToken", false);
        wipe(output.value());
        return credentials;
    }
    std::string_view name() const noexcept override { return "credential_process"; }

private:
    Result<std::string, std::string> run() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return fail(fmt::format("credential_process: pipe: {}", std::strerror(errno)));
        }
        UniqueFd read_end(fds[0]);
        UniqueFd write_end(fds[1]);
        posix_spawn_file_actions_t actions;
        if (posix_spawn_file_actions_init(&actions) != 0) {
            return fail(std::string("credential_process: posix_spawn_file_actions_init failed"));
        }
        (void)posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
        std::string sh = "/bin/sh";
        std::string dash_c = "-c";
        char* argv[] = {sh.data(), dash_c.data(), command_.data(), nullptr};
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        write_end.reset();
        if (rc != 0) {
            return fail(fmt::format("credential_process: cannot start /bin/sh: {}",
                                    std::strerror(rc)));
        }
        std::string output;
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        bool timed_out = false;
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                timed_out = true;
                break;
            }
            pollfd p{read_end.get(), POLLIN, 0};
            const int n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                timed_out = n == 0;
                break;
            }
            char buf[4096];
            const ssize_t got = ::read(read_end.get(), buf, sizeof buf);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                break;
            }
            if (output.size() + static_cast<std::size_t>(got) > max_output) {
                timed_out = false;
                (void)::kill(pid, SIGKILL);
                break;
            }
            output.reserve(max_output);  // one buffer: no reallocation leaves secret copies
            output.append(buf, static_cast<std::size_t>(got));
            wipe_buffer(buf, sizeof buf);
        }
        if (timed_out) {
            (void)::kill(pid, SIGKILL);
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (timed_out) {
            wipe(output);
            return fail(fmt::format("credential_process timed out after {} ms", timeout_.count()));
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            wipe(output);
            return fail(fmt::format("credential_process exited with {}",
                                    WIFEXITED(status) ? fmt::format("status {}", WEXITSTATUS(status))
                                                      : std::string("a signal")));
        }
        return output;
    }
    static void wipe_buffer(char* buf, std::size_t size) noexcept {
        volatile char* p = buf;  // volatile: the compiler may not drop the stores
        for (std::size_t i = 0; i < size; ++i) {
            p[i] = 0;
        }
    }

    static constexpr std::size_t max_output = 64 * 1024;
    std::string command_;
    std::chrono::milliseconds timeout_;
};

// A provider that never has credentials (no source configured).
class NoCredentialsProvider final : public CredentialsProvider {
public:
    std::shared_ptr<const Credentials> current() noexcept override { return nullptr; }
    std::string_view source() const noexcept override { return "none"; }
};

bool address_allowed(const sockaddr* addr) {
    if (addr->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
        const std::uint32_t a = ntohl(in->sin_addr.s_addr);
        return (a >> 24) == 127 || a == 0xA9FEAA02 /* 169.254.170.2 */ ||
               a == 0xA9FEAA17 /* 169.254.170.23 */;
    }
    if (addr->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
        static constexpr unsigned char eks[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                                  0,    0,    0,    0,    0, 0, 0, 0x23};
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               std::memcmp(&in6->sin6_addr, eks, sizeof eks) == 0;
    }
    return false;
}

// --- Chain building --------------------------------------------------------------------------

struct ChainContext {
    const CredentialOptions& options;
    const Environment& env;
    CredentialsClock& clock;
    Logger& logger;
    std::shared_ptr<ImdsClient> imds;  // created on first use

    std::shared_ptr<ImdsClient> imds_client() {
        if (!imds && options.imds_client) {
            imds = options.imds_client;
        }
        if (!imds) {
            imds = std::make_shared<ImdsClient>(options.imds, clock);
        }
        return imds;
    }
    std::unique_ptr<CredentialsProvider> refreshing(std::unique_ptr<CredentialsSource> source) {
        return std::make_unique<RefreshingCredentialsProvider>(std::move(source), clock, logger,
                                                               options.refresh);
    }
};

std::unique_ptr<CredentialsProvider> env_static(const Environment& env) {
    return make_environment_credentials_provider(env);
}

std::optional<int> duration_of(const SharedProfile& p) {
    const auto v = p.get("duration_seconds");
    if (v.empty()) {
        return std::nullopt;
    }
    try {
        return std::stoi(std::string(v));
    } catch (...) {
        throw StartupError(fmt::format("profile {}: duration_seconds \"{}\" is not a number",
                                       p.name, v));
    }
}

std::unique_ptr<CredentialsProvider> container_provider(ChainContext& ctx) {
    auto source = make_container_credentials_source(ctx.options, ctx.env);
    return source ? ctx.refreshing(std::move(source)) : nullptr;
}

std::unique_ptr<CredentialsProvider> imds_provider(ChainContext& ctx) {
    if (ctx.options.imds.disabled) {
        return nullptr;
    }
    return ctx.refreshing(make_imds_credentials_source(ctx.imds_client()));
}

// The provider of profile `name`, or nullptr when it has no credentials settings.
std::unique_ptr<CredentialsProvider> profile_provider(ChainContext& ctx, const SharedConfig& shared,
                                                      const std::string& name,
                                                      std::set<std::string>& visited) {
    const SharedProfile* p = shared.profile(name);
    if (p == nullptr) {
        return nullptr;
    }
    const bool has_keys =
        !p->get("aws_access_key_id").empty() && !p->get("aws_secret_access_key").empty();
    const auto static_keys = [&]() -> std::unique_ptr<CredentialsProvider> {
        return std::make_unique<StaticCredentialsProvider>(
            Credentials(std::string(p->get("aws_access_key_id")),
                        std::string(p->get("aws_secret_access_key")),
                        std::string(p->get("aws_session_token"))),
            "shared credentials file");
    };
    const std::string role_arn(p->get("role_arn"));
    if (!role_arn.empty() && visited.count(name) == 0) {
        visited.insert(name);
        const std::string session(p->get("role_session_name"));
        if (!p->get("web_identity_token_file").empty()) {
            return ctx.refreshing(make_web_identity_credentials_source(
                ctx.options, ctx.env, role_arn, std::string(p->get("web_identity_token_file")),
                session));
        }
        std::unique_ptr<CredentialsProvider> base;
        const std::string source_profile(p->get("source_profile"));
        const std::string credential_source(p->get("credential_source"));
        if (!source_profile.empty()) {
            if (source_profile == name || visited.count(source_profile) != 0) {
                // A profile that sources itself uses its own static keys (SDK rule).
                if (source_profile == name && has_keys) {
                    base = static_keys();
                } else {
                    throw StartupError(fmt::format(
                        "profile {}: source_profile {} forms a loop", name, source_profile));
                }
            } else {
                if (shared.profile(source_profile) == nullptr) {
                    throw StartupError(fmt::format("profile {}: source_profile {} does not exist",
                                                   name, source_profile));
                }
                base = profile_provider(ctx, shared, source_profile, visited);
            }
        } else if (credential_source == "Environment") {
            base = env_static(ctx.env);
        } else if (credential_source == "Ec2InstanceMetadata") {
            base = ctx.refreshing(make_imds_credentials_source(ctx.imds_client()));
        } else if (credential_source == "EcsContainer") {
            base = container_provider(ctx);
        } else if (!credential_source.empty()) {
            throw StartupError(fmt::format("profile {}: unknown credential_source {}", name,
                                           credential_source));
        }
        if (!base) {
            throw StartupError(fmt::format("profile {}: role_arn {} has no usable source_profile "
                                           "or credential_source",
                                           name, role_arn));
        }
        AssumeRoleParams params;
        params.role_arn = role_arn;
        params.session_name = session.empty() ? default_session_name() : session;
        params.duration_seconds = duration_of(*p);
        params.external_id = std::string(p->get("external_id"));
        return ctx.refreshing(std::make_unique<AssumeRoleSource>(ctx.options, ctx.env,
                                                                 std::move(base), std::move(params),
                                                                 ctx.logger));
    }
    if (has_keys) {
        return static_keys();
    }
    if (!p->get("credential_process").empty()) {
        return ctx.refreshing(make_process_credentials_source(
            std::string(p->get("credential_process")), ctx.options.process_timeout));
    }
    if (!p->get("sso_start_url").empty() || !p->get("sso_session").empty()) {
        ctx.logger.warn("Profile {} uses AWS SSO, which xrayd does not support; trying the next "
                        "credential source",
                        name);
    }
    return nullptr;
}

std::unique_ptr<CredentialsProvider> base_chain(ChainContext& ctx) {
    if (auto env = env_static(ctx.env)) {
        return env;
    }
    const SharedConfig shared = SharedConfig::load(ctx.env);
    if (shared.profile_explicit() && shared.profile(shared.selected_profile()) == nullptr) {
        throw StartupError(fmt::format(
            "AWS_PROFILE names profile {}, which is in neither the shared config nor the shared "
            "credentials file",
            shared.selected_profile()));
    }
    std::set<std::string> visited;
    if (auto p = profile_provider(ctx, shared, shared.selected_profile(), visited)) {
        return p;
    }
    const auto token_file = ctx.env.get_non_empty("AWS_WEB_IDENTITY_TOKEN_FILE");
    const auto role = ctx.env.get_non_empty("AWS_ROLE_ARN");
    if (token_file && role) {
        return ctx.refreshing(make_web_identity_credentials_source(
            ctx.options, ctx.env, *role, *token_file,
            ctx.env.get_non_empty("AWS_ROLE_SESSION_NAME").value_or("")));
    }
    if (auto c = container_provider(ctx)) {
        return c;
    }
    return imds_provider(ctx);
}

}  // namespace

// --- RefreshingCredentialsProvider ----------------------------------------------------------

RefreshingCredentialsProvider::RefreshingCredentialsProvider(
    std::unique_ptr<CredentialsSource> source, CredentialsClock& clock, Logger& logger,
    RefreshPolicy policy)
    : source_(std::move(source)),
      clock_(clock),
      logger_(logger),
      policy_(policy),
      error_limiter_(policy.error_log_interval),
      backoff_(policy.min_backoff) {
    const WallClock::time_point next = attempt(clock_.now());
    if (next != WallClock::time_point::max()) {
        thread_ = std::jthread([this, next](std::stop_token stop) {
            WallClock::time_point when = next;
            while (clock_.sleep_until(when, stop)) {
                when = attempt(clock_.now());
                if (when == WallClock::time_point::max()) {
                    return;
                }
            }
        });
    }
}

RefreshingCredentialsProvider::~RefreshingCredentialsProvider() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

std::shared_ptr<const Credentials> RefreshingCredentialsProvider::current() noexcept {
    std::shared_ptr<const Credentials> snapshot;
    {
        std::lock_guard lock(mutex_);
        snapshot = snapshot_;
    }
    if (snapshot && snapshot->expiration && clock_.now() >= *snapshot->expiration) {
        return nullptr;
    }
    return snapshot;
}

std::size_t RefreshingCredentialsProvider::fetch_count() const noexcept {
    std::lock_guard lock(mutex_);
    return fetches_;
}

WallClock::time_point RefreshingCredentialsProvider::attempt(WallClock::time_point now) noexcept {
    Result<std::shared_ptr<const Credentials>, std::string> r =
        fail(std::string("not fetched"));
    try {
        r = source_->fetch();
    } catch (const std::exception& e) {
        r = fail(fmt::format("{}: {}", source_->name(), e.what()));
    } catch (...) {
        r = fail(fmt::format("{}: unknown error", source_->name()));
    }
    std::shared_ptr<const Credentials> old;
    std::lock_guard lock(mutex_);
    ++fetches_;
    if (r) {
        old = std::exchange(snapshot_, std::move(r).value());  // freed (wiped) after unlock
        if (failing_ || fetches_ == 1) {
            logger_.info("Using AWS credentials from {}", source_->name());
        }
        failing_ = false;
        backoff_ = policy_.min_backoff;
        if (!snapshot_->expiration) {
            return WallClock::time_point::max();
        }
        const WallClock::time_point expires = *snapshot_->expiration;
        const auto life = expires - now;
        WallClock::time_point at = expires - policy_.refresh_before;
        if (life < 2 * policy_.refresh_before) {
            at = now + life / 2;
        }
        return std::max(at, now + std::chrono::duration_cast<WallClock::duration>(policy_.min_backoff));
    }
    failing_ = true;
    std::uint64_t suppressed = 0;
    if (error_limiter_.allow(Clock::now(), &suppressed)) {
        if (snapshot_ && snapshot_->expiration && now < *snapshot_->expiration) {
            logger_.error("Unable to refresh AWS credentials ({}); keeping the current ones "
                          "until they expire",
                          r.error());
        } else {
            logger_.error("Unable to retrieve AWS credentials: {}", r.error());
        }
    }
    WallClock::time_point at = now + std::chrono::duration_cast<WallClock::duration>(backoff_);
    backoff_ = std::min(backoff_ * 2, policy_.max_backoff);
    return at;
}

// --- Factories -------------------------------------------------------------------------------

bool container_host_allowed(const std::string& host) {
    if (host.empty()) {
        return false;
    }
    if (aws_detail::to_lower(host) == "localhost") {
        return true;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
        return false;
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, &freeaddrinfo);
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        if (!address_allowed(a->ai_addr)) {
            return false;
        }
    }
    return true;
}

std::unique_ptr<CredentialsSource> make_container_credentials_source(
    const CredentialOptions& options, const Environment& env) {
    std::string url;
    if (auto relative = env.get_non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
        url = options.container_relative_base + *relative;
    } else if (auto full = env.get_non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        const HostPort hp = parse_host(*full);
        if (hp.scheme != "https" && hp.scheme != "http") {
            throw StartupError(fmt::format(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {} is not an http(s) URL", *full));
        }
        if (hp.scheme == "http" && !container_host_allowed(hp.host)) {
            throw StartupError(fmt::format(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {}: plain http is only allowed to loopback, "
                "169.254.170.2, 169.254.170.23 or fd00:ec2::23",
                *full));
        }
        url = *full;
    } else {
        return nullptr;
    }
    return std::make_unique<ContainerSource>(
        std::move(url), env.get_non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").value_or(""),
        env.get_non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN"), options.http_timeout);
}

std::unique_ptr<CredentialsSource> make_imds_credentials_source(std::shared_ptr<ImdsClient> imds) {
    return std::make_unique<ImdsSource>(std::move(imds));
}

std::unique_ptr<CredentialsSource> make_web_identity_credentials_source(
    const CredentialOptions& options, const Environment& env, std::string role_arn,
    std::string token_file, std::string session_name) {
    return std::make_unique<WebIdentitySource>(options, env, std::move(role_arn),
                                               std::move(token_file), std::move(session_name));
}

std::unique_ptr<CredentialsSource> make_assume_role_credentials_source(
    const CredentialOptions& options, const Environment& env,
    std::unique_ptr<CredentialsProvider> base, std::string role_arn, std::string session_name,
    Logger& logger, std::optional<int> duration_seconds, std::string external_id) {
    AssumeRoleParams params;
    params.role_arn = std::move(role_arn);
    params.session_name = std::move(session_name);
    params.duration_seconds = duration_seconds;
    params.external_id = std::move(external_id);
    return std::make_unique<AssumeRoleSource>(options, env, std::move(base), std::move(params),
                                              logger);
}

std::unique_ptr<CredentialsSource> make_process_credentials_source(
    std::string command, std::chrono::milliseconds timeout) {
    return std::make_unique<ProcessSource>(std::move(command), timeout);
}

std::unique_ptr<CredentialsProvider> make_default_credentials_chain(
    const CredentialOptions& options, const Environment& env, CredentialsClock& clock,
    Logger& logger) {
    ChainContext ctx{options, env, clock, logger, nullptr};
    std::unique_ptr<CredentialsProvider> base = base_chain(ctx);
    if (!base) {
        logger.warn("No AWS credentials source found (environment, shared files, web identity, "
                    "container, EC2 metadata): uploads will fail until one is configured");
        base = std::make_unique<NoCredentialsProvider>();
    } else {
        logger.debug("AWS credentials source: {}", base->source());
    }
    if (options.role_arn.empty()) {
        return base;
    }
    return ctx.refreshing(make_assume_role_credentials_source(
        options, env, std::move(base), options.role_arn, options.role_session_name, logger));
}

}  // namespace xrayd

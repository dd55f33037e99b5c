// The default credential chain: picks the first configured source in the SDK's order.
#include <xrayd/aws/credential_chain.h>

#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>

#include <xrayd/aws/shared_config.h>
#include <xrayd/common/startup_error.h>

namespace xrayd {

namespace {

// A provider that never has credentials (no source configured).
class NoCredentialsProvider final : public CredentialsProvider {
public:
    std::shared_ptr<const Credentials> current() noexcept override { return nullptr; }
    std::string_view source() const noexcept override { return "none"; }
};

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
            imds = std::make_shared<ImdsClient>(options.imds, clock, options.cancel);
        }
        return imds;
    }
    std::unique_ptr<CredentialsProvider> refreshing(std::unique_ptr<CredentialsSource> source) {
        return std::make_unique<RefreshingCredentialsProvider>(std::move(source), clock, logger,
                                                               options.refresh, options.cancel);
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
        throw StartupError(
            fmt::format("profile {}: duration_seconds \"{}\" is not a number", p.name, v));
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
        Credentials keys(std::string(p->get("aws_access_key_id")),
                         std::string(p->get("aws_secret_access_key")),
                         std::string(p->get("aws_session_token")));
        if (auto valid =
                keys.validate(fmt::format("profile {}", name),
                              {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"});
            !valid) {
            throw StartupError(valid.error());
        }
        return std::make_unique<StaticCredentialsProvider>(std::move(keys),
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
                    throw StartupError(fmt::format("profile {}: source_profile {} forms a loop",
                                                   name, source_profile));
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
            throw StartupError(
                fmt::format("profile {}: unknown credential_source {}", name, credential_source));
        }
        if (!base) {
            throw StartupError(fmt::format("profile {}: role_arn {} has no usable source_profile "
                                           "or credential_source",
                                           name, role_arn));
        }
        return ctx.refreshing(make_assume_role_credentials_source(
            ctx.options, ctx.env, std::move(base), role_arn,
            session.empty() ? default_role_session_name() : session, ctx.logger, duration_of(*p),
            std::string(p->get("external_id"))));
    }
    if (has_keys) {
        return static_keys();
    }
    if (!p->get("credential_process").empty()) {
        return ctx.refreshing(
            make_process_credentials_source(std::string(p->get("credential_process")),
                                            ctx.options.process_timeout, ctx.options.cancel));
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

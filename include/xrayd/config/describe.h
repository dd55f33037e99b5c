// The effective configuration as cfg.yaml-shaped text (for --check-config), secrets redacted.
#pragma once

#include <string>
#include <string_view>

#include <xrayd/common/environment.h>
#include <xrayd/config/config.h>

namespace xrayd {

// Every setting of `config` with a cfg.yaml key (the settings table's rows, in its order; xrayd's
// under `Xrayd:`), with the flag that sets it as a comment, then the environment variables that
// affect the daemon (AWS_*, proxies) with secrets redacted. The text is valid YAML. Thread-safe
// (pure).
[[nodiscard]] std::string describe_config(const Config& config, const Environment& env);

// The value to show for environment variable `name`: variables whose name says secret, token,
// password or key become their first 4 characters + "****" (ids such as AWS_ACCESS_KEY_ID
// keep a recognisable prefix); any `user:password@` in a URL loses the password.
// Thread-safe (pure).
[[nodiscard]] std::string redact_environment_value(std::string_view name, std::string_view value);

// `scheme://user:password@host...` → `scheme://user:****@host...`; other text unchanged.
[[nodiscard]] std::string redact_url_password(std::string_view url);

}  // namespace xrayd

// health_check(): `xrayd --health-check`, a container HEALTHCHECK without curl in the image.
#pragma once

#include <string>

#include <xrayd/config/config.h>

namespace xrayd {

// The URL of the admin listener's /healthz for config.admin_address; a wildcard bind
// (0.0.0.0, [::]) is asked on loopback. "" when the admin listener is off.
[[nodiscard]] std::string healthz_url(const Config& config);

// GETs healthz_url() (1 s to connect, 2 s in all, no proxy) and returns the exit status:
// 0 for a 200 answer, 1 otherwise; *why says what was seen, for stderr. Needs a live
// CurlGlobal. Main thread, once.
[[nodiscard]] int health_check(const Config& config, std::string* why);

}  // namespace xrayd

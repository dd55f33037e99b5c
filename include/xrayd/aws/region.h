// Region resolution in the Go daemon's order (spec §8.3): flag/config, AWS_REGION, the ECS
// metadata file, IMDS; in local mode the SDK default config instead of ECS and IMDS.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <xrayd/common/environment.h>
#include <xrayd/log/logger.h>

namespace xrayd {

class ImdsClient;

struct ResolvedRegion {
    std::string region;
    std::string_view source;  // for "Fetch region <r> from <source>"
};

struct RegionOptions {
    std::string configured;   // -n / config `Region` ("" = not given)
    bool local_mode = false;  // -o / LocalMode
};

// The Go daemon's fatal message when no region is found (exit 1).
inline constexpr std::string_view region_not_found_message =
    "Cannot fetch region variable from config file, environment variables, ecs metadata, or ec2 "
    "metadata. Use local-mode to use the local config region.";

// The full chain, logging the Go daemon's lines:
//   configured   -> Debug "Fetch region <r> from commandline/config file"
//   AWS_REGION   -> Debug "Fetch region <r> from environment variables"
//   not local mode:
//     ECS_ENABLE_CONTAINER_METADATA=true: the file ECS_CONTAINER_METADATA_FILE, TaskARN's 4th
//       ':' field -> Debug "Fetch region <r> from ECS metadata file"; open error -> Error
//       "Unable to open ECS metadata file: <e>"; bad JSON -> Error "Unable to read ECS metadata
//       file contents: <e>"; missing/short TaskARN -> Error (the Go daemon crashes here)
//     IMDS instance-identity document (`imds` non-null) -> Debug "Fetch region <r> from ec2
//       metadata"; failure -> Error "Unable to fetch region from EC2 metadata: <e>"
//   local mode: AWS_DEFAULT_REGION, then the selected profile's `region` in the shared config
//     -> Debug "Fetched region <r> from config"
// and on success Info "Using region: <r>". nullopt when nothing gave a region: the caller
// throws StartupError(std::string(region_not_found_message)). Start-up only (blocks on IMDS
// for up to a few seconds).
[[nodiscard]] std::optional<ResolvedRegion> resolve_region(const RegionOptions& options,
                                                           const Environment& env, ImdsClient* imds,
                                                           Logger& logger);

// The region in an ECS container metadata file (TaskARN's 4th ':' field), or an error text.
struct EcsRegionResult {
    std::optional<std::string> region;
    std::string error;  // the whole log line when region is nullopt
};
[[nodiscard]] EcsRegionResult region_from_ecs_metadata_file(const std::string& path);

}  // namespace xrayd

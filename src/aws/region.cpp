// Region resolution (spec §8.3).
#include <xrayd/aws/region.h>

#include <fmt/format.h>

#include <xrayd/aws/imds.h>
#include <xrayd/aws/shared_config.h>

#include "file_read.h"
#include "json_reader.h"
#include "string_util.h"

namespace xrayd {

EcsRegionResult region_from_ecs_metadata_file(const std::string& path) {
    auto text = aws_detail::read_whole_file(path);
    if (!text) {
        return {std::nullopt, fmt::format("Unable to open ECS metadata file: {}", text.error())};
    }
    auto doc = aws_detail::parse_json_object(text.value());
    if (!doc) {
        return {std::nullopt,
                fmt::format("Unable to read ECS metadata file contents: {}", doc.error())};
    }
    const auto arn = doc.value().string("TaskARN");
    if (!arn) {
        return {std::nullopt, "Unable to read ECS metadata file contents: no TaskARN string"};
    }
    // arn:aws:ecs:<region>:<account>:task/...
    std::string_view rest = *arn;
    for (int i = 0; i < 3; ++i) {
        const std::size_t colon = rest.find(':');
        if (colon == std::string_view::npos) {
            rest = {};
            break;
        }
        rest.remove_prefix(colon + 1);
    }
    const std::string_view region = rest.substr(0, rest.find(':'));
    if (rest.find(':') == std::string_view::npos || region.empty()) {
        return {std::nullopt,
                fmt::format("Unable to read ECS metadata file contents: TaskARN \"{}\" has no "
                            "region field",
                            *arn)};
    }
    return {std::string(region), {}};
}

std::optional<ResolvedRegion> resolve_region(const RegionOptions& options, const Environment& env,
                                             ImdsClient* imds, Logger& logger) {
    std::optional<ResolvedRegion> found;
    if (!options.configured.empty()) {
        found = ResolvedRegion{options.configured, "commandline/config file"};
        logger.debug("Fetch region {} from commandline/config file", found->region);
    } else if (auto r = env.get_non_empty("AWS_REGION")) {
        found = ResolvedRegion{*r, "environment variables"};
        logger.debug("Fetch region {} from environment variables", found->region);
    } else if (!options.local_mode) {
        const auto enabled = env.get("ECS_ENABLE_CONTAINER_METADATA");
        if (enabled && aws_detail::to_lower(*enabled) == "true") {
            auto ecs =
                region_from_ecs_metadata_file(env.get("ECS_CONTAINER_METADATA_FILE").value_or(""));
            if (ecs.region) {
                found = ResolvedRegion{*ecs.region, "ECS metadata file"};
                logger.debug("Fetch region {} from ECS metadata file", found->region);
            } else {
                logger.error("{}", ecs.error);
            }
        }
        if (!found && imds != nullptr) {
            auto doc_text = imds->get("/latest/dynamic/instance-identity/document");
            std::optional<std::string> region;
            std::string error;
            if (doc_text) {
                auto doc = aws_detail::parse_json_object(doc_text.value());
                if (doc && doc.value().string("region") && !doc.value().string("region")->empty()) {
                    region = std::string(*doc.value().string("region"));
                } else {
                    error = doc ? "no region in the instance identity document" : doc.error();
                }
            } else {
                error = doc_text.error();
            }
            if (region) {
                found = ResolvedRegion{*region, "ec2 metadata"};
                logger.debug("Fetch region {} from ec2 metadata", found->region);
            } else {
                logger.error("Unable to fetch region from EC2 metadata: {}", error);
            }
        }
    } else {
        std::optional<std::string> region = env.get_non_empty("AWS_DEFAULT_REGION");
        if (!region) {
            const SharedConfig shared = SharedConfig::load(env);
            if (const SharedProfile* p = shared.profile(shared.selected_profile());
                p != nullptr && !p->get("region").empty()) {
                region = std::string(p->get("region"));
            }
        }
        if (region) {
            found = ResolvedRegion{*region, "config"};
            logger.debug("Fetched region {} from config", found->region);
        }
    }
    if (found) {
        logger.info("Using region: {}", found->region);
    }
    return found;
}

}  // namespace xrayd

// Parser of the AWS shared config and credentials files.
#include <xrayd/aws/shared_config.h>

#include "file_read.h"
#include "hash.h"
#include "string_util.h"

namespace xrayd {

namespace {

using aws_detail::trim;

// Merges `text` into `profiles`. In the config file, sections other than "default" need the
// "profile " prefix; in the credentials file they never have it.
void parse_file(std::string_view text, bool is_config,
                std::map<std::string, SharedProfile, std::less<>>& profiles, bool overwrite) {
    SharedProfile* current = nullptr;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        const bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') {
            continue;
        }
        if (line[0] == '[') {
            current = nullptr;
            const std::size_t close = line.find(']');
            if (close == std::string_view::npos) {
                continue;
            }
            std::string_view section = trim(line.substr(1, close - 1));
            std::string name;
            if (is_config) {
                if (section == "default") {
                    name = "default";
                } else if (section.substr(0, 8) == "profile ") {
                    name = std::string(trim(section.substr(8)));
                } else {
                    continue;  // sso-session, services, ...: not profiles
                }
            } else {
                name = std::string(section);
            }
            if (name.empty()) {
                continue;
            }
            current = &profiles[name];
            current->name = name;
            continue;
        }
        if (current == nullptr || indented) {
            continue;
        }
        const std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        std::string key = aws_detail::to_lower(trim(line.substr(0, eq)));
        std::string_view value = trim(line.substr(eq + 1));
        if (key.empty()) {
            continue;
        }
        auto it = current->values.find(key);
        if (it == current->values.end()) {
            current->values.emplace(std::move(key), std::string(value));
        } else if (overwrite) {
            aws_detail::wipe(it->second);
            it->second = std::string(value);
        }
    }
}

}  // namespace

SharedProfile::~SharedProfile() {
    for (auto& [key, value] : values) {
        aws_detail::wipe(value);
    }
}

std::string_view SharedProfile::get(std::string_view key) const {
    auto it = values.find(key);
    return it == values.end() ? std::string_view{} : std::string_view(it->second);
}

SharedConfig SharedConfig::parse(std::string_view config_text, std::string_view credentials_text,
                                 std::string selected_profile) {
    SharedConfig c;
    c.selected_ = std::move(selected_profile);
    parse_file(config_text, true, c.profiles_, false);
    parse_file(credentials_text, false, c.profiles_, true);
    return c;
}

SharedConfig SharedConfig::load(const Environment& env) {
    const std::string home = env.get_non_empty("HOME").value_or("");
    const std::string config_path =
        env.get_non_empty("AWS_CONFIG_FILE").value_or(home.empty() ? "" : home + "/.aws/config");
    const std::string credentials_path =
        env.get_non_empty("AWS_SHARED_CREDENTIALS_FILE")
            .value_or(home.empty() ? "" : home + "/.aws/credentials");
    std::string config_text;
    std::string credentials_text;
    if (!config_path.empty()) {
        if (auto r = aws_detail::read_whole_file(config_path)) {
            config_text = std::move(r).value();
        }
    }
    if (!credentials_path.empty()) {
        if (auto r = aws_detail::read_whole_file(credentials_path)) {
            credentials_text = std::move(r).value();
        }
    }
    auto profile = env.get_non_empty("AWS_PROFILE");
    SharedConfig c = parse(config_text, credentials_text, profile.value_or("default"));
    c.explicit_ = profile.has_value();
    aws_detail::wipe(credentials_text);
    return c;
}

const SharedProfile* SharedConfig::profile(std::string_view name) const {
    auto it = profiles_.find(name);
    return it == profiles_.end() ? nullptr : &it->second;
}

}  // namespace xrayd

// SharedConfig: the AWS shared config and credentials files (~/.aws/config, ~/.aws/credentials).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <xrayd/common/environment.h>

namespace xrayd {

// One profile's keys (lower-cased names) merged from both files: the credentials file wins.
// Values are wiped on destruction (they may be secret keys).
struct SharedProfile {
    std::string name;
    std::map<std::string, std::string, std::less<>> values;

    SharedProfile() = default;
    SharedProfile(const SharedProfile&) = default;
    SharedProfile(SharedProfile&&) = default;
    SharedProfile& operator=(const SharedProfile&) = delete;
    SharedProfile& operator=(SharedProfile&&) = delete;
    ~SharedProfile();

    // The value of `key`, or "" when absent.
    [[nodiscard]] std::string_view get(std::string_view key) const;
};

// Both files parsed once. Immutable after load(); thread-safe to read.
// Files: AWS_CONFIG_FILE (default $HOME/.aws/config: sections "[default]" and "[profile x]")
// and AWS_SHARED_CREDENTIALS_FILE (default $HOME/.aws/credentials: sections "[x]"). A missing
// file is not an error. Lines: `key = value`, `#`/`;` comments, indented continuation lines
// (sub-sections such as s3 =) are ignored.
class SharedConfig {
public:
    [[nodiscard]] static SharedConfig load(const Environment& env);
    // Parses the given texts (tests).
    [[nodiscard]] static SharedConfig parse(std::string_view config_text,
                                            std::string_view credentials_text,
                                            std::string selected_profile);

    // AWS_PROFILE, else "default".
    [[nodiscard]] const std::string& selected_profile() const noexcept { return selected_; }
    // Whether AWS_PROFILE named it explicitly (a missing explicit profile is an error).
    [[nodiscard]] bool profile_explicit() const noexcept { return explicit_; }
    // nullptr when neither file has it.
    [[nodiscard]] const SharedProfile* profile(std::string_view name) const;

private:
    std::string selected_ = "default";
    bool explicit_ = false;
    std::map<std::string, SharedProfile, std::less<>> profiles_;
};

}  // namespace xrayd

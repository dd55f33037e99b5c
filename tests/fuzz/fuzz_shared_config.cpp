// libFuzzer target: the AWS shared config / credentials file parser.
//
// Input: the config file text, then (after the first 0x00 byte, if any) the credentials file
// text; with no 0x00 the same bytes are parsed as both files.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <xrayd/aws/shared_config.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::size_t split = text.find('\0');
    const std::string_view config = text.substr(0, split);
    const std::string_view credentials =
        split == std::string_view::npos ? text : text.substr(split + 1);

    for (const char* profile : {"default", "dev"}) {
        const xrayd::SharedConfig shared = xrayd::SharedConfig::parse(config, credentials, profile);
        if (const xrayd::SharedProfile* p = shared.profile(shared.selected_profile())) {
            // What the credential chain reads (credential_chain.cpp).
            for (const char* key :
                 {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "role_arn",
                  "source_profile", "credential_source", "credential_process", "region"}) {
                (void)p->get(key);
            }
            for (const auto& [key, value] : p->values) {
                // Keys are documented as lower-cased.
                for (const char c : key) {
                    if (c >= 'A' && c <= 'Z') {
                        __builtin_trap();
                    }
                }
                (void)value;
            }
        }
    }
    return 0;
}

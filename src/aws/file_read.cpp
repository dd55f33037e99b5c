// Whole-file reads (shared config, credentials, token files).
#include "file_read.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace xrayd::aws_detail {

Result<std::string, std::string> read_whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return fail(fmt::format("open {}: {}", path, std::strerror(errno)));
    }
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) {
        return fail(fmt::format("read {}: {}", path, std::strerror(errno)));
    }
    return content.str();
}

}  // namespace xrayd::aws_detail

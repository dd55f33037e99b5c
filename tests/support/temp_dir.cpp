// TempDir on mkdtemp(3) and remove_all.
#include "temp_dir.h"

#include <stdlib.h>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <system_error>

namespace xrayd::test {

namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix) {
    std::string templ = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
}

TempDir::~TempDir() {
    // A test that failed half-way may leave anything below: remove what can be removed.
    std::error_code ec;
    fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& relative, const std::string& text) const {
    fs::path p = path_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream out(p);
    out << text;
    REQUIRE(out.good());
    return p;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace xrayd::test

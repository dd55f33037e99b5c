// TempDir: a directory of its own for one test, removed with all it holds afterwards; and
// read_file(), the whole text of a file the code under test wrote.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace xrayd::test {

// Created under the system's temporary directory as "<prefix>-XXXXXX" (REQUIREs success, so
// use it inside a test case). Not copyable: one owner removes it.
class TempDir {
public:
    explicit TempDir(std::string_view prefix = "xrayd-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

    // Writes `text` to `relative` below the directory, creating the folders on the way; returns
    // the file's full path.
    std::filesystem::path write(const std::string& relative, const std::string& text) const;

private:
    std::filesystem::path path_;
};

// The whole content of `path`; "" when it cannot be opened.
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

}  // namespace xrayd::test

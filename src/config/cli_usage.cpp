// The usage screen printed for -h and after a flag error, generated from the settings table.
#include <xrayd/config/cli_flags.h>

#include <algorithm>
#include <string>
#include <vector>

#include <xrayd/config/settings.h>

namespace xrayd {
namespace {

// TABs after a flag column that starts at `column` and is `width` wide: the description starts
// at column 32 when the flag leaves room (8-column tab stops), one TAB further otherwise.
std::string_view tabs_after(std::size_t column, std::size_t width) {
    return column + width < 24 ? "\t\t" : "\t";
}

}  // namespace

std::string usage_text() {
    std::vector<const Setting*> rows;
    for (const Setting& row : settings()) {
        if (row.usage_rank > 0) {
            rows.push_back(&row);
        }
    }
    std::sort(rows.begin(), rows.end(),
              [](const Setting* a, const Setting* b) { return a->usage_rank < b->usage_rank; });
    // The Go daemon's screen (pkg/cli/cli.go), TABs included; then xrayd's additions.
    std::string out = "Usage: X-Ray [options]\n";
    bool xrayd_part = false;
    for (const Setting* row : rows) {
        if (!row->short_flag.empty()) {
            const std::string name = "--" + std::string(row->flag);
            out += "\t-" + std::string(row->short_flag) + "\t" + name +
                   std::string(tabs_after(16, name.size())) + usage_description(*row) + "\n";
            continue;
        }
        if (!xrayd_part) {
            out += "\nxrayd options (long names only; DUR is a Go duration such as 100ms, 5s, "
                   "1m30s):\n";
            xrayd_part = true;
        }
        std::string name = "--" + std::string(row->flag);
        if (!row->metavar.empty()) {
            name += " " + std::string(row->metavar);
        }
        out +=
            "\t" + name + std::string(tabs_after(8, name.size())) + usage_description(*row) + "\n";
    }
    return out;
}

}  // namespace xrayd

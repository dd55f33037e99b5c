// reload_config: which settings changed, and whether a running daemon can take them.
#include <xrayd/config/reload.h>

#include <algorithm>
#include <exception>
#include <vector>

#include <fmt/format.h>

#include <xrayd/config/settings.h>

namespace xrayd {
namespace {

// The settings in reload_rank order: the order in which changes are listed.
std::vector<const Setting*> reload_order() {
    std::vector<const Setting*> rows;
    for (const Setting& row : settings()) {
        if (row.show != nullptr) {
            rows.push_back(&row);
        }
    }
    std::sort(rows.begin(), rows.end(),
              [](const Setting* a, const Setting* b) { return a->reload_rank < b->reload_rank; });
    return rows;
}

// A setting's name in reload messages: its cfg.yaml key, else its label.
std::string_view reload_name(const Setting& row) {
    return row.key.empty() ? row.label : row.key;
}

// The loader's error line without its "<time> [Error] " prefix and trailing newline.
std::string strip_log_prefix(std::string text) {
    if (const std::size_t at = text.find("[Error] "); at != std::string::npos) {
        text.erase(0, at + 8);
    }
    while (!text.empty() && text.back() == '\n') {
        text.pop_back();
    }
    return text;
}

}  // namespace

bool is_reloadable_setting(std::string_view key) noexcept {
    for (const Setting& row : settings()) {
        if (row.show != nullptr && reload_name(row) == key) {
            return row.reloadable;
        }
    }
    return false;
}

Result<ConfigReload, std::vector<std::string>> reload_config(std::span<const std::string> args,
                                                             const Environment& env,
                                                             const Config& current,
                                                             ConfigSources sources) {
    try {
        sources.append_errors_to_log = false;
        CliOutcome outcome = load_config(args, env, sources);
        if (!outcome.config) {
            std::vector<std::string> errors;
            std::string err = outcome.err.empty() ? outcome.out : outcome.err;
            std::size_t start = 0;
            while (start < err.size()) {
                std::size_t end = err.find('\n', start);
                if (end == std::string::npos) {
                    end = err.size();
                }
                // Lines starting with a time stamp are errors; the rest continue the previous.
                std::string line = err.substr(start, end - start);
                if (line.find(" [Error] ") != std::string::npos || errors.empty()) {
                    errors.push_back(strip_log_prefix(std::move(line)));
                } else {
                    errors.back() += "\n" + line;
                }
                start = end + 1;
            }
            if (errors.empty()) {
                errors.emplace_back("the configuration could not be loaded");
            }
            return fail(std::move(errors));
        }
        ConfigReload reload{std::move(*outcome.config), {}};
        std::vector<std::string> refused;
        // Every row of the table is compared: a setting cannot be taken over unchecked.
        for (const Setting* row : reload_order()) {
            const auto shown = [](const std::string& v) {
                return v.empty() ? std::string("\"\"") : v;
            };
            const std::string before = shown(row->show(current));
            const std::string after = shown(row->show(reload.next));
            if (before == after) {
                continue;
            }
            const std::string_view name = reload_name(*row);
            if (row->reloadable) {
                reload.changes.push_back(fmt::format("{}: {} -> {}", name, before, after));
            } else {
                refused.push_back(
                    fmt::format("{}: {} -> {} (needs a restart)", name, before, after));
            }
        }
        if (!refused.empty()) {
            return fail(std::move(refused));
        }
        return reload;
    } catch (const std::exception& e) {
        return fail(std::vector<std::string>{e.what()});
    }
}

}  // namespace xrayd

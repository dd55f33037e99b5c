// Tests of the Go-flag-compatible command line: every form, every error text, -h and -v.
#include <xrayd/config/cli_flags.h>

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include <xrayd/config/config_loader.h>
#include <xrayd_config.h>

namespace xrayd {
namespace {

using Args = std::vector<std::string>;

CliFlags parse_ok(const Args& args) {
    auto r = parse_cli_flags(args);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return r.value();
}

std::string parse_error(const Args& args) {
    auto r = parse_cli_flags(args);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
}

// load_config() without any configuration file and with a fake 16 GiB host.
CliOutcome run(const Args& args) {
    ConfigSources sources;
    sources.default_paths = {};
    sources.system_root = "/nonexistent-xrayd-root";
    return load_config(args, Environment{}, sources);
}

struct StringFlag {
    std::string short_name;
    std::string long_name;
    std::string value;
    std::function<std::optional<std::string>(const CliFlags&)> get;
};

const std::vector<StringFlag> string_flags{
    {"a", "resource-arn", "arn:aws:ec2:us-east-1:1:instance/i-1",
     [](const CliFlags& f) { return f.resource_arn; }},
    {"n", "region", "eu-west-1", [](const CliFlags& f) { return f.region; }},
    {"b", "bind", "0.0.0.0:3000", [](const CliFlags& f) { return f.udp_address; }},
    {"t", "bind-tcp", "0.0.0.0:3001", [](const CliFlags& f) { return f.tcp_address; }},
    {"r", "role-arn", "arn:aws:iam::1:role/x", [](const CliFlags& f) { return f.role_arn; }},
    {"c", "config", "/tmp/x.yaml", [](const CliFlags& f) { return f.config_path; }},
    {"f", "log-file", "/var/log/xray.log", [](const CliFlags& f) { return f.log_file; }},
    {"l", "log-level", "dev", [](const CliFlags& f) { return f.log_level; }},
    {"p", "proxy-address", "http://proxy:3128", [](const CliFlags& f) { return f.proxy_address; }},
    {"m", "buffer-memory", "16",
     [](const CliFlags& f) -> std::optional<std::string> {
         if (!f.buffer_memory_mb) {
             return std::nullopt;
         }
         return std::to_string(*f.buffer_memory_mb);
     }},
};

}  // namespace

TEST_CASE("every value flag is accepted by short and long name, one or two dashes, = or space") {
    for (const StringFlag& flag : string_flags) {
        for (const std::string& name : {flag.short_name, flag.long_name}) {
            for (const Args& args :
                 {Args{"-" + name, flag.value}, Args{"--" + name, flag.value},
                  Args{"-" + name + "=" + flag.value}, Args{"--" + name + "=" + flag.value}}) {
                CAPTURE(args[0]);
                const CliFlags f = parse_ok(args);
                CHECK(flag.get(f) == flag.value);
                CHECK(f.ignored.empty());
            }
        }
    }
}

TEST_CASE("a flag that is not given stays unset so the file and defaults apply") {
    const CliFlags f = parse_ok({});
    for (const StringFlag& flag : string_flags) {
        CHECK_FALSE(flag.get(f).has_value());
    }
    CHECK_FALSE(f.local_mode.has_value());
    CHECK_FALSE(f.version);
    CHECK_FALSE(f.help);
}

TEST_CASE("an explicit empty value counts as given") {
    CHECK(parse_ok({"-r", ""}).role_arn == std::string());
    CHECK(parse_ok({"--role-arn="}).role_arn == std::string());
}

TEST_CASE("a value that looks like a flag is still taken as the value, as Go does") {
    const CliFlags f = parse_ok({"-n", "-r", "x"});
    CHECK(f.region == "-r");
    CHECK(f.ignored == Args{"x"});
}

TEST_CASE("a value may contain '=' after the first one") {
    CHECK(parse_ok({"-p=http://u:p=w@h:1"}).proxy_address == "http://u:p=w@h:1");
}

TEST_CASE("bools take Go's spellings only with '=', and a bare bool flag means true") {
    CHECK(parse_ok({"-o"}).local_mode == true);
    CHECK(parse_ok({"--local-mode"}).local_mode == true);
    for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) {
        CHECK(parse_ok({std::string("-o=") + t}).local_mode == true);
    }
    for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
        CHECK(parse_ok({std::string("--local-mode=") + f}).local_mode == false);
    }
    CHECK(parse_ok({"-v"}).version);
    CHECK_FALSE(parse_ok({"-v=false"}).version);
}

TEST_CASE("'-o false' makes false a positional argument that ends parsing") {
    const CliFlags f = parse_ok({"-o", "false", "-n", "x"});
    CHECK(f.local_mode == true);
    CHECK_FALSE(f.region.has_value());
    CHECK(f.ignored == Args{"false", "-n", "x"});
}

TEST_CASE("a repeated flag keeps the last value, whichever name it used") {
    CHECK(parse_ok({"-n", "a", "-n", "b"}).region == "b");
    CHECK(parse_ok({"-n", "a", "--region=c"}).region == "c");
    CHECK(parse_ok({"-o", "-o=false"}).local_mode == false);
    CHECK(parse_ok({"-m", "5", "--buffer-memory", "7"}).buffer_memory_mb == 7);
}

TEST_CASE("parsing stops at the first non-flag argument, a lone dash, or after --") {
    struct Row {
        Args args;
        Args ignored;
        bool region_set;
    };
    const std::vector<Row> rows{
        {{"-n", "a", "positional", "-r", "x"}, {"positional", "-r", "x"}, true},
        {{"positional", "-n", "a"}, {"positional", "-n", "a"}, false},
        {{"-n", "a", "--", "-r", "x"}, {"-r", "x"}, true},
        {{"--", "-n", "a"}, {"-n", "a"}, false},
        {{"-", "-n", "a"}, {"-", "-n", "a"}, false},
    };
    for (const Row& row : rows) {
        CAPTURE(row.args[0]);
        const CliFlags f = parse_ok(row.args);
        CHECK(f.ignored == row.ignored);
        CHECK(f.region.has_value() == row.region_set);
        CHECK_FALSE(f.role_arn.has_value());
    }
}

TEST_CASE("-h, --h, -help and --help ask for the usage and stop parsing") {
    for (const Args& args : {Args{"-h"}, Args{"--h"}, Args{"-help"}, Args{"--help"},
                             Args{"-help=1"}, Args{"-n", "x", "-h", "-undefined"}}) {
        CAPTURE(args.back());
        CHECK(parse_ok(args).help);
    }
    // Flags before -h are still parsed, and their errors come first.
    CHECK(parse_error({"-undefined", "-h"}) == "flag provided but not defined: -undefined");
}

TEST_CASE("flag errors carry the Go flag package's exact text") {
    struct Row {
        Args args;
        std::string message;
    };
    const std::vector<Row> rows{
        {{"-x"}, "flag provided but not defined: -x"},
        {{"--x"}, "flag provided but not defined: -x"},
        {{"--nope=1"}, "flag provided but not defined: -nope"},
        {{"-m", "abc"}, "invalid value \"abc\" for flag -m: parse error"},
        {{"--buffer-memory=99999999999999999999"},
         "invalid value \"99999999999999999999\" for flag -buffer-memory: value out of range"},
        {{"-m", "1_000_"}, "invalid value \"1_000_\" for flag -m: parse error"},
        {{"-n"}, "flag needs an argument: -n"},
        {{"--region"}, "flag needs an argument: -region"},
        {{"-o=maybe"}, "invalid boolean value \"maybe\" for -o: parse error"},
        {{"-v=yes"}, "invalid boolean value \"yes\" for -v: parse error"},
        {{"---x"}, "bad flag syntax: ---x"},
        {{"-=x"}, "bad flag syntax: -=x"},
        {{"--=x"}, "bad flag syntax: --=x"},
        {{"-m", "a\"b"}, "invalid value \"a\\\"b\" for flag -m: parse error"},
        // xrayd's options use the same machinery and wording.
        {{"--linger", "100"},
         "invalid value \"100\" for flag -linger: missing unit in duration \"100\" (use a unit, "
         "e.g. 100ms)"},
        {{"-linger=5q"},
         "invalid value \"5q\" for flag -linger: unknown unit \"q\" in duration "
         "\"5q\""},
        {{"--shutdown-timeout=-1s"},
         "invalid value \"-1s\" for flag -shutdown-timeout: must not be negative"},
        {{"--request-timeout=0s"},
         "invalid value \"0s\" for flag -request-timeout: must be at least 1ms"},
        {{"--receivers", "-1"}, "invalid value \"-1\" for flag -receivers: must be at least 0"},
        {{"--concurrency=0"}, "invalid value \"0\" for flag -concurrency: must be at least 1"},
        {{"--receive-buffer=0"},
         "invalid value \"0\" for flag -receive-buffer: must be a positive number of bytes"},
        {{"--max-batch-bytes=x"}, "invalid value \"x\" for flag -max-batch-bytes: parse error"},
        {{"--spool-max-bytes", "-1"},
         "invalid value \"-1\" for flag -spool-max-bytes: must be a positive number of bytes"},
        {{"--spool-dir"}, "flag needs an argument: -spool-dir"},
        {{"--endpoint"}, "flag needs an argument: -endpoint"},
    };
    for (const Row& row : rows) {
        CAPTURE(row.args[0]);
        CHECK(parse_error(row.args) == row.message);
    }
}

TEST_CASE("xrayd's long options parse with Go rules and map to their fields") {
    const CliFlags f =
        parse_ok({"--endpoint", "https://x.example", "-local-sink=-", "--ca-bundle=/ca.pem",
                  "--linger", "250ms", "--shutdown-timeout=1m30s", "-request-timeout", "2s",
                  "--receive-buffer=0x100000", "--max-batch-bytes", "1_000_000", "--receivers=4",
                  "--concurrency", "16", "--log-rotation-bytes=1024"});
    CHECK(f.endpoint == "https://x.example");
    CHECK(f.local_sink == "-");
    CHECK(f.ca_bundle == "/ca.pem");
    CHECK(f.linger == std::chrono::milliseconds{250});
    CHECK(f.shutdown_timeout == std::chrono::seconds{90});
    CHECK(f.request_timeout == std::chrono::seconds{2});
    CHECK(f.receive_buffer_bytes == 0x100000u);
    CHECK(f.max_batch_bytes == 1000000u);
    CHECK(f.receivers == 4);
    CHECK(f.concurrency == 16);
    CHECK(f.log_rotation_bytes == 1024u);
}

TEST_CASE("the spool options parse with Go rules and map to their fields") {
    const CliFlags f =
        parse_ok({"--spool-dir", "/var/lib/xrayd/spool", "-spool-max-bytes=2_097_152",
                  "--spool-mode=write-ahead", "-spool-sync", "always"});
    CHECK(f.spool_dir == "/var/lib/xrayd/spool");
    CHECK(f.spool_max_bytes == 2097152u);
    CHECK(f.spool_mode == "write-ahead");  // the loader checks the names
    CHECK(f.spool_sync == "always");
    const CliFlags none = parse_ok({});
    CHECK_FALSE(none.spool_dir.has_value());
    CHECK_FALSE(none.spool_max_bytes.has_value());
    CHECK_FALSE(none.spool_mode.has_value());
    CHECK_FALSE(none.spool_sync.has_value());
    CHECK(parse_ok({"--spool-dir="}).spool_dir == "");  // given, empty: the spool stays off
}

TEST_CASE("the operations options parse: admin address, readiness, summary, check-config") {
    const CliFlags f = parse_ok({"--admin-address", "off", "--ready-failure-threshold=90s",
                                 "-summary-interval", "0", "--check-config"});
    CHECK(f.admin_address == "off");
    CHECK(f.ready_failure_threshold == std::chrono::seconds{90});
    CHECK(f.summary_interval == std::chrono::milliseconds{0});
    CHECK(f.check_config);
    CHECK_FALSE(parse_ok({}).check_config);
    CHECK_FALSE(parse_ok({}).admin_address.has_value());
    CHECK(parse_error({"--ready-failure-threshold", "0s"}) ==
          "invalid value \"0s\" for flag -ready-failure-threshold: must be at least 1ms");
    CHECK(parse_error({"--summary-interval", "-1s"}) ==
          "invalid value \"-1s\" for flag -summary-interval: must not be negative");
}

TEST_CASE("ints follow Go's strconv.ParseInt with base prefixes and underscores") {
    struct Row {
        std::string text;
        std::int64_t value;
    };
    const std::vector<Row> good{
        {"16", 16},
        {"0x10", 16},
        {"0X10", 16},
        {"010", 8},
        {"0o17", 15},
        {"0O17", 15},
        {"0b101", 5},
        {"1_000", 1000},
        {"0x_1F", 31},
        {"-5", -5},
        {"+5", 5},
        {"0", 0},
        {"-0", 0},
        {"00", 0},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
    };
    for (const Row& row : good) {
        CAPTURE(row.text);
        auto r = parse_go_int(row.text);
        REQUIRE(r.ok());
        CHECK(r.value() == row.value);
    }
    struct Bad {
        std::string text;
        std::string error;
    };
    const std::vector<Bad> bad{
        {"", "parse error"},
        {"-", "parse error"},
        {"abc", "parse error"},
        {"08", "parse error"},
        {"0x", "parse error"},
        {"1__0", "parse error"},
        {"_1", "parse error"},
        {"1_", "parse error"},
        {"0_x1", "parse error"},
        {"1.5", "parse error"},
        {" 1", "parse error"},
        {"0b2", "parse error"},
        {"9223372036854775808", "value out of range"},
        {"-9223372036854775809", "value out of range"},
        {"99999999999999999999", "value out of range"},
    };
    for (const Bad& row : bad) {
        CAPTURE(row.text);
        auto r = parse_go_int(row.text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == row.error);
    }
}

TEST_CASE("bools follow Go's strconv.ParseBool and nothing else") {
    CHECK_FALSE(parse_go_bool("yes").has_value());
    CHECK_FALSE(parse_go_bool("tRUE").has_value());
    CHECK_FALSE(parse_go_bool("").has_value());
    CHECK(parse_go_bool("T") == true);
    CHECK(parse_go_bool("0") == false);
}

TEST_CASE("durations follow Go's time.ParseDuration; plain numbers name the fix") {
    using namespace std::chrono_literals;
    struct Row {
        std::string text;
        std::chrono::nanoseconds value;
    };
    const std::vector<Row> good{
        {"100ms", 100ms},    {"5s", 5s},          {"1m30s", 90s}, {"1.5h", 90min},
        {"0", 0ns},          {"-2s", -2s},        {"+3s", 3s},    {"500us", 500us},
        {"1\xc2\xb5s", 1us}, {"1\xce\xbcs", 1us}, {"7ns", 7ns},   {".5s", 500ms},
        {"1.s", 1s},         {"2h45m", 165min},   {"0s", 0ns},
    };
    for (const Row& row : good) {
        CAPTURE(row.text);
        auto r = parse_go_duration(row.text);
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error()));
        CHECK(r.value() == row.value);
    }
    struct Bad {
        std::string text;
        std::string error;
    };
    const std::vector<Bad> bad{
        {"100", "missing unit in duration \"100\" (use a unit, e.g. 100ms)"},
        {"1s5", "missing unit in duration \"1s5\" (use a unit, e.g. 100ms)"},
        {"5q", "unknown unit \"q\" in duration \"5q\""},
        {"", "invalid duration \"\""},
        {"s", "invalid duration \"s\""},
        {".s", "invalid duration \".s\""},
        {"-", "invalid duration \"-\""},
        {"9999999999h", "invalid duration \"9999999999h\""},
    };
    for (const Bad& row : bad) {
        CAPTURE(row.text);
        auto r = parse_go_duration(row.text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == row.error);
    }
}

TEST_CASE("-h prints the Go daemon's screen exactly, then xrayd's options, and exits 0") {
    const std::string go_screen =
        "Usage: X-Ray [options]\n"
        "\t-a\t--resource-arn\tAmazon Resource Name (ARN) of the AWS resource running the "
        "daemon.\n"
        "\t-o\t--local-mode\tDon't check for EC2 instance metadata.\n"
        "\t-m\t--buffer-memory\tChange the amount of memory in MB that buffers can use "
        "(minimum 3).\n"
        "\t-n\t--region\tSend segments to X-Ray service in a specific region.\n"
        "\t-b\t--bind\t\tOverrides default UDP address (127.0.0.1:2000).\n"
        "\t-t\t--bind-tcp\tOverrides default TCP address (127.0.0.1:2000).\n"
        "\t-r\t--role-arn\tAssume the specified IAM role to upload segments to a different "
        "account.\n"
        "\t-c\t--config\tLoad a configuration file from the specified path.\n"
        "\t-f\t--log-file\tOutput logs to the specified file path.\n"
        "\t-l\t--log-level\tLog level, from most verbose to least: dev, debug, info, warn, "
        "error, prod (default).\n"
        "\t-p\t--proxy-address\tProxy address through which to upload segments.\n"
        "\t-v\t--version\tShow AWS X-Ray daemon version.\n"
        "\t-h\t--help\t\tShow this screen\n";
    const std::string usage = usage_text();
    CHECK(usage.substr(0, go_screen.size()) == go_screen);
    CHECK(usage.substr(go_screen.size(), 1) == "\n");  // the blank line before xrayd's part
    for (const char* option :
         {"--endpoint", "--local-sink", "--ca-bundle", "--linger", "--shutdown-timeout",
          "--request-timeout", "--receive-buffer", "--max-batch-bytes", "--receivers",
          "--concurrency", "--log-rotation-bytes", "--admin-address", "--ready-failure-threshold",
          "--summary-interval", "--spool-dir", "--spool-max-bytes", "--spool-mode",
          "--spool-sync"}) {
        CHECK(usage.find(std::string("\t") + option + " ") != std::string::npos);
    }
    CHECK(usage.find("\t--check-config\t") != std::string::npos);
    CHECK(usage.back() == '\n');

    for (const Args& args : {Args{"-h"}, Args{"--help"}, Args{"-help"}, Args{"-v", "-h"}}) {
        const CliOutcome out = run(args);
        CHECK_FALSE(out.config.has_value());
        CHECK(out.exit_code == 0);
        CHECK(out.out == usage);
        CHECK(out.err.empty());
    }
}

TEST_CASE("-v prints the version line on stdout and exits 0") {
    for (const Args& args : {Args{"-v"}, Args{"--version"}, Args{"-version=true"}}) {
        const CliOutcome out = run(args);
        CHECK_FALSE(out.config.has_value());
        CHECK(out.exit_code == 0);
        CHECK(out.out == std::string("AWS X-Ray daemon version: xrayd ") + XRAYD_VERSION + "\n");
        CHECK(out.err.empty());
    }
}

TEST_CASE("a flag error prints Go's message on stderr, the usage on stdout, and exits 2") {
    for (const Args& args : {Args{"-x"}, Args{"-m", "abc"}, Args{"-n"}, Args{"-v", "-x"}}) {
        const CliOutcome out = run(args);
        CHECK_FALSE(out.config.has_value());
        CHECK(out.exit_code == 2);
        CHECK(out.out == usage_text());
        CHECK(out.err == parse_error(args) + "\n");
    }
}

TEST_CASE("arguments after the flags are ignored but reported as a warning") {
    const CliOutcome out = run({"-n", "us-east-1", "-m", "8", "extra", "-r", "x"});
    REQUIRE(out.config.has_value());
    CHECK(out.config->aws.region == "us-east-1");
    CHECK(out.config->aws.role_arn.empty());
    REQUIRE(out.warnings.size() == 1);
    CHECK(out.warnings[0] == "Ignoring command-line arguments after the options: extra -r x");
}

}  // namespace xrayd

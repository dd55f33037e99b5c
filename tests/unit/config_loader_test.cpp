// Tests of the configuration loader: cfg.yaml V1/V2, the Go daemon's messages, precedence,
// xrayd's keys, error output and the cgroup-aware buffer memory.
#include <xrayd/config/ca_bundle.h>
#include <xrayd/config/config_loader.h>

#include <xrayd/config/describe.h>
#include <xrayd/config/reload.h>

#include <doctest/doctest.h>

#include "go_time.h"
#include "temp_dir.h"
#include "xrayd_config.h"

using xrayd::test::go_time_length;

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace xrayd {
namespace {

namespace fs = std::filesystem;

// Without --ca-bundle the dynamic build leaves the trust store to libcurl; the static release
// build has none compiled in and probes the host's (ca_bundle.h).
std::string default_ca_bundle() {
#if XRAYD_STATIC_RELEASE
    return find_ca_bundle(std::nullopt).value_or("");
#else
    return {};
#endif
}
using xrayd::test::read_file;
using xrayd::test::TempDir;
using Args = std::vector<std::string>;
using EnvVars = std::map<std::string, std::string, std::less<>>;

// A test world: a default-location path, a fake 16 GiB host without cgroup limit.
class World {
public:
    World() {
        dir.write("root/proc/meminfo", "MemTotal:       16777216 kB\nMemFree: 1 kB\n");
        sources.default_paths = {dir.path() / "etc/cfg.yaml", dir.path() / "cwd/cfg.yaml"};
        sources.system_root = dir.path() / "root";
    }

    fs::path default_file(const std::string& text) const { return dir.write("etc/cfg.yaml", text); }
    fs::path file(const std::string& text) const { return dir.write("c.yaml", text); }

    CliOutcome run(const Args& args) const { return load_config(args, env, sources); }

    Config run_ok(const Args& args) const {
        CliOutcome out = run(args);
        REQUIRE_MESSAGE(out.config.has_value(), out.err);
        CHECK(out.exit_code == 0);
        CHECK(out.err.empty());
        return *out.config;
    }

    // Runs and expects a configuration error; returns the message without the log prefix.
    std::string run_error(const Args& args) const {
        CliOutcome out = run(args);
        REQUIRE_FALSE(out.config.has_value());
        CHECK(out.exit_code == 1);
        CHECK(out.out.empty());
        const std::size_t time = go_time_length(out.err);
        REQUIRE_MESSAGE(time > 0, out.err);
        constexpr std::string_view level = " [Error] ";
        REQUIRE_MESSAGE(out.err.substr(time, level.size()) == level, out.err);
        REQUIRE(out.err.back() == '\n');
        return out.err.substr(time + level.size(), out.err.size() - time - level.size() - 1);
    }

    TempDir dir;
    ConfigSources sources;
    Environment env;
};

constexpr const char* doc = "Please refer to AWS X-Ray Documentation for more information.";
constexpr const char* migrate = "Use X-Ray Daemon Config Migration Script to update the config "
                                "file.";

const char* full_v2 = R"(# The Go daemon's pkg/cfg.yaml, every key set
TotalBufferSizeMB: 24
Concurrency: 16
Endpoint: "https://xray.example.com"
Region: "us-west-2"
Socket:
  UDPAddress: "127.0.0.1:3000"
  TCPAddress: "127.0.0.2:3000"
Logging:
  LogRotation: false
  LogLevel: "warn"
  LogPath: "/var/log/xray/x.log"
LocalMode: true
ResourceARN: "arn:aws:ec2:us-west-2:1:instance/i-1"
RoleARN: "arn:aws:iam::1:role/r"
NoVerifySSL: true
ProxyAddress: "http://proxy:3128"
Version: 2
)";

}  // namespace

TEST_CASE("without any file the built-in defaults apply") {
    World w;
    const Config c = w.run_ok({});
    const Config d;
    CHECK(c.daemon.config_path.empty());
    CHECK(c.aws.resource_arn.empty());
    CHECK_FALSE(c.aws.local_mode);
    CHECK(c.queue.buffer_memory_mb == 163);  // 1% of 16 GiB, floored
    CHECK(c.aws.region.empty());
    CHECK(c.net.udp_address == "127.0.0.1:2000");
    CHECK(c.proxy.tcp_address == "127.0.0.1:2000");
    CHECK(c.aws.role_arn.empty());
    CHECK(c.log.file.empty());
    CHECK(c.log.level == LogLevel::info);
    CHECK(c.log.rotation);
    CHECK(c.transport.proxy.empty());
    CHECK(c.transport.no_proxy.empty());
    CHECK(c.upload.concurrency == 8);
    CHECK(c.aws.endpoint.empty());
    CHECK_FALSE(c.transport.no_verify_ssl);
    CHECK(c.upload.local_sink.empty());
    CHECK(c.transport.ca_bundle == default_ca_bundle());
    CHECK(c.batch.linger == d.batch.linger);
    CHECK(c.daemon.shutdown_timeout == d.daemon.shutdown_timeout);
    CHECK(c.upload.request_timeout == d.upload.request_timeout);
    CHECK(c.net.receive_buffer_bytes == d.net.receive_buffer_bytes);
    CHECK(c.batch.max_batch_bytes == d.batch.max_batch_bytes);
    CHECK(c.net.receivers == 0);
    CHECK(c.log.rotation_bytes == 50ull << 20);
    CHECK(c.spool.dir.empty());
    CHECK_FALSE(c.spool.enabled());
    CHECK(c.spool.max_bytes == 1ull << 30);
    CHECK(c.spool.mode == spool::SpoolMode::overflow);
    CHECK(c.spool.sync == spool::SpoolSync::interval);
}

TEST_CASE("a full Version 2 file sets every Go setting, from -c or a default location") {
    World w;
    for (const Args& args : {Args{"-c", w.file(full_v2).string()}, Args{}}) {
        w.default_file(full_v2);
        const Config c = w.run_ok(args);
        CHECK(c.daemon.config_path ==
              (args.empty() ? w.sources.default_paths[0] : w.file(full_v2)));
        CHECK(c.queue.buffer_memory_mb == 24);
        CHECK(c.upload.concurrency == 16);
        CHECK(c.aws.endpoint == "https://xray.example.com");
        CHECK(c.aws.region == "us-west-2");
        CHECK(c.net.udp_address == "127.0.0.1:3000");
        CHECK(c.proxy.tcp_address == "127.0.0.2:3000");
        CHECK_FALSE(c.log.rotation);
        CHECK(c.log.level == LogLevel::warn);
        CHECK(c.log.file == "/var/log/xray/x.log");
        CHECK(c.aws.local_mode);
        CHECK(c.aws.resource_arn == "arn:aws:ec2:us-west-2:1:instance/i-1");
        CHECK(c.aws.role_arn == "arn:aws:iam::1:role/r");
        CHECK(c.transport.no_verify_ssl);
        CHECK(c.transport.proxy == "http://proxy:3128");
    }
}

TEST_CASE("a Version 1 file without TCPAddress defaults it; Version 2 honours it") {
    World w;
    Config c = w.run_ok({"-c", w.file("Socket:\n  UDPAddress: \"127.0.0.1:2001\"\n"
                                      "Version: 1\n")
                                   .string()});
    CHECK(c.net.udp_address == "127.0.0.1:2001");
    CHECK(c.proxy.tcp_address == "127.0.0.1:2000");
    c = w.run_ok(
        {"-c", w.file("Socket:\n  TCPAddress : \"127.0.0.2:3000\"\nVersion: 2\n").string()});
    CHECK(c.proxy.tcp_address == "127.0.0.2:3000");
    CHECK(c.net.udp_address == "127.0.0.1:2000");
}

TEST_CASE("unset, empty and zero values take the defaults as the Go daemon fills them") {
    World w;
    const Config c =
        w.run_ok({"-c", w.file("Concurrency: 0\nTotalBufferSizeMB: 0\nSocket:\n  UDPAddress: \"\"\n"
                               "Logging:\n  LogRotation: false\n  LogLevel: \"\"\n  LogPath: ~\n"
                               "LocalMode: ~\nVersion: 2\n")
                            .string()});
    CHECK(c.upload.concurrency == 8);
    CHECK(c.queue.buffer_memory_mb == 163);
    CHECK(c.net.udp_address == "127.0.0.1:2000");
    CHECK_FALSE(c.log.rotation);  // an explicit false is kept
    CHECK(c.log.level == LogLevel::info);
    CHECK(c.log.file.empty());
    CHECK_FALSE(c.aws.local_mode);
}

TEST_CASE("yaml.v2 quirks: any scalar into a string, floats truncated, YAML 1.1 booleans") {
    World w;
    const Config c = w.run_ok(
        {"-c", w.file("Region: 123\nConcurrency: 8.7\nLocalMode: yes\nNoVerifySSL: on\n"
                      "TotalBufferSizeMB: 0x10\nLogging:\n  LogRotation: Off\nVersion: 2.0\n")
                   .string()});
    CHECK(c.aws.region == "123");
    CHECK(c.upload.concurrency == 8);
    CHECK(c.aws.local_mode);
    CHECK(c.transport.no_verify_ssl);
    CHECK(c.queue.buffer_memory_mb == 16);
    CHECK_FALSE(c.log.rotation);
}

TEST_CASE("key validation of a -c file reports the Go daemon's exact messages") {
    struct Row {
        std::string yaml;
        std::string message;
    };
    const std::string missing = std::string("Config Version is missing. ") + migrate + " " + doc;
    const std::string bad_version =
        std::string("Config Version Setting is not correct. ") + migrate + " " + doc;
    const std::vector<Row> rows{
        // Without Version, any key that is not a Version 2 key brings back Go's message.
        {"Region: x\nABCDE: 1\n", missing},
        {"ABCDE: 1\n", missing},  // the Version check comes first for every key
        {"LogRotation: true\nRegion: x\n", missing},
        {"Version: 10000\n", bad_version},
        {"Version: 0\n", bad_version},
        {"Version: ~\n", bad_version},
        {"", bad_version},  // an empty file passes validation, then fails the version check
        {"# only a comment\n", bad_version},
        {"MemoryLimit: 10\nVersion: 2\n",
         std::string("MemoryLimit flag is not supported. ") + migrate + " " + doc},
        {"LogRotation: true\nVersion: 2\n",
         std::string("LogRotation flag is not supported. ") + migrate + " " + doc},
        {"Processor:\n  Region: x\nVersion: 2\n",
         std::string("Processor.Region flag is not supported. ") + migrate + " " + doc},
        {"Processor:\n  Endpoint: x\n  Routine: 2\nVersion: 2\n",
         std::string("Processor.Endpoint flag is not supported. ") + migrate + " " + doc},
        {"Socket:\n  BufferSizeKB: 64\nVersion: 2\n",
         std::string("Socket.BufferSizeKB flag is not supported any more. ") + doc},
        {"Profile:\n  CPU: x\nVersion: 2\n",
         std::string("Profile.CPU flag is not supported any more. ") + doc},
        {"Logging:\n  LogFormat: x\nVersion: 2\n",
         std::string("Logging.LogFormat flag is not supported any more. ") + doc},
        {"Processor:\n  BatchProcessorQueueSize: 1\nVersion: 2\n",
         std::string("Processor.BatchProcessorQueueSize flag is not supported any more. ") + doc},
        {"ABCDE: 1\nVersion: 2\n", std::string("ABCDE flag is invalid. ") + doc},
        {"Version: 2\nregion: x\n", std::string("region flag is invalid. ") + doc},
        {"Version: 2\nABCDE: 1\nMemoryLimit: 1\n", std::string("ABCDE flag is invalid. ") + doc},
        {"Version: 2\nSocket:\n", std::string("Socket flag is invalid. ") + doc},
        {"Version: 2\nProxyServer:\n  IdleConnTimeout: 5\n",
         std::string("ProxyServer.IdleConnTimeout flag is invalid. ") + doc},
        {"Version: 2\nXrayd:\n  Bogus: 1\n", std::string("Xrayd.Bogus flag is invalid. ") + doc},
        {"Version: 2\nXrayd: 5\n", std::string("Xrayd flag is invalid. ") + doc},
        {"TotalBufferSizeMB: NotExist\nVersion: 2\n",
         "Error occur when using config flag: yaml: unmarshal errors:\n"
         "  line 1: cannot unmarshal !!str `NotExist` into int"},
        {"Version: \"2\"\n", "Error occur when using config flag: yaml: unmarshal errors:\n"
                             "  line 1: cannot unmarshal !!str `2` into int"},
        {"Version: 2\nConcurrency: true\nLocalMode: maybe-not-a-bool\nRegion: [a]\n",
         "Error occur when using config flag: yaml: unmarshal errors:\n"
         "  line 2: cannot unmarshal !!bool `true` into int\n"
         "  line 3: cannot unmarshal !!str `maybe-n...` into bool\n"
         "  line 4: cannot unmarshal !!seq into string"},
        {"- a\n- b\n", "Error occur when using config flag: yaml: unmarshal errors:\n"
                       "  line 1: cannot unmarshal !!seq into yaml.MapSlice"},
    };
    for (const Row& row : rows) {
        World w;
        CAPTURE(row.yaml);
        CHECK(w.run_error({"-c", w.file(row.yaml).string()}) == row.message);
    }
}

TEST_CASE("every valid key path, xrayd's included, passes -c validation") {
    World w;
    const Config c = w.run_ok(
        {"-c", w.file(std::string(full_v2) + "proxyserver:\n  idleconntimeout: 5\n"
                                             "  maxidleconnsperhost: 3\n  maxidleconns: 4\n"
                                             "Socket: {}\n"
                                             "Xrayd:\n  CABundle: /ca.pem\n  LocalSink: \"-\"\n"
                                             "  Linger: 250ms\n  ShutdownTimeout: 1m\n"
                                             "  RequestTimeout: 3s\n  ReceiveBufferBytes: 1048576\n"
                                             "  MaxBatchBytes: 2_000_000\n  Receivers: 3\n"
                                             "  IoBackend: epoll\n  SteerByCpu: true\n"
                                             "  PinReceivers: yes\n  ProxyForwardAll: true\n"
                                             "  ProxyOptional: true\n  RetryBudget: 90s\n"
                                             "  Backpressure: drop-oldest\n"
                                             "  SpoolDir: /var/spool/x\n"
                                             "  SpoolMaxBytes: 0x200000\n"
                                             "  SpoolMode: write-ahead\n  SpoolSync: none\n")
                   .string()});
    CHECK(c.transport.ca_bundle == "/ca.pem");
    CHECK(c.upload.local_sink == "-");
    CHECK(c.batch.linger == std::chrono::milliseconds{250});
    CHECK(c.daemon.shutdown_timeout == std::chrono::minutes{1});
    CHECK(c.upload.request_timeout == std::chrono::seconds{3});
    CHECK(c.net.receive_buffer_bytes == 1048576u);
    CHECK(c.batch.max_batch_bytes == 2000000u);
    CHECK(c.net.receivers == 3);
    CHECK(c.net.io_backend == IoBackend::epoll);
    CHECK(c.net.steer_by_cpu);
    CHECK(c.net.pin_receivers);
    CHECK(c.proxy.forward_all);
    CHECK(c.proxy.optional);
    CHECK(c.upload.retry_budget == std::chrono::seconds{90});
    CHECK(c.queue.backpressure == Backpressure::drop_oldest);
    CHECK(c.spool.dir == "/var/spool/x");
    CHECK(c.spool.max_bytes == 0x200000u);
    CHECK(c.spool.mode == spool::SpoolMode::write_ahead);
    CHECK(c.spool.sync == spool::SpoolSync::none);
    CHECK(c.net.udp_address == "127.0.0.1:3000");  // the later empty Socket: {} sets nothing
}

TEST_CASE("the annotated example systemd/cfg.yaml passes -c validation and sets the defaults") {
    World w;
    const fs::path example = fs::path(XRAYD_TEST_DATA_DIR) / "../../systemd/cfg.yaml";
    const CliOutcome out = w.run({"-c", example.string()});
    REQUIRE_MESSAGE(out.config.has_value(), out.err);
    CHECK(out.warnings.empty());
    Config expected;
    expected.queue.buffer_memory_mb = 163;
    expected.daemon.config_path = example.string();
    const Config& c = *out.config;
    CHECK(c.queue.buffer_memory_mb == expected.queue.buffer_memory_mb);
    CHECK(c.upload.concurrency == expected.upload.concurrency);
    CHECK(c.net.udp_address == expected.net.udp_address);
    CHECK(c.proxy.tcp_address == expected.proxy.tcp_address);
    CHECK(c.log.level == expected.log.level);
    CHECK(c.log.rotation == expected.log.rotation);
    CHECK(c.batch.linger == expected.batch.linger);
    CHECK(c.daemon.shutdown_timeout == expected.daemon.shutdown_timeout);
    CHECK(c.upload.request_timeout == expected.upload.request_timeout);
    CHECK(c.net.receive_buffer_bytes == expected.net.receive_buffer_bytes);
    CHECK(c.batch.max_batch_bytes == expected.batch.max_batch_bytes);
    CHECK(c.net.receivers == expected.net.receivers);
    CHECK(c.upload.local_sink.empty());
    CHECK(c.transport.ca_bundle == default_ca_bundle());
    CHECK(c.spool.dir == expected.spool.dir);  // the spool stays off
    CHECK(c.spool.max_bytes == expected.spool.max_bytes);
    CHECK(c.spool.mode == expected.spool.mode);
    CHECK(c.spool.sync == expected.spool.sync);
}

TEST_CASE("unreadable or malformed files are reported with the config-flag prefix") {
    World w;
    const fs::path missing = w.dir.path() / "nope.yaml";
    CHECK(w.run_error({"-c", missing.string()}) == "Error occur when using config flag: open " +
                                                       missing.string() +
                                                       ": no such file or directory");
    CHECK(w.run_error({"-c", w.dir.path().string()}) ==
          "Error occur when using config flag: read " + w.dir.path().string() + ": is a directory");
    const std::string syntax = w.run_error({"-c", w.file("Version: 2\na: b: c\n").string()});
    CHECK(syntax.rfind("Error occur when using config flag: yaml: line 2: ", 0) == 0);
}

TEST_CASE("a default-location file is not key-validated but its types and Version are") {
    World w;
    w.default_file("Version: 2\nRegion: eu-west-1\nMemoryLimit: 5\nSocket:\n  Bogus: 1\n");
    const CliOutcome ok = w.run({});
    REQUIRE(ok.config.has_value());
    CHECK(ok.config->aws.region == "eu-west-1");
    REQUIRE(ok.warnings.size() == 2);
    CHECK(ok.warnings[0].find("MemoryLimit") != std::string::npos);
    CHECK(ok.warnings[1].find("Socket.Bogus") != std::string::npos);

    w.default_file("Region: eu-west-1\nMemoryLimit: 5\n");  // no Version, not all V2 keys
    CHECK(w.run_error({}) ==
          std::string("Config Version Setting is not correct. ") + migrate + " " + doc);
    w.default_file("Version: 2\nConcurrency: many\n");
    CHECK(w.run_error({}) == "Error occur when using config flag: yaml: unmarshal errors:\n"
                             "  line 2: cannot unmarshal !!str `many` into int");
}

// The EC2 setup guide's /etc/amazon/xray/cfg.yaml, verbatim (tests/integration/data/
// ec2-setup-guide-cfg.yaml says where it comes from): no Version key.
constexpr const char* setup_guide_cfg = R"(TotalBufferSizeMB: 0
Socket:
  UDPAddress: "127.0.0.1:2000"
  TCPAddress: "127.0.0.1:2000"
Region: "us-east-1"
Logging:
  LogLevel: "info"
  LogPath: "/var/log/xray/xray.log"
LocalMode: false
ResourceARN: ""
RoleARN: ""
)";

TEST_CASE("a file without Version whose keys are all Version 2 keys is read as Version 2 with "
          "one warning, from -c and from a default location") {
    World w;
    const fs::path named = w.file(setup_guide_cfg);
    const fs::path found = w.default_file(setup_guide_cfg);
    for (const Args& args : {Args{"-c", named.string()}, Args{}}) {
        CAPTURE(args.size());
        const CliOutcome out = w.run(args);
        REQUIRE_MESSAGE(out.config.has_value(), out.err);
        CHECK(out.exit_code == 0);
        CHECK(out.config->aws.region == "us-east-1");
        CHECK(out.config->net.udp_address == "127.0.0.1:2000");
        CHECK(out.config->proxy.tcp_address == "127.0.0.1:2000");
        CHECK(out.config->log.file == "/var/log/xray/xray.log");
        CHECK(out.config->log.level == LogLevel::info);
        REQUIRE(out.warnings.size() == 1);
        const std::string& warning = out.warnings[0];
        CHECK(warning.find((args.empty() ? found : named).string()) != std::string::npos);
        CHECK(warning.find("no Version key; reading it as Version 2") != std::string::npos);
        CHECK(warning.find("Add `Version: 2` to it to silence this warning") != std::string::npos);
    }
    // With Version: 2 added, as the warning says, it is silent.
    w.default_file(std::string(setup_guide_cfg) + "Version: 2\n");
    CHECK(w.run({}).warnings.empty());
    // xrayd's own keys are Version 2 keys too.
    CHECK(w.run({"-c", w.file("Region: x\nXrayd:\n  Linger: 1s\n").string()}).warnings.size() == 1);
}

TEST_CASE("a file without Version and with a key that is not a Version 2 key keeps the Go "
          "daemon's errors, from -c and from a default location") {
    World w;
    const std::string missing = std::string("Config Version is missing. ") + migrate + " " + doc;
    const std::string bad_version =
        std::string("Config Version Setting is not correct. ") + migrate + " " + doc;
    for (const std::string extra : {"Processor:\n  Region: x\n", "MemoryLimit: 5\n", "region: x\n",
                                    "Profile:\n", "Xrayd:\n  Bogus: 1\n"}) {
        CAPTURE(extra);
        const std::string text = std::string(setup_guide_cfg) + extra;
        CHECK(w.run_error({"-c", w.file(text).string()}) == missing);
        w.default_file(text);
        CHECK(w.run_error({}) == bad_version);
    }
    // An empty file says nothing about its version: Go's error, as before.
    w.default_file("# nothing\n");
    CHECK(w.run_error({}) == bad_version);
    // A Version key that is present but wrong is never replaced.
    w.default_file(std::string(setup_guide_cfg) + "Version: 3\n");
    CHECK(w.run_error({}) == bad_version);
}

TEST_CASE("the first existing default location wins") {
    World w;
    w.dir.write("cwd/cfg.yaml", "Version: 2\nRegion: second\n");
    CHECK(w.run_ok({}).aws.region == "second");
    w.default_file("Version: 1\nRegion: first\n");
    const CliOutcome out = w.run({});
    REQUIRE(out.config.has_value());
    CHECK(out.config->aws.region == "first");
    // The one not read is named, so a stale file cannot hide silently.
    REQUIRE(out.warnings.size() == 1);
    CHECK(out.warnings[0].find((w.dir.path() / "cwd/cfg.yaml").string() + " is not read") !=
          std::string::npos);
}

TEST_CASE("a broken default-location file does not break -h or -v, but does break a run") {
    World w;
    w.default_file("Version: [\n");
    for (const Args& args : {Args{"-h"}, Args{"--help"}, Args{"-v"}}) {
        const CliOutcome out = w.run(args);
        CHECK(out.exit_code == 0);
        CHECK_FALSE(out.out.empty());
        CHECK(out.err.empty());
    }
    CHECK(w.run_error({}).rfind("Error occur when using config flag: yaml: ", 0) == 0);
}

TEST_CASE("-c replaces the default-location file entirely") {
    World w;
    w.default_file("Version: 2\nRegion: from-default\nRoleARN: r\n");
    const Config c = w.run_ok({"-c", w.file("Version: 2\nResourceARN: a\n").string()});
    CHECK(c.aws.region.empty());
    CHECK(c.aws.role_arn.empty());
    CHECK(c.aws.resource_arn == "a");
}

TEST_CASE("flags beat the file, an explicit empty flag included") {
    World w;
    const std::string file = w.file(full_v2).string();
    const Config c = w.run_ok({"-c",
                               file,
                               "-a",
                               "flag-arn",
                               "-o=false",
                               "-m",
                               "9",
                               "-n",
                               "ap-south-1",
                               "-b",
                               "0.0.0.0:1",
                               "-t",
                               "0.0.0.0:2",
                               "-r",
                               "",
                               "-f",
                               "/tmp/flag.log",
                               "-l",
                               "error",
                               "--endpoint",
                               "http://e",
                               "--concurrency",
                               "3"});
    CHECK(c.aws.resource_arn == "flag-arn");
    CHECK_FALSE(c.aws.local_mode);
    CHECK(c.queue.buffer_memory_mb == 9);
    CHECK(c.aws.region == "ap-south-1");
    CHECK(c.net.udp_address == "0.0.0.0:1");
    CHECK(c.proxy.tcp_address == "0.0.0.0:2");
    CHECK(c.aws.role_arn.empty());
    CHECK(c.log.file == "/tmp/flag.log");
    CHECK(c.log.level == LogLevel::error);
    CHECK(c.aws.endpoint == "http://e");
    CHECK(c.upload.concurrency == 3);
}

TEST_CASE("proxy address: -p beats the file beats HTTPS_PROXY beats https_proxy") {
    struct Row {
        std::optional<std::string> flag;
        std::string file;
        std::map<std::string, std::string, std::less<>> env;
        std::string expected;
    };
    const std::vector<Row> rows{
        {std::nullopt, "", {}, ""},
        {std::nullopt, "", {{"HTTPS_PROXY", "http://env"}}, "http://env"},
        {std::nullopt, "", {{"https_proxy", "http://lower"}}, "http://lower"},
        {std::nullopt,
         "",
         {{"HTTPS_PROXY", "http://env"}, {"https_proxy", "http://lower"}},
         "http://env"},
        {std::nullopt, "", {{"HTTPS_PROXY", ""}, {"https_proxy", "http://lower"}}, "http://lower"},
        {std::nullopt, "http://file", {{"HTTPS_PROXY", "http://env"}}, "http://file"},
        {"http://flag", "http://file", {{"HTTPS_PROXY", "http://env"}}, "http://flag"},
        // `-p ""` overrides the file like any flag; empty then falls back to the environment.
        {"", "http://file", {{"HTTPS_PROXY", "http://env"}}, "http://env"},
        {"", "http://file", {}, ""},
        {std::nullopt, "", {{"HTTP_PROXY", "http://plain"}}, ""},
    };
    for (const Row& row : rows) {
        World w;
        w.env = Environment(row.env);
        Args args{"-c", w.file("Version: 2\nProxyAddress: \"" + row.file + "\"\n").string()};
        if (row.flag) {
            args.insert(args.end(), {"-p", *row.flag});
        }
        CAPTURE(row.expected);
        CHECK(w.run_ok(args).transport.proxy == row.expected);
    }
}

TEST_CASE("NO_PROXY beats no_proxy; the region environment is left to region resolution") {
    World w;
    w.env = Environment(EnvVars{{"NO_PROXY", "a.example"},
                                {"no_proxy", "b.example"},
                                {"AWS_REGION", "eu-north-1"},
                                {"AWS_DEFAULT_REGION", "eu-west-3"}});
    const Config c = w.run_ok({});
    CHECK(c.transport.no_proxy == "a.example");
    CHECK(c.aws.region.empty());
    w.env = Environment(EnvVars{{"no_proxy", "b.example"}});
    CHECK(w.run_ok({}).transport.no_proxy == "b.example");
    // The file's Region beats the environment (which is not even read here).
    w.env = Environment(EnvVars{{"AWS_REGION", "eu-north-1"}});
    w.default_file("Version: 2\nRegion: us-east-2\n");
    CHECK(w.run_ok({}).aws.region == "us-east-2");
}

TEST_CASE("log levels map as in Go; an unknown name is an error naming the allowed values") {
    World w;
    struct Row {
        std::string name;
        LogLevel level;
    };
    for (const Row& row : std::vector<Row>{{"dev", LogLevel::trace},
                                           {"debug", LogLevel::debug},
                                           {"info", LogLevel::info},
                                           {"warn", LogLevel::warn},
                                           {"error", LogLevel::error},
                                           {"prod", LogLevel::info}}) {
        CHECK(w.run_ok({"-l", row.name}).log.level == row.level);
    }
    const fs::path f = w.file("Version: 2\nLogging:\n  LogLevel: Debug\n");
    CHECK(w.run_error({"-c", f.string()}) ==
          "Invalid log level \"Debug\" (Logging.LogLevel in " + f.string() +
              "). Allowed values (case-sensitive): dev, debug, info, warn, error, prod.");
    CHECK(w.run_error({"-l", "trace"}) ==
          "Invalid log level \"trace\" (-l/--log-level). Allowed values (case-sensitive): dev, "
          "debug, info, warn, error, prod.");
    // The flag beats a bad file value, as it beats any file value.
    CHECK(w.run_ok({"-c", f.string(), "-l", "warn"}).log.level == LogLevel::warn);
}

TEST_CASE("xrayd's file settings are checked with messages that name the key and the fix") {
    struct Row {
        std::string xrayd;
        std::string message_part;
    };
    const std::vector<Row> rows{
        {"  Linger: 100\n", "Xrayd.Linger in "},
        {"  Linger: 100\n", ": missing unit in duration \"100\" (use a unit, e.g. 100ms)"},
        {"  ShutdownTimeout: -1s\n", "Xrayd.ShutdownTimeout in "},
        {"  RequestTimeout: 0s\n", "is below the minimum of 1ms"},
        {"  ReceiveBufferBytes: -5\n", "Xrayd.ReceiveBufferBytes in "},
        {"  Receivers: -1\n", "Xrayd.Receivers -1 in "},
        {"  MaxBatchBytes: lots\n", "cannot unmarshal !!str `lots` into int"},
        {"  Backpressure: drop-random\n", "Xrayd.Backpressure \"drop-random\" is not a "
                                          "backpressure policy: use drop-newest or drop-oldest."},
        {"  RetryBudget: 0s\n", "is below the minimum of 1ms"},
        {"  IoBackend: uring\n", "Xrayd.IoBackend \"uring\" is not a receive backend: use auto, "
                                 "io_uring or epoll."},
        {"  SpoolMode: spill\n", "Xrayd.SpoolMode \"spill\" is not a spool mode: use overflow or "
                                 "write-ahead."},
        {"  SpoolSync: often\n", "Xrayd.SpoolSync \"often\" is not a spool sync policy: use none, "
                                 "interval or always."},
        {"  SpoolMaxBytes: 1048575\n", "Xrayd.SpoolMaxBytes 1048575 in "},
        {"  SpoolMaxBytes: -5\n", "Xrayd.SpoolMaxBytes -5 in "},
        {"  SpoolMaxBytes: lots\n", "cannot unmarshal !!str `lots` into int"},
    };
    for (const Row& row : rows) {
        World w;
        CAPTURE(row.xrayd);
        const std::string message =
            w.run_error({"-c", w.file("Version: 2\nXrayd:\n" + row.xrayd).string()});
        CHECK(message.find(row.message_part) != std::string::npos);
    }
    World w;
    CHECK(w.run_error({"-c", w.file("Version: 2\nConcurrency: -1\n").string()})
              .find("Concurrency -1 in ") == 0);
}

TEST_CASE("xrayd's flags beat its file settings") {
    World w;
    const Config c = w.run_ok({"-c",
                               w.file("Version: 2\nXrayd:\n  Linger: 1s\n  Receivers: 2\n"
                                      "  CABundle: /file.pem\n")
                                   .string(),
                               "--linger", "5ms", "--receivers", "0", "--ca-bundle", "/flag.pem",
                               "--log-rotation-bytes", "4096"});
    CHECK(c.batch.linger == std::chrono::milliseconds{5});
    CHECK(c.net.receivers == 0);
    CHECK(c.transport.ca_bundle == "/flag.pem");
    CHECK(c.log.rotation_bytes == 4096u);
}

TEST_CASE("receive engine settings: defaults, flags over the file, and a bad backend name") {
    World w;
    const Config defaults = w.run_ok({});
    CHECK(defaults.net.io_backend == IoBackend::auto_);
    CHECK_FALSE(defaults.net.steer_by_cpu);
    CHECK_FALSE(defaults.net.pin_receivers);
    const Config c = w.run_ok({"-c",
                               w.file("Version: 2\nXrayd:\n  IoBackend: epoll\n"
                                      "  PinReceivers: true\n")
                                   .string(),
                               "--io-backend=io_uring", "-pin-receivers=false", "--steer-by-cpu"});
    CHECK(c.net.io_backend == IoBackend::io_uring);
    CHECK_FALSE(c.net.pin_receivers);
    CHECK(c.net.steer_by_cpu);
    const Config retry = w.run_ok({"--retry-budget", "30s", "--backpressure", "drop-oldest"});
    CHECK(retry.upload.retry_budget == std::chrono::seconds{30});
    CHECK(retry.queue.backpressure == Backpressure::drop_oldest);
    CHECK(defaults.upload.retry_budget == std::chrono::minutes{10});
    CHECK(defaults.queue.backpressure == Backpressure::drop_newest);
    CHECK(w.run_error({"--io-backend", "kqueue"}) ==
          "--io-backend \"kqueue\" is not a receive backend: use auto, io_uring or epoll.");
}

TEST_CASE("spool settings: each flag and key, flags over the file, and bad values named") {
    World w;
    const Config flags =
        w.run_ok({"--spool-dir", "/var/lib/xrayd/spool", "--spool-max-bytes", "2097152",
                  "--spool-mode", "write-ahead", "--spool-sync", "always"});
    CHECK(flags.spool.dir == "/var/lib/xrayd/spool");
    CHECK(flags.spool.enabled());
    CHECK(flags.spool.max_bytes == 2097152u);
    CHECK(flags.spool.mode == spool::SpoolMode::write_ahead);
    CHECK(flags.spool.sync == spool::SpoolSync::always);

    const std::string file = w.file("Version: 2\nXrayd:\n  SpoolDir: /file/spool\n"
                                    "  SpoolMaxBytes: 3145728\n  SpoolMode: write-ahead\n"
                                    "  SpoolSync: none\n")
                                 .string();
    const Config keys = w.run_ok({"-c", file});
    CHECK(keys.spool.dir == "/file/spool");
    CHECK(keys.spool.max_bytes == 3145728u);
    CHECK(keys.spool.mode == spool::SpoolMode::write_ahead);
    CHECK(keys.spool.sync == spool::SpoolSync::none);

    const Config both = w.run_ok({"-c", file, "--spool-dir", "", "--spool-max-bytes", "1048576",
                                  "--spool-mode", "overflow", "--spool-sync", "interval"});
    CHECK_FALSE(both.spool.enabled());  // an explicit empty flag turns the file's spool off
    CHECK(both.spool.max_bytes == 1048576u);
    CHECK(both.spool.mode == spool::SpoolMode::overflow);
    CHECK(both.spool.sync == spool::SpoolSync::interval);
    // The flag beats a bad file value, as it beats any file value.
    const std::string bad = w.file("Version: 2\nXrayd:\n  SpoolMode: Overflow\n").string();
    CHECK(w.run_ok({"-c", bad, "--spool-mode", "overflow"}).spool.mode ==
          spool::SpoolMode::overflow);

    CHECK(w.run_error({"--spool-mode", "write_ahead"}) ==
          "--spool-mode \"write_ahead\" is not a spool mode: use overflow or write-ahead.");
    CHECK(w.run_error({"--spool-sync", "Always"}) ==
          "--spool-sync \"Always\" is not a spool sync policy: use none, interval or always.");
    CHECK(w.run_error({"--spool-max-bytes", "4096"}) ==
          "--spool-max-bytes 4096 is too small: the spool writes files of a few MiB, so it must "
          "be at least 1048576 bytes (1 MiB).");
    CHECK(w.run_error({"-c", bad}) ==
          "Xrayd.SpoolMode \"Overflow\" is not a spool mode: use overflow or write-ahead.");
    // 0 in a file is "not set", as for every int key: the default quota.
    CHECK(w.run_ok({"-c", w.file("Version: 2\nXrayd:\n  SpoolMaxBytes: 0\n").string()})
              .spool.max_bytes == 1ull << 30);
    const std::string small = w.file("Version: 2\nXrayd:\n  SpoolMaxBytes: 4096\n").string();
    CHECK(w.run_error({"-c", small}) ==
          "Xrayd.SpoolMaxBytes 4096 in " + small +
              " is too small: the spool writes files of a few MiB, so it must be at least "
              "1048576 bytes (1 MiB).");
    // A bad flag value is a command-line error: exit 2, Go's message, the usage.
    const CliOutcome usage = w.run({"--spool-max-bytes", "0"});
    CHECK(usage.exit_code == 2);
    CHECK(usage.err ==
          "invalid value \"0\" for flag -spool-max-bytes: must be a positive number of bytes\n");
}

TEST_CASE("OTLP settings: off by default, each flag and key, and bad values named") {
    World w;
    const Config defaults = w.run_ok({});
    CHECK_FALSE(defaults.otlp.enabled());  // a drop-in install takes no port of its own
    CHECK(defaults.otlp.endpoint.empty());
    CHECK(defaults.otlp.max_body_bytes == 4u << 20);

    const Config flags =
        w.run_ok({"--otlp-address", "127.0.0.1:4318", "--otlp-endpoint",
                  "https://example.test/v1/traces", "--otlp-max-body-bytes", "1048576"});
    CHECK(flags.otlp.enabled());
    CHECK(flags.otlp.address == "127.0.0.1:4318");
    CHECK(flags.otlp.endpoint == "https://example.test/v1/traces");
    CHECK(flags.otlp.max_body_bytes == 1048576u);

    const std::string file = w.file("Version: 2\nXrayd:\n  OtlpAddress: 127.0.0.1:4319\n"
                                    "  OtlpEndpoint: http://127.0.0.1:9/v1/traces\n"
                                    "  OtlpMaxBodyBytes: 2097152\n")
                                 .string();
    const Config keys = w.run_ok({"-c", file});
    CHECK(keys.otlp.address == "127.0.0.1:4319");
    CHECK(keys.otlp.endpoint == "http://127.0.0.1:9/v1/traces");
    CHECK(keys.otlp.max_body_bytes == 2097152u);
    CHECK_FALSE(w.run_ok({"-c", file, "--otlp-address", "off"}).otlp.enabled());

    CHECK(w.run_error({"--otlp-address", "4318"}) ==
          "--otlp-address \"4318\" is not host:port or off (e.g. 127.0.0.1:4318).");
    CHECK(w.run_error({"--otlp-endpoint", "xray.us-east-2.amazonaws.com/v1/traces"}) ==
          "--otlp-endpoint \"xray.us-east-2.amazonaws.com/v1/traces\" is not an http(s) URL "
          "(e.g. https://xray.us-east-2.amazonaws.com/v1/traces).");
    CHECK(w.run_error({"--otlp-max-body-bytes", "67108865"}) ==
          "--otlp-max-body-bytes 67108865 is too large: it must be at most 67108864 bytes (a "
          "gzip body may inflate to 4 times that, and is held whole).");
    const std::string negative = w.file("Version: 2\nXrayd:\n  OtlpMaxBodyBytes: -1\n").string();
    CHECK(w.run_error({"-c", negative}) == "Xrayd.OtlpMaxBodyBytes in " + negative +
                                               " must be a positive number of bytes, at most "
                                               "67108864, not -1");
    CHECK(w.run_error({"--otlp-address", "127.0.0.1:4318", "--local-sink", "-"}) ==
          "--otlp-address (Xrayd.OtlpAddress) and --local-sink (Xrayd.LocalSink) cannot be "
          "combined: OTLP spans go only to X-Ray; drop one.");
    // Reachable from elsewhere: said once, with the risk.
    const CliOutcome open = w.run({"--otlp-address", "0.0.0.0:4318"});
    REQUIRE(open.warnings.size() == 1);
    CHECK(open.warnings[0].find("(--otlp-address) listens on 0.0.0.0:4318") != std::string::npos);
}

TEST_CASE("a config error is also appended to the -f log file, parent directories created") {
    World w;
    const fs::path log = w.dir.path() / "logs/deep/xray.log";
    w.dir.write("logs/deep/xray.log", "earlier line\n");
    const CliOutcome out = w.run({"-f", log.string(), "-c", w.file("Version: 3\n").string()});
    CHECK(out.exit_code == 1);
    CHECK(read_file(log) == "earlier line\n" + out.err);

    const fs::path fresh = w.dir.path() / "new/dir/x.log";
    const CliOutcome again = w.run({"-f", fresh.string(), "-c", w.file("Nope: 1").string()});
    CHECK(again.exit_code == 1);
    CHECK(read_file(fresh) == again.err);
}

TEST_CASE("an error found after loading goes to the file's LogPath when there is no -f") {
    World w;
    const fs::path log = w.dir.path() / "from-file.log";
    const CliOutcome out = w.run(
        {"-c",
         w.file("Version: 2\nTotalBufferSizeMB: 2\nLogging:\n  LogPath: " + log.string() + "\n")
             .string()});
    CHECK(out.exit_code == 1);
    CHECK(read_file(log) == out.err);
}

TEST_CASE("buffer memory below 3 MB is refused with the Go daemon's message") {
    World w;
    const std::string message =
        "Not enough Buffers Memory Allocated. Min Buffers Memory required: 3 MB.";
    CHECK(w.run_error({"-m", "2"}) == message);
    CHECK(w.run_ok({"-m", "3"}).queue.buffer_memory_mb == 3);
    CHECK(w.run_ok({"-m", "-1"}).queue.buffer_memory_mb == 163);
    w.dir.write("root/proc/meminfo", "MemTotal: 204800 kB\n");  // 200 MiB host: 1% = 2 MB
    CHECK(w.run_error({}) == message);
    fs::remove(w.dir.path() / "root/proc/meminfo");
    CHECK(w.run_error({}).find("proc/meminfo") != std::string::npos);
    CHECK(w.run_ok({"-m", "5"}).queue.buffer_memory_mb == 5);  // no need to read memory then
}

TEST_CASE("-m 17592186044416 is refused naming the flag, the value and the fix, not wrapped into "
          "a zero limit") {
    World w;
    // 2^44 MB << 20 is 2^64: it used to wrap to a limit of 0 bytes that dropped everything.
    CHECK(w.run_error({"-m", "17592186044416"}) ==
          "-m/--buffer-memory 17592186044416 is too large: the buffer memory is given in MB and "
          "must be at most 1099511627776 (e.g. -m 64).");
    CHECK(w.run_ok({"-m", "1099511627776"}).queue.buffer_memory_mb == 1099511627776);
    CHECK(w.run_error({"-c", w.file("Version: 2\nTotalBufferSizeMB: 1099511627777\n").string()})
              .find("TotalBufferSizeMB in ") == 0);
}

TEST_CASE("every size, duration and count at its limit is accepted and one past it is refused "
          "with the option's name") {
    struct Row {
        Args at_limit;
        Args past_limit;
        std::string message;  // exact, for the past-limit flag
    };
    const std::vector<Row> rows{
        {{"--linger", "8760h"},
         {"--linger", "8760h1ms"},
         "--linger 31536000001ms is too long: it must be at most 8760h (one year)."},
        {{"--shutdown-timeout", "8760h"},
         {"--shutdown-timeout", "2562047h"},
         "--shutdown-timeout 9223369200000ms is too long: it must be at most 8760h (one year)."},
        {{"--request-timeout", "8760h"},
         {"--request-timeout", "8761h"},
         "--request-timeout 31539600000ms is too long: it must be at most 8760h (one year)."},
        {{"--retry-budget", "8760h"},
         {"--retry-budget", "8761h"},
         "--retry-budget 31539600000ms is too long: it must be at most 8760h (one year)."},
        {{"--ready-failure-threshold", "8760h"},
         {"--ready-failure-threshold", "8761h"},
         "--ready-failure-threshold 31539600000ms is too long: it must be at most 8760h (one "
         "year)."},
        {{"--summary-interval", "8760h"},
         {"--summary-interval", "8761h"},
         "--summary-interval 31539600000ms is too long: it must be at most 8760h (one year)."},
        {{"--receive-buffer", "1073741824"},
         {"--receive-buffer", "1073741825"},
         "--receive-buffer 1073741825 is too large: it must be at most 1073741824 bytes."},
        {{"--max-batch-bytes", "1073741824"},
         {"--max-batch-bytes", "9223372036854775807"},
         "--max-batch-bytes 9223372036854775807 is too large: it must be at most 1073741824 "
         "bytes."},
        {{"--concurrency", "1024"},
         {"--concurrency", "2147483647"},
         "--concurrency 2147483647 is too large: it must be at most 1024."},
        {{"--receivers", "1024"},
         {"--receivers", "1025"},
         "--receivers 1025 is too large: use 0 (one per CPU) or at most 1024."},
        {{"--spool-max-bytes", "1125899906842624"},
         {"--spool-max-bytes", "1125899906842625"},
         "--spool-max-bytes 1125899906842625 is too large: it must be at most 1125899906842624 "
         "bytes (1 PiB)."},
        {{"--spool-max-bytes", "1048576"},
         {"--spool-max-bytes", "1048575"},
         "--spool-max-bytes 1048575 is too small: the spool writes files of a few MiB, so it must "
         "be at least 1048576 bytes (1 MiB)."},
    };
    for (const Row& row : rows) {
        CAPTURE(row.past_limit[0]);
        World w;
        (void)w.run_ok(row.at_limit);
        CHECK(w.run_error(row.past_limit) == row.message);
    }
    // The same limits for the file keys, named as keys.
    const std::vector<std::pair<std::string, std::string>> file_rows{
        {"Xrayd:\n  Linger: 8761h\n", "is above the maximum of 8760h (one year)"},
        {"Xrayd:\n  RetryBudget: 2562047h\n", "is above the maximum of 8760h (one year)"},
        {"Xrayd:\n  ReceiveBufferBytes: 1073741825\n", "at most 1073741824, not 1073741825"},
        {"Xrayd:\n  MaxBatchBytes: 1073741825\n", "at most 1073741824, not 1073741825"},
        {"Xrayd:\n  Receivers: 1025\n", "Xrayd.Receivers 1025 in "},
        {"Xrayd:\n  SpoolMaxBytes: 1125899906842625\n",
         "is too large: it must be at most 1125899906842624 bytes (1 PiB)."},
        {"Concurrency: 1025\n", "it must be at least 1 and at most 1024."},
    };
    for (const auto& row : file_rows) {
        const std::string& yaml = row.first;
        const std::string& part = row.second;
        CAPTURE(yaml);
        World w;
        CHECK(w.run_error({"-c", w.file("Version: 2\n" + yaml).string()}).find(part) !=
              std::string::npos);
    }
}

TEST_CASE("a non-loopback -t or --admin-address is warned about once, naming the address and "
          "the risk") {
    World w;
    CHECK(w.run({}).warnings.empty());
    CHECK(w.run({"-t", "localhost:2000", "--admin-address", "[::1]:2100"}).warnings.empty());
    CHECK(w.run({"-t", "127.0.0.2:2000"}).warnings.empty());
    CliOutcome out = w.run({"-t", "0.0.0.0:2000", "--admin-address", ":2100"});
    REQUIRE(out.warnings.size() == 2);
    CHECK(out.warnings[0].find("listens on 0.0.0.0:2000, which is not a loopback address") !=
          std::string::npos);
    CHECK(out.warnings[0].find("signed with this daemon's AWS credentials") != std::string::npos);
    CHECK(out.warnings[1].find("(--admin-address) listens on :2100") != std::string::npos);
    // The local sink runs no proxy: nothing to sign for anyone.
    out = w.run({"-t", "10.0.0.1:2000", "--local-sink", "-", "--admin-address", "off"});
    CHECK(out.warnings.empty());
}

TEST_CASE("resolve_buffer_memory_mb uses 1% of the lower of host RAM and cgroup limit") {
    constexpr std::uint64_t gib = 1ull << 30;
    struct Row {
        std::int64_t configured;
        MemoryInfo memory;
        std::int64_t expected;
    };
    const std::vector<Row> rows{
        {0, {16 * gib, std::nullopt}, 163}, {0, {16 * gib, 1 * gib}, 10},
        {0, {1 * gib, 16 * gib}, 10},  // a limit above host RAM changes nothing
        {-5, {4 * gib, std::nullopt}, 40},  {0, {300ull << 20, std::nullopt}, 3},
        {64, {1 * gib, 1 * gib}, 64},  // an explicit size is used as is
    };
    for (const Row& row : rows) {
        auto r = resolve_buffer_memory_mb(row.configured, row.memory);
        REQUIRE(r.ok());
        CHECK(r.value() == row.expected);
    }
    CHECK_FALSE(resolve_buffer_memory_mb(0, {299ull << 20, std::nullopt}).ok());
    CHECK_FALSE(resolve_buffer_memory_mb(2, {16 * gib, std::nullopt}).ok());
}

TEST_CASE("read_memory_info finds the cgroup v2 limit of our cgroup or an ancestor") {
    TempDir dir;
    dir.write("proc/meminfo", "MemTotal:        8388608 kB\n");
    dir.write("proc/self/cgroup", "0::/system.slice/xrayd.service\n");
    dir.write("sys/fs/cgroup/system.slice/xrayd.service/memory.max", "max\n");
    auto info = read_memory_info(dir.path());
    REQUIRE(info.ok());
    CHECK(info.value().host_total_bytes == 8ull << 30);
    CHECK_FALSE(info.value().cgroup_limit_bytes.has_value());

    dir.write("sys/fs/cgroup/system.slice/memory.max", "1073741824\n");
    info = read_memory_info(dir.path());
    REQUIRE(info.ok());
    CHECK(info.value().cgroup_limit_bytes == 1ull << 30);

    dir.write("sys/fs/cgroup/system.slice/xrayd.service/memory.max", "536870912\n");
    info = read_memory_info(dir.path());
    REQUIRE(info.ok());
    CHECK(info.value().cgroup_limit_bytes == 512ull << 20);

    // The whole chain, as load_config applies it: 1% of 512 MiB is 5 MB.
    World w;
    for (const char* f : {"proc/meminfo", "proc/self/cgroup",
                          "sys/fs/cgroup/system.slice/xrayd.service/memory.max"}) {
        w.dir.write(std::string("root/") + f, read_file(dir.path() / f));
    }
    CHECK(w.run_ok({}).queue.buffer_memory_mb == 5);
}

TEST_CASE("read_memory_info finds the cgroup v1 limit, also inside a cgroup namespace") {
    TempDir dir;
    dir.write("proc/meminfo", "MemTotal:        8388608 kB\n");
    dir.write("proc/self/cgroup",
              "12:pids:/docker/abc\n5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n");
    // Inside a container the hierarchy root is ours; /docker/abc does not exist there.
    dir.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n");
    auto info = read_memory_info(dir.path());
    REQUIRE(info.ok());
    CHECK(info.value().cgroup_limit_bytes == 256ull << 20);

    // v1 "unlimited" is a huge number: it never wins against host RAM.
    dir.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    info = read_memory_info(dir.path());
    REQUIRE(info.ok());
    auto mb = resolve_buffer_memory_mb(0, info.value());
    REQUIRE(mb.ok());
    CHECK(mb.value() == 81);

    // No cgroup file at all: host RAM only.
    fs::remove(dir.path() / "proc/self/cgroup");
    info = read_memory_info(dir.path());
    REQUIRE(info.ok());
    CHECK_FALSE(info.value().cgroup_limit_bytes.has_value());
}

// The Go daemon's file first: when xrayd's package replaces the Go daemon's, the Go file stays
// behind and must keep being read although the package ships /etc/xrayd/cfg.yaml.
TEST_CASE("the default search order reads the Go daemon's file first, then xrayd's own") {
    const std::vector<fs::path> paths = ConfigSources::default_config_paths();
    REQUIRE(paths.size() == 4);
    CHECK(paths[0] == "/etc/amazon/xray/cfg.yaml");
    CHECK(paths[1] == "/etc/xrayd/cfg.yaml");
    CHECK(paths[2] == "cfg.yaml");
    CHECK(paths[3] == "github.com/aws/aws-xray-daemon/pkg/cfg.yaml");
}

TEST_CASE("admin, readiness and summary settings: defaults, file keys, flags over the file") {
    World w;
    Config c = w.run_ok({});
    CHECK(c.admin.address == "127.0.0.1:2100");
    CHECK(c.admin.enabled());
    CHECK(c.admin.ready_failure_threshold == std::chrono::seconds{60});
    CHECK(c.admin.summary_interval == std::chrono::seconds{60});

    const std::string file = w.file("Version: 2\nXrayd:\n  AdminAddress: off\n"
                                    "  ReadyFailureThreshold: 2m\n  SummaryInterval: 0\n")
                                 .string();
    c = w.run_ok({"-c", file});
    CHECK_FALSE(c.admin.enabled());
    CHECK(c.admin.ready_failure_threshold == std::chrono::minutes{2});
    CHECK(c.admin.summary_interval == std::chrono::milliseconds{0});

    c = w.run_ok({"-c", file, "--admin-address", "127.0.0.1:0", "--summary-interval", "10s"});
    CHECK(c.admin.address == "127.0.0.1:0");
    CHECK(c.admin.summary_interval == std::chrono::seconds{10});

    CHECK(w.run_error({"--admin-address", "localhost"}) ==
          "--admin-address \"localhost\" is not host:port or off (e.g. 127.0.0.1:2100).");
    const std::string zero = w.file("Version: 2\nXrayd:\n  ReadyFailureThreshold: 0s\n").string();
    CHECK(w.run_error({"-c", zero}).find("is below the minimum of 1ms") != std::string::npos);
}

TEST_CASE("--check-config prints the effective configuration, secrets redacted, and exits 0") {
    World w;
    w.env = Environment({{"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                         {"AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"},
                         {"AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN"},
                         {"AWS_REGION", "eu-west-1"},
                         {"HTTPS_PROXY", "http://user:hunter2@proxy:3128"}});
    const std::string log = (w.dir.path() / "log/x.log").string();
    const CliOutcome out = w.run(
        {"--check-config", "-c",
         w.file("Version: 2\nConcurrency: 4\nXrayd:\n  Linger: 250ms\n").string(), "-f", log});
    CHECK_FALSE(out.config.has_value());
    CHECK(out.exit_code == 0);
    CHECK(out.err.empty());
    CHECK(out.out.find("Concurrency: 4  # --concurrency\n") != std::string::npos);
    CHECK(out.out.find("  Linger: 250ms") != std::string::npos);
    CHECK(out.out.find("  AdminAddress: \"127.0.0.1:2100\"") != std::string::npos);
    CHECK(out.out.find("TotalBufferSizeMB: 163") != std::string::npos);  // 1% of 16 GiB
    CHECK(out.out.find("\n  SpoolDir: \"\"  # --spool-dir; \"\" = off\n"
                       "  SpoolMaxBytes: 1073741824  # --spool-max-bytes\n"
                       "  SpoolMode: overflow  # --spool-mode\n"
                       "  SpoolSync: interval  # --spool-sync\n") != std::string::npos);
    CHECK(out.out.find("AWS_REGION=eu-west-1") != std::string::npos);
    CHECK(out.out.find("ProxyAddress: \"http://user:****@proxy:3128\"") != std::string::npos);
    for (const char* secret :
         {"wJalrXUtnFEMI", "AKIAIOSFODNN7EXAMPLE", "FwoGZXIvYXdz", "hunter2"}) {
        CAPTURE(secret);
        CHECK(out.out.find(secret) == std::string::npos);
    }
    CHECK(out.out.find("AWS_ACCESS_KEY_ID=AKIA****") != std::string::npos);
    CHECK_FALSE(fs::exists(log));  // checking writes no log file

    const std::string spool_dir = w.dir.path().string();  // --check-config checks it exists
    const CliOutcome spool =
        w.run({"--check-config", "--spool-dir", spool_dir, "--spool-max-bytes", "0x100000",
               "--spool-mode", "write-ahead", "--spool-sync", "none"});
    CHECK(spool.exit_code == 0);
    CHECK(spool.out.find("\n  SpoolDir: \"" + spool_dir +
                         "\"  # --spool-dir; \"\" = off\n"
                         "  SpoolMaxBytes: 1048576  # --spool-max-bytes\n"
                         "  SpoolMode: write-ahead  # --spool-mode\n"
                         "  SpoolSync: none  # --spool-sync\n") != std::string::npos);
    const CliOutcome spool_error = w.run({"--check-config", "--spool-sync", "sometimes"});
    CHECK(spool_error.exit_code == 1);
    CHECK(spool_error.out.empty());
    CHECK(spool_error.err.find("--spool-sync \"sometimes\" is not a spool sync policy") !=
          std::string::npos);
}

TEST_CASE("--check-config reports every error found and exits 1") {
    World w;
    const std::string log = (w.dir.path() / "x.log").string();
    const CliOutcome out = w.run({"--check-config", "-f", log, "-b", "127.0.0.1", "-t",
                                  "127.0.0.1:99999", "--admin-address", "[::1:2100", "--ca-bundle",
                                  (w.dir.path() / "missing.pem").string()});
    CHECK_FALSE(out.config.has_value());
    CHECK(out.exit_code == 1);
    CHECK(out.out.empty());
    std::vector<std::string> lines;
    std::istringstream in(out.err);
    for (std::string line; std::getline(in, line);) {
        CHECK(line.find(" [Error] ") != std::string::npos);
        lines.push_back(line);
    }
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].find("UDP address (-b / Socket.UDPAddress) 127.0.0.1: ") != std::string::npos);
    CHECK(lines[1].find("TCP address (-t / Socket.TCPAddress) 127.0.0.1:99999: ") !=
          std::string::npos);
    CHECK(lines[2].find("admin address") != std::string::npos);
    CHECK(lines[3].find("missing.pem: No such file or directory") != std::string::npos);
    CHECK_FALSE(fs::exists(log));

    // The spool directory must exist, and cannot go with the local sink.
    const std::string missing = (w.dir.path() / "no-spool").string();
    const CliOutcome spool = w.run({"--check-config", "--spool-dir", missing});
    CHECK(spool.exit_code == 1);
    CHECK(spool.err.find("spool directory (--spool-dir / Xrayd.SpoolDir) " + missing +
                         ": No such file or directory") != std::string::npos);
    const CliOutcome both = w.run({"--check-config", "--spool-dir", w.dir.path().string(),
                                   "--local-sink", (w.dir.path() / "out.jsonl").string()});
    CHECK(both.exit_code == 1);
    CHECK(both.err.find("cannot be combined") != std::string::npos);

    // A loader error (its first) is reported the same way.
    const CliOutcome bad = w.run({"--check-config", "-l", "loud"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("Invalid log level \"loud\"") != std::string::npos);
}

TEST_CASE("redaction hides secret-looking variables and URL passwords, nothing else") {
    CHECK(redact_environment_value("AWS_SECRET_ACCESS_KEY", "abcdefghijklmnop") == "abcd****");
    CHECK(redact_environment_value("MY_API_TOKEN", "abc") == "****");
    CHECK(redact_environment_value("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token") ==
          "/var/run/token");
    CHECK(redact_environment_value("AWS_REGION", "us-east-1") == "us-east-1");
    CHECK(redact_url_password("https://u:p@h:1/x?y=z@w") == "https://u:****@h:1/x?y=z@w");
    CHECK(redact_url_password("http://user@h") == "http://user@h");
    CHECK(redact_url_password("http://h:3128") == "http://h:3128");
}

TEST_CASE("reload takes a valid file and lists the safely changeable settings that changed") {
    World w;
    const std::string path =
        w.dir.write("r.yaml", "Version: 2\nLogging:\n  LogLevel: info\n").string();
    const Args args{"-c", path};
    const Config current = w.run_ok(args);

    auto same = reload_config(args, w.env, current, w.sources);
    REQUIRE(same.ok());
    CHECK(same.value().changes.empty());

    w.dir.write("r.yaml", "Version: 2\nConcurrency: 2\nLogging:\n  LogLevel: debug\n"
                          "Xrayd:\n  Linger: 1s\n  ProxyForwardAll: true\n"
                          "  RequestTimeout: 9s\n  SummaryInterval: 5m\n");
    auto changed = reload_config(args, w.env, current, w.sources);
    REQUIRE(changed.ok());
    const Config& next = changed.value().next;
    CHECK(next.log.level == LogLevel::debug);
    CHECK(next.upload.concurrency == 2);
    CHECK(next.batch.linger == std::chrono::seconds{1});
    CHECK(next.proxy.forward_all);
    const std::vector<std::string> expected{
        "Logging.LogLevel: Info -> Debug",      "Concurrency: 8 -> 2",
        "Xrayd.Linger: 100ms -> 1000ms",        "Xrayd.RequestTimeout: 5000ms -> 9000ms",
        "Xrayd.ProxyForwardAll: false -> true", "Xrayd.SummaryInterval: 60000ms -> 300000ms"};
    CHECK(changed.value().changes == expected);
    CHECK(is_reloadable_setting("Concurrency"));
    CHECK_FALSE(is_reloadable_setting("Socket.UDPAddress"));
}

TEST_CASE("reload refuses an invalid file with the loader's error, writing no log line") {
    World w;
    const std::string log = (w.dir.path() / "x.log").string();
    const std::string path = w.dir.write("r.yaml", "Version: 2\n").string();
    const Args args{"-c", path, "-f", log};
    const Config current = w.run_ok(args);
    w.dir.write("r.yaml", "Version: 2\nConcurrency: [1\n");
    auto r = reload_config(args, w.env, current, w.sources);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.error().size() == 1);
    CHECK(r.error()[0].starts_with("Error occur when using config flag: yaml: "));
    CHECK_FALSE(fs::exists(log));

    w.dir.write("r.yaml", "Version: 2\nBogus: 1\n");
    r = reload_config(args, w.env, current, w.sources);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error()[0] == std::string("Bogus flag is invalid. ") + doc);
}

TEST_CASE("reload refuses settings that need a restart and lists every one of them") {
    World w;
    const std::string path = w.dir.write("r.yaml", "Version: 2\n").string();
    const Args args{"-c", path};
    const Config current = w.run_ok(args);
    w.dir.write("r.yaml", "Version: 2\nTotalBufferSizeMB: 64\nRegion: eu-west-1\n"
                          "Concurrency: 3\nSocket:\n  UDPAddress: 0.0.0.0:2000\n");
    auto r = reload_config(args, w.env, current, w.sources);
    REQUIRE_FALSE(r.ok());
    const std::vector<std::string> expected{
        "TotalBufferSizeMB: 163 -> 64 (needs a restart)",
        "Region: \"\" -> eu-west-1 (needs a restart)",
        "Socket.UDPAddress: 127.0.0.1:2000 -> 0.0.0.0:2000 (needs a restart)"};
    CHECK(r.error() == expected);

    // The spool's directory, quota, mode and sync are fixed for the daemon's lifetime.
    w.dir.write("r.yaml", "Version: 2\nXrayd:\n  SpoolDir: /s\n  SpoolMaxBytes: 2097152\n"
                          "  SpoolMode: write-ahead\n  SpoolSync: always\n");
    r = reload_config(args, w.env, current, w.sources);
    REQUIRE_FALSE(r.ok());
    const std::vector<std::string> spool{
        "Xrayd.SpoolDir: \"\" -> /s (needs a restart)",
        "Xrayd.SpoolMaxBytes: 1073741824 -> 2097152 (needs a restart)",
        "Xrayd.SpoolMode: overflow -> write-ahead (needs a restart)",
        "Xrayd.SpoolSync: interval -> always (needs a restart)"};
    CHECK(r.error() == spool);
}

}  // namespace xrayd

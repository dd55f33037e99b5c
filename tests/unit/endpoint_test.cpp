// EndpointResolver: every partition, FIPS, dual-stack, custom endpoints, for X-Ray and STS.
#include <xrayd/aws/endpoint.h>

#include <map>
#include <string>

#include <doctest/doctest.h>

#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

Environment env_of(std::map<std::string, std::string, std::less<>> vars) {
    return Environment(std::move(vars));
}

struct Row {
    const char* region;
    bool fips;
    bool dualstack;
    const char* xray;  // "" = the rule set's error
    const char* sts;
};

EndpointSettings settings(bool fips, bool dualstack) {
    EndpointSettings s;
    s.use_fips = fips;
    s.use_dualstack = dualstack;
    return s;
}

}  // namespace

TEST_CASE("partition_of maps every partition's regions and pseudo-regions, unknown to aws") {
    CHECK(partition_of("us-east-1").id == "aws");
    CHECK(partition_of("il-central-1").id == "aws");
    CHECK(partition_of("mx-central-1").id == "aws");
    CHECK(partition_of("cn-northwest-1").id == "aws-cn");
    CHECK(partition_of("us-gov-west-1").id == "aws-us-gov");
    CHECK(partition_of("us-iso-east-1").id == "aws-iso");
    CHECK(partition_of("us-isob-east-1").id == "aws-iso-b");
    CHECK(partition_of("eu-isoe-west-1").id == "aws-iso-e");
    CHECK(partition_of("us-isof-south-1").id == "aws-iso-f");
    CHECK(partition_of("eusc-de-east-1").id == "aws-eusc");
    CHECK(partition_of("aws-cn-global").id == "aws-cn");
    CHECK(partition_of("nowhere").id == "aws");
    CHECK(partition_of("cn-north-1").primary_region == "cn-north-1");
    CHECK(partition_of("eu-west-1").primary_region == "us-east-1");
    CHECK(partition_of("us-gov-east-1").primary_region == "us-gov-west-1");
}

TEST_CASE("X-Ray and STS endpoints for every partition with FIPS and dual-stack follow the "
          "rule sets") {
    const Row rows[] = {
        {"us-west-2", false, false, "https://xray.us-west-2.amazonaws.com",
         "https://sts.us-west-2.amazonaws.com"},
        {"us-west-2", true, false, "https://xray-fips.us-west-2.amazonaws.com",
         "https://sts-fips.us-west-2.amazonaws.com"},
        {"us-west-2", false, true, "https://xray.us-west-2.api.aws",
         "https://sts.us-west-2.api.aws"},
        {"us-west-2", true, true, "https://xray-fips.us-west-2.api.aws",
         "https://sts-fips.us-west-2.api.aws"},
        {"cn-north-1", false, false, "https://xray.cn-north-1.amazonaws.com.cn",
         "https://sts.cn-north-1.amazonaws.com.cn"},
        {"cn-north-1", true, false, "https://xray-fips.cn-north-1.amazonaws.com.cn",
         "https://sts-fips.cn-north-1.amazonaws.com.cn"},
        {"cn-north-1", false, true, "https://xray.cn-north-1.api.amazonwebservices.com.cn",
         "https://sts.cn-north-1.api.amazonwebservices.com.cn"},
        {"cn-north-1", true, true, "https://xray-fips.cn-north-1.api.amazonwebservices.com.cn",
         "https://sts-fips.cn-north-1.api.amazonwebservices.com.cn"},
        {"us-gov-west-1", false, false, "https://xray.us-gov-west-1.amazonaws.com",
         "https://sts.us-gov-west-1.amazonaws.com"},
        {"us-gov-west-1", true, false, "https://xray-fips.us-gov-west-1.amazonaws.com",
         "https://sts.us-gov-west-1.amazonaws.com"},
        {"us-gov-east-1", false, true, "https://xray.us-gov-east-1.api.aws",
         "https://sts.us-gov-east-1.api.aws"},
        {"us-gov-east-1", true, true, "https://xray-fips.us-gov-east-1.api.aws",
         "https://sts-fips.us-gov-east-1.api.aws"},
        {"us-iso-east-1", false, false, "https://xray.us-iso-east-1.c2s.ic.gov",
         "https://sts.us-iso-east-1.c2s.ic.gov"},
        {"us-iso-east-1", true, false, "https://xray-fips.us-iso-east-1.c2s.ic.gov",
         "https://sts-fips.us-iso-east-1.c2s.ic.gov"},
        {"us-iso-east-1", false, true, "", ""},
        {"us-iso-east-1", true, true, "", ""},
        {"us-isob-east-1", false, false, "https://xray.us-isob-east-1.sc2s.sgov.gov",
         "https://sts.us-isob-east-1.sc2s.sgov.gov"},
        {"us-isob-east-1", true, false, "https://xray-fips.us-isob-east-1.sc2s.sgov.gov",
         "https://sts-fips.us-isob-east-1.sc2s.sgov.gov"},
        {"us-isob-east-1", false, true, "", ""},
        {"eu-isoe-west-1", false, false, "https://xray.eu-isoe-west-1.cloud.adc-e.uk",
         "https://sts.eu-isoe-west-1.cloud.adc-e.uk"},
        {"eu-isoe-west-1", false, true, "", ""},
        {"us-isof-south-1", false, false, "https://xray.us-isof-south-1.csp.hci.ic.gov",
         "https://sts.us-isof-south-1.csp.hci.ic.gov"},
        {"us-isof-south-1", true, false, "https://xray-fips.us-isof-south-1.csp.hci.ic.gov",
         "https://sts-fips.us-isof-south-1.csp.hci.ic.gov"},
        {"eusc-de-east-1", false, false, "https://xray.eusc-de-east-1.amazonaws.eu",
         "https://sts.eusc-de-east-1.amazonaws.eu"},
        {"eusc-de-east-1", false, true, "https://xray.eusc-de-east-1.api.amazonwebservices.eu",
         "https://sts.eusc-de-east-1.api.amazonwebservices.eu"},
        {"xx-unknown-9", false, false, "https://xray.xx-unknown-9.amazonaws.com",
         "https://sts.xx-unknown-9.amazonaws.com"},
    };
    for (const Row& row : rows) {
        INFO(row.region, " fips=", row.fips, " dualstack=", row.dualstack);
        const EndpointResolver resolver(row.region, settings(row.fips, row.dualstack));
        const auto xray = resolver.xray();
        const auto sts = resolver.sts();
        if (std::string(row.xray).empty()) {
            CHECK_FALSE(xray.ok());
            CHECK_FALSE(sts.ok());
            if (!xray.ok()) {
                CHECK(xray.error().find("DualStack") != std::string::npos);
            }
            continue;
        }
        REQUIRE(xray.ok());
        REQUIRE(sts.ok());
        CHECK(xray.value().url == row.xray);
        CHECK(xray.value().source == "default");
        CHECK(xray.value().signing_region == row.region);
        CHECK(sts.value().url == row.sts);
    }
}

TEST_CASE("STS for the aws-global pseudo-region is sts.amazonaws.com signed as us-east-1") {
    const EndpointResolver resolver("us-west-2", {});
    const auto sts = resolver.sts("aws-global");
    REQUIRE(sts.ok());
    CHECK(sts.value().url == "https://sts.amazonaws.com");
    CHECK(sts.value().signing_region == "us-east-1");
}

TEST_CASE("config Endpoint beats AWS_ENDPOINT_URL_XRAY, which beats AWS_ENDPOINT_URL") {
    const Environment env({{"AWS_ENDPOINT_URL_XRAY", "https://xray.example/"},
                           {"AWS_ENDPOINT_URL", "http://all.example:8080"},
                           {"AWS_ENDPOINT_URL_STS", "http://sts.example"}});
    {
        const EndpointResolver r("us-east-1",
                                 EndpointSettings::from_environment("http://cfg.example", env));
        CHECK(r.xray().value().url == "http://cfg.example");
        CHECK(r.xray().value().source == "config Endpoint");
        CHECK(r.sts().value().url == "http://sts.example");
        CHECK(r.sts().value().signing_region == "us-east-1");
    }
    {
        const EndpointResolver r("us-east-1", EndpointSettings::from_environment("", env));
        CHECK(r.xray().value().url == "https://xray.example");
        CHECK(r.xray().value().source == "AWS_ENDPOINT_URL_XRAY");
    }
    {
        const Environment only_global = env_of({{"AWS_ENDPOINT_URL", "http://all.example:8080"}});
        const EndpointResolver r("us-east-1", EndpointSettings::from_environment("", only_global));
        CHECK(r.xray().value().url == "http://all.example:8080");
        CHECK(r.sts().value().url == "http://all.example:8080");
    }
    {
        const Environment ignored = env_of({{"AWS_ENDPOINT_URL", "http://all.example:8080"},
                                            {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}});
        const EndpointResolver r("us-east-1", EndpointSettings::from_environment("", ignored));
        CHECK(r.xray().value().url == "https://xray.us-east-1.amazonaws.com");
    }
}

TEST_CASE("FIPS or dual-stack with a custom endpoint is the rule set's configuration error") {
    const Environment env = env_of({{"AWS_USE_FIPS_ENDPOINT", "TRUE"}});
    const EndpointResolver r("us-east-1", EndpointSettings::from_environment("http://x", env));
    REQUIRE_FALSE(r.xray().ok());
    CHECK(r.xray().error() == "Invalid Configuration: FIPS and custom endpoint are not supported");
    CHECK_THROWS_AS((void)r.xray_or_throw(), StartupError);
    const EndpointResolver fips_only("us-east-1", EndpointSettings::from_environment("", env));
    CHECK(fips_only.xray().value().url == "https://xray-fips.us-east-1.amazonaws.com");
}

TEST_CASE("a custom endpoint without http(s) scheme is refused with a message naming its source") {
    const EndpointResolver r("us-east-1",
                             EndpointSettings::from_environment("xray.local:2000", {}));
    REQUIRE_FALSE(r.xray().ok());
    CHECK(r.xray().error().find("config Endpoint") != std::string::npos);
}

TEST_CASE("regression: a region that is not a host label is refused, for X-Ray and STS, with or "
          "without a custom endpoint (it becomes part of a host and of the signed scope)") {
    for (const char* region : {"us-east-1\r\nX-Injected: yes", "us-east-1.evil.example",
                               "us-east-1/x", "us east 1", "-us-east-1"}) {
        CAPTURE(region);
        const EndpointResolver plain(region, EndpointSettings{});
        REQUIRE_FALSE(plain.xray().ok());
        CHECK(plain.xray().error().find("is not a valid host label") != std::string::npos);
        CHECK(plain.xray().error().find('\n') == std::string::npos);
        CHECK_FALSE(plain.sts().ok());
        const EndpointResolver custom(
            region, EndpointSettings::from_environment("http://127.0.0.1:2000", {}));
        CHECK_FALSE(custom.xray().ok());
    }
    CHECK(EndpointResolver("eu-west-1", EndpointSettings{}).xray().ok());
}

TEST_CASE("regression: a custom endpoint with user info, a query, a fragment or a control byte "
          "is refused") {
    for (const char* url :
         {"http://169.254.169.254@evil.example", "https://sts.local?x=1", "https://sts.local/#f",
          "https://sts.local/a\r\nX: y", "http://a\\@evil.example/"}) {
        CAPTURE(url);
        const EndpointResolver r("us-east-1", EndpointSettings::from_environment(
                                                  "", env_of({{"AWS_ENDPOINT_URL_STS", url}})));
        REQUIRE_FALSE(r.sts().ok());
        CHECK(r.sts().error().find("AWS_ENDPOINT_URL_STS") != std::string::npos);
    }
}

TEST_CASE("the compatibility helpers keep the first version's results") {
    CHECK(regional_xray_endpoint("cn-north-1") == "https://xray.cn-north-1.amazonaws.com.cn");
    const auto e = resolve_xray_endpoint("", "eu-west-1", Environment{});
    CHECK(e.url == "https://xray.eu-west-1.amazonaws.com");
    CHECK(e.source == "default");
}

}  // namespace xrayd

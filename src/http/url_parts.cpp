// URL parsing and building through libcurl's CURLU API.
#include <xrayd/http/url_parts.h>

#include <curl/curl.h>

#include <xrayd/http/curl.h>

namespace xrayd {

namespace {

struct CurlString {
    char* text = nullptr;
    ~CurlString() { curl_free(text); }
    CurlString() = default;
    CurlString(const CurlString&) = delete;
    CurlString& operator=(const CurlString&) = delete;
};

// The part, or "" when absent; false on any other error.
bool get_part(CURLU* url, CURLUPart part, std::string& out) {
    CurlString s;
    const CURLUcode rc = curl_url_get(url, part, &s.text, 0);
    if (rc == CURLUE_OK) {
        out = s.text;
        return true;
    }
    out.clear();
    return rc == CURLUE_NO_USER || rc == CURLUE_NO_PORT || rc == CURLUE_NO_QUERY ||
           rc == CURLUE_NO_FRAGMENT || rc == CURLUE_NO_PASSWORD || rc == CURLUE_NO_OPTIONS;
}

Result<CurlUrl, std::string> parse_handle(std::string_view url) {
    CurlUrl h = CurlUrl::create();
    if (!h) {
        return fail(std::string("out of memory"));
    }
    const std::string text(url);
    const CURLUcode rc = h.set(CURLUPART_URL, text.c_str());
    if (rc != CURLUE_OK) {
        return fail(std::string(curl_url_strerror(rc)));
    }
    return h;
}

}  // namespace

Result<UrlParts, std::string> parse_url(std::string_view url) {
    auto h = parse_handle(url);
    if (!h) {
        return fail(h.error());
    }
    CURLU* u = h.value().get();
    UrlParts parts;
    std::string user;
    std::string password;
    std::string query;
    std::string fragment;
    if (!get_part(u, CURLUPART_SCHEME, parts.scheme) || !get_part(u, CURLUPART_HOST, parts.host) ||
        !get_part(u, CURLUPART_PORT, parts.port) || !get_part(u, CURLUPART_PATH, parts.path) ||
        !get_part(u, CURLUPART_USER, user) || !get_part(u, CURLUPART_PASSWORD, password) ||
        !get_part(u, CURLUPART_QUERY, query) || !get_part(u, CURLUPART_FRAGMENT, fragment)) {
        return fail(std::string("cannot take the URL apart"));
    }
    if (parts.host.size() >= 2 && parts.host.front() == '[' && parts.host.back() == ']') {
        parts.host = parts.host.substr(1, parts.host.size() - 2);
    }
    if (parts.path.empty()) {
        parts.path = "/";
    }
    parts.has_user = !user.empty() || !password.empty();
    parts.has_query = !query.empty();
    parts.has_fragment = !fragment.empty();
    return parts;
}

Result<std::string, std::string> url_with_path(std::string_view base,
                                               std::string_view origin_form) {
    if (origin_form.empty() || origin_form.front() != '/') {
        return fail(std::string("the path must start with '/'"));
    }
    for (const char c : origin_form) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte == 0x7f || c == '#') {
            return fail(std::string("the path holds a space, a control byte or a '#'"));
        }
    }
    auto h = parse_handle(base);
    if (!h) {
        return fail(h.error());
    }
    CURLU* u = h.value().get();
    const std::size_t question = origin_form.find('?');
    const std::string path(origin_form.substr(0, question));
    if (curl_url_set(u, CURLUPART_PATH, path.c_str(), 0) != CURLUE_OK) {
        return fail(std::string("libcurl refused the path"));
    }
    const std::string query = question == std::string_view::npos
                                  ? std::string()
                                  : std::string(origin_form.substr(question + 1));
    if (curl_url_set(u, CURLUPART_QUERY, query.empty() ? nullptr : query.c_str(), 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, nullptr, 0) != CURLUE_OK) {
        return fail(std::string("libcurl refused the query"));
    }
    CurlString joined;
    if (curl_url_get(u, CURLUPART_URL, &joined.text, 0) != CURLUE_OK) {
        return fail(std::string("libcurl cannot put the URL together"));
    }
    return std::string(joined.text);
}

}  // namespace xrayd

// RAII owners of libcurl handles.
#include <xrayd/http/curl.h>

#include <string>

#include <xrayd/common/startup_error.h>

namespace xrayd {

CurlGlobal CurlGlobal::init() {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        throw StartupError(std::string("libcurl initialisation failed: ") + curl_easy_strerror(rc));
    }
    CurlGlobal global;
    global.active_ = true;
    return global;
}

CurlGlobal::~CurlGlobal() {
    if (active_) {
        curl_global_cleanup();
    }
}

CurlEasy CurlEasy::create() {
    CURL* handle = curl_easy_init();
    if (handle == nullptr) {
        throw StartupError("libcurl could not create an easy handle");
    }
    return CurlEasy(handle);
}

CurlMulti CurlMulti::create() {
    CURLM* handle = curl_multi_init();
    if (handle == nullptr) {
        throw StartupError("libcurl could not create a multi handle");
    }
    return CurlMulti(handle);
}

}  // namespace xrayd

// RAII owners of libcurl handles: CurlGlobal, CurlEasy, CurlMulti, CurlUrl, CurlSlist (every HTTP
// client uses them), and CurlFirstError for checking a block of options.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <utility>

namespace xrayd {

// Holds libcurl's process-wide initialisation (curl_global_init) for its lifetime.
// IMPORTANT: create exactly one, in main() (or a test's set-up), before any other thread runs
// and before any CurlEasy/CurlMulti exists; destroy it last. Move-only.
class CurlGlobal {
public:
    // Throws StartupError when libcurl cannot initialise (TLS library start-up failed).
    [[nodiscard]] static CurlGlobal init();

    ~CurlGlobal();
    CurlGlobal(CurlGlobal&& other) noexcept : active_(std::exchange(other.active_, false)) {}
    CurlGlobal& operator=(CurlGlobal&&) = delete;
    CurlGlobal(const CurlGlobal&) = delete;
    CurlGlobal& operator=(const CurlGlobal&) = delete;

private:
    CurlGlobal() noexcept = default;
    bool active_ = false;
};

// Owns one easy handle. Move-only; one thread at a time (libcurl's rule for easy handles).
// IMPORTANT: remove the handle from its CurlMulti before destroying it.
class CurlEasy {
public:
    CurlEasy() noexcept = default;  // empty; only for moved-from or not-yet-created slots
    // Throws StartupError when libcurl cannot allocate a handle.
    [[nodiscard]] static CurlEasy create();

    [[nodiscard]] CURL* get() const noexcept { return handle_.get(); }
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    // curl_easy_setopt, typed through curl's own checks. Every result must be checked.
    template <typename T>
    [[nodiscard]] CURLcode set(CURLoption option, T value) noexcept {
        return curl_easy_setopt(handle_.get(), option, value);
    }
    // curl_easy_getinfo into *out.
    template <typename T>
    [[nodiscard]] CURLcode info(CURLINFO what, T* out) const noexcept {
        return curl_easy_getinfo(handle_.get(), what, out);
    }

private:
    struct Deleter {
        void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
    };
    explicit CurlEasy(CURL* handle) noexcept : handle_(handle) {}
    std::unique_ptr<CURL, Deleter> handle_;
};

// The first failure of a series of curl_easy_setopt calls, so a block of options is checked
// once: `CurlFirstError set; set(easy.set(...)); set(easy.set(...)); if (set.code() != ...)`.
class CurlFirstError {
public:
    // Keeps `rc` unless an earlier call already failed.
    void operator()(CURLcode rc) noexcept {
        if (code_ == CURLE_OK) {
            code_ = rc;
        }
    }
    [[nodiscard]] CURLcode code() const noexcept { return code_; }

private:
    CURLcode code_ = CURLE_OK;
};

// Owns one multi handle. Move-only. Every method is for the owning thread.
class CurlMulti {
public:
    CurlMulti() noexcept = default;  // empty
    // Throws StartupError when libcurl cannot allocate a handle.
    [[nodiscard]] static CurlMulti create();

    [[nodiscard]] CURLM* get() const noexcept { return handle_.get(); }

    template <typename T>
    [[nodiscard]] CURLMcode set(CURLMoption option, T value) noexcept {
        return curl_multi_setopt(handle_.get(), option, value);
    }
    [[nodiscard]] CURLMcode add(const CurlEasy& easy) noexcept {
        return curl_multi_add_handle(handle_.get(), easy.get());
    }
    [[nodiscard]] CURLMcode remove(const CurlEasy& easy) noexcept {
        return curl_multi_remove_handle(handle_.get(), easy.get());
    }
    [[nodiscard]] CURLMcode perform(int* running) noexcept {
        return curl_multi_perform(handle_.get(), running);
    }
    [[nodiscard]] CURLMcode poll(int timeout_ms) noexcept {
        return curl_multi_poll(handle_.get(), nullptr, 0, timeout_ms, nullptr);
    }
    // The next completion message, or nullptr. Valid until the next call or handle removal.
    [[nodiscard]] CURLMsg* next_message() noexcept {
        int left = 0;
        return curl_multi_info_read(handle_.get(), &left);
    }

private:
    struct Deleter {
        void operator()(CURLM* handle) const noexcept { (void)curl_multi_cleanup(handle); }
    };
    explicit CurlMulti(CURLM* handle) noexcept : handle_(handle) {}
    std::unique_ptr<CURLM, Deleter> handle_;
};

// Owns a CURLU (libcurl's URL API): URLs are built from parts with it, never by pasting
// strings. Move-only; one thread at a time.
class CurlUrl {
public:
    CurlUrl() noexcept = default;  // empty
    // An empty URL; an empty CurlUrl (false) when out of memory.
    [[nodiscard]] static CurlUrl create() noexcept { return CurlUrl(curl_url()); }
    // A copy of every part; empty when out of memory.
    [[nodiscard]] CurlUrl dup() const noexcept {
        return CurlUrl(handle_ ? curl_url_dup(handle_.get()) : nullptr);
    }

    [[nodiscard]] CURLU* get() const noexcept { return handle_.get(); }
    explicit operator bool() const noexcept { return handle_ != nullptr; }
    // curl_url_set of one part (a NUL-terminated copy is taken).
    [[nodiscard]] CURLUcode set(CURLUPart part, const char* value,
                                unsigned int flags = 0) noexcept {
        return handle_ ? curl_url_set(handle_.get(), part, value, flags) : CURLUE_OUT_OF_MEMORY;
    }

private:
    struct Deleter {
        void operator()(CURLU* url) const noexcept { curl_url_cleanup(url); }
    };
    explicit CurlUrl(CURLU* url) noexcept : handle_(url) {}
    std::unique_ptr<CURLU, Deleter> handle_;
};

// Owns a curl_slist (request headers). Move-only.
// IMPORTANT: must outlive every transfer that was given get() through CURLOPT_HTTPHEADER.
class CurlSlist {
public:
    CurlSlist() noexcept = default;

    // Appends a copy of `line` (NUL-terminated). False when out of memory; the list is then
    // unchanged.
    [[nodiscard]] bool append(const char* line) noexcept {
        curl_slist* grown = curl_slist_append(list_.get(), line);
        if (grown == nullptr) {
            return false;
        }
        (void)list_.release();
        list_.reset(grown);
        return true;
    }
    void clear() noexcept { list_.reset(); }
    [[nodiscard]] curl_slist* get() const noexcept { return list_.get(); }

private:
    struct Deleter {
        void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
    };
    std::unique_ptr<curl_slist, Deleter> list_;
};

}  // namespace xrayd
